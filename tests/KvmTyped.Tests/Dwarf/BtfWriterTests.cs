using KvmTyped.Btf;
using KvmTyped.Dwarf;

namespace KvmTyped.Tests.Dwarf;

/// <summary>The BTF writer: ids reserved before their records, strings stored once, both byte orders, and what the
/// existing reader makes of the result.</summary>
public sealed class BtfWriterTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReservedIdsAreDefinedLaterAndReadBack(bool bigEndian)
    {
        var w = new BtfWriter();
        int node = w.Reserve();
        int ptr = w.Add(BtfKind.Ptr, 0, 0, false, (uint)node, default);
        int u32 = w.Add(BtfKind.Int, w.String("unsigned int"), 0, false, 4, [32u]);
        int bits = w.Add(BtfKind.Int, w.String("long int"), 0, false, 8, [1u << 24 | 64]);
        w.Define(node, BtfKind.Struct, w.String("node"), 3, true, 16,
            [w.String("next"), (uint)ptr, 0, w.String("flags"), (uint)u32, 3u << 24 | 64, w.String("rest"), (uint)u32, 29u << 24 | 67]);
        Assert.Equal(w.String("node"), w.String("node"u8));
        Assert.True(w.IsDefined(node));

        var t = BtfTypes.Parse(w.ToArray(bigEndian));
        Assert.Equal(bigEndian, t.IsBigEndian);
        Assert.Equal(4, t.LastId);
        Assert.Equal(8, t.PointerSize);
        Assert.Equal(node, t.Find("node", BtfKind.Struct));
        Assert.Equal(node, t.Get(ptr).TargetId);
        Assert.True(t.GetInt(bits).IsSigned);
        Assert.Equal("16 {next@0/0/8, flags@64/3/4, rest@67/29/4}", DwarfTest.Layout(t, node));
    }

    [Fact]
    public void AReservedIdNeverDefinedIsAnError()
    {
        var w = new BtfWriter();
        int id = w.Reserve();
        Assert.False(w.IsDefined(id));
        Assert.Throws<InvalidOperationException>(() => w.ToArray(false));
        w.Define(id, BtfKind.Fwd, w.String("later"), 0, false, 0, default);
        Assert.Throws<InvalidOperationException>(() => w.Define(id, BtfKind.Fwd, 0, 0, false, 0, default));
        Assert.Equal("later", BtfTypes.Parse(w.ToArray(false)).NameOf(id));
    }

    [Fact]
    public void ManyStringsAreStoredOnceEach()
    {
        var w = new BtfWriter();
        var offsets = Enumerable.Range(0, 10_000).Select(i => w.String($"name{i}")).ToList();
        Assert.Equal(offsets, Enumerable.Range(0, 10_000).Select(i => w.String($"name{i}")));
        Assert.Equal(10_000, offsets.Distinct().Count());
        Assert.Equal(0u, w.String(""));
        w.Add(BtfKind.Fwd, offsets[9_999], 0, false, 0, default);
        Assert.Equal("name9999", BtfTypes.Parse(w.ToArray(false)).NameOf(1));
    }
}
