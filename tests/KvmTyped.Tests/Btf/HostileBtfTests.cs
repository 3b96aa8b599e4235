using System.Buffers.Binary;
using KvmTyped.Btf;

namespace KvmTyped.Tests.Btf;

/// <summary>Damaged and hostile BTF fails with <see cref="KvmFormatException"/> naming the source, where, and what;
/// work stays bounded (cycles, absurd counts, explosive nesting).</summary>
public class HostileBtfTests
{
    private static KvmFormatException Refused(byte[] blob, BtfTypes? baseTypes = null) =>
        Assert.Throws<KvmFormatException>(() => BtfTypes.Parse(blob, baseTypes, "hostile.btf"));

    private static byte[] Simple(out int structId)
    {
        var b = new BtfBuilder();
        int i = b.Int("int", 4, encoding: 1);
        structId = b.Struct("s", 8, ("a", i, 0, 0), ("b", i, 32, 0));
        return b.Build();
    }

    [Fact]
    public void Header_damage_is_named()
    {
        var blob = Simple(out _);
        Assert.Contains("shorter than", Refused(blob[..5]).Message, StringComparison.Ordinal);

        var badMagic = (byte[])blob.Clone();
        badMagic[0] = 0x7f;
        var e = Refused(badMagic);
        Assert.Equal("hostile.btf", e.Path);
        Assert.Equal(0, e.Offset);
        Assert.Contains("magic", e.Message, StringComparison.Ordinal);

        var version = (byte[])blob.Clone();
        version[2] = 2;
        Assert.Contains("version 2", Refused(version).Message, StringComparison.Ordinal);

        var shortHeader = (byte[])blob.Clone();
        BtfBuilder.WriteU32(shortHeader, 4, 16);
        Assert.Contains("header length 16", Refused(shortHeader).Message, StringComparison.Ordinal);

        var longHeader = (byte[])blob.Clone();
        BtfBuilder.WriteU32(longHeader, 4, 1_000_000);
        Assert.Contains("runs past the end", Refused(longHeader).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Sections_outside_the_blob_or_overlapping_are_refused()
    {
        var blob = Simple(out _);
        var types = (byte[])blob.Clone();
        BtfBuilder.WriteU32(types, 12, 0xffff_fff0);
        Assert.Contains("type section", Refused(types).Message, StringComparison.Ordinal);

        var strings = (byte[])blob.Clone();
        BtfBuilder.WriteU32(strings, 16, 0xffff_fff0);
        Assert.Contains("string section", Refused(strings).Message, StringComparison.Ordinal);

        var overlap = (byte[])blob.Clone();
        BtfBuilder.WriteU32(overlap, 16, 4);
        Assert.Contains("overlaps", Refused(overlap).Message, StringComparison.Ordinal);

        var ragged = (byte[])blob.Clone();
        uint typeLen = BinaryPrimitives.ReadUInt32LittleEndian(ragged.AsSpan(12));
        BtfBuilder.WriteU32(ragged, 12, typeLen - 2);
        Assert.Contains("multiple of 4", Refused(ragged).Message, StringComparison.Ordinal);

        var noLeadingNul = (byte[])blob.Clone();
        noLeadingNul[24 + (int)typeLen] = (byte)'x';
        Assert.Contains("empty string", Refused(noLeadingNul).Message, StringComparison.Ordinal);

        var noTrailingNul = (byte[])blob.Clone();
        noTrailingNul[^1] = (byte)'x';
        Assert.Contains("NUL", Refused(noTrailingNul).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(20)]
    [InlineData(31)]
    public void Unknown_kinds_are_refused_clearly(int kind)
    {
        var b = new BtfBuilder();
        b.Int("int", 4);
        b.Add((BtfKind)kind, "future", 0, false, 0);
        var e = Refused(b.Build());
        Assert.Contains($"type id 2: unknown kind {kind}", e.Message, StringComparison.Ordinal);
        Assert.Equal(24 + 16, e.Offset);
    }

    [Fact]
    public void An_absurd_vlen_runs_past_the_section_and_is_refused()
    {
        var b = new BtfBuilder();
        int i = b.Int("int", 4);
        b.Add(BtfKind.Struct, "s", 0xffff, false, 8, b.Str("a"), (uint)i, 0);
        Assert.Contains("vlen 65535 runs past the end", Refused(b.Build()).Message, StringComparison.Ordinal);

        var t = new BtfBuilder();
        t.Int("int", 4);
        var blob = t.Build();
        uint typeLen = BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(12));
        BtfBuilder.WriteU32(blob, 12, typeLen - 4);
        BtfBuilder.WriteU32(blob, 16, typeLen);
        Assert.Contains("runs past the end", Refused(blob).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ids_and_string_offsets_out_of_range_are_refused()
    {
        var b = new BtfBuilder();
        b.Int("int", 4);
        b.Ptr(99);
        var e = Refused(b.Build());
        Assert.Contains("type id 2 (Ptr): its target refers to type id 99, beyond the last id 2", e.Message, StringComparison.Ordinal);

        var m = new BtfBuilder();
        int i = m.Int("int", 4);
        m.Add(BtfKind.Struct, "s", 1, false, 4, 0x7777, (uint)i, 0);
        Assert.Contains("member 0's name offset 0x7777 is outside", Refused(m.Build()).Message, StringComparison.Ordinal);

        var n = new BtfBuilder();
        n.Add(BtfKind.Int, "", 0, false, 4, 32);
        var blob = n.Build();
        BtfBuilder.WriteU32(blob, 24, 0x10000);
        Assert.Contains("name offset 0x10000", Refused(blob).Message, StringComparison.Ordinal);

        var a = new BtfBuilder();
        int ai = a.Int("int", 4);
        a.Array(ai, 1234, 4);
        Assert.Contains("index type refers to type id 1234", Refused(a.Build()).Message, StringComparison.Ordinal);

        var p = new BtfBuilder();
        p.FuncProto(0, ("x", 77));
        Assert.Contains("parameter 0 refers to type id 77", Refused(p.Build()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Split_btf_may_not_reach_past_its_own_ids_or_strings()
    {
        var baseTypes = BtfTypes.Parse(Simple(out _));
        var b = new BtfBuilder(baseTypes);
        b.Ptr(baseTypes.LastId + 5);
        Assert.Contains("beyond the last id", Refused(b.Build(), baseTypes).Message, StringComparison.Ordinal);

        var s = new BtfBuilder(baseTypes);
        s.Add(BtfKind.Struct, "", 1, false, 4, baseTypes.StringsLength + 500, 1, 0);
        s.Str("x");
        Assert.Contains("outside the", Refused(s.Build(), baseTypes).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Members_outside_their_struct_and_impossible_sizes_are_refused()
    {
        var b = new BtfBuilder();
        int i = b.Int("int", 4);
        b.Struct("s", 4, ("a", i, 64, 0));
        Assert.Contains("lies outside its 4 bytes", Refused(b.Build()).Message, StringComparison.Ordinal);

        var bits = new BtfBuilder();
        bits.Int("odd", 3);
        Assert.Contains("size 3", Refused(bits.Build()).Message, StringComparison.Ordinal);

        var wide = new BtfBuilder();
        wide.Int("wide", 1, bits: 9);
        Assert.Contains("9 bits", Refused(wide.Build()).Message, StringComparison.Ordinal);

        var f = new BtfBuilder();
        f.Float("f", 5);
        Assert.Contains("size 5", Refused(f.Build()).Message, StringComparison.Ordinal);

        var d = new BtfBuilder();
        int di = d.Int("int", 4);
        int v = d.Var("v", di);
        d.Datasec(".data", 4, (v, 2, 4));
        Assert.Contains("outside its 4 bytes", Refused(d.Build()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Typedef_and_qualifier_cycles_fail_instead_of_hanging()
    {
        var b = new BtfBuilder();
        // 1: typedef a -> 2, 2: const -> 3, 3: typedef b -> 1
        b.Typedef("a", 2);
        b.Const(3);
        b.Typedef("b", 1);
        int self = b.Volatile(4);
        var t = BtfTypes.Parse(b.Build(), sourceName: "cycle.btf");
        var e = Assert.Throws<KvmFormatException>(() => t.Resolve(1));
        Assert.Contains("cycle", e.Message, StringComparison.Ordinal);
        Assert.Equal("cycle.btf", e.Path);
        Assert.Equal(24, e.Offset);
        Assert.Throws<KvmFormatException>(() => t.SizeOf(2));
        Assert.Throws<KvmFormatException>(() => t.Resolve(self));
        Assert.Throws<KvmFormatException>(() => t.StripQualifiers(self));
    }

    [Fact]
    public void Array_cycles_and_overflowing_sizes_fail()
    {
        var b = new BtfBuilder();
        int i = b.Int("int", 4);
        int selfArray = b.Array(2, i, 1); // id 2: array of itself
        int big = b.Array(i, i, uint.MaxValue);
        int bigger = b.Array(big, i, uint.MaxValue);
        int biggest = b.Array(bigger, i, uint.MaxValue);
        var t = BtfTypes.Parse(b.Build());
        Assert.Contains("cycle", Assert.Throws<KvmFormatException>(() => t.SizeOf(selfArray)).Message, StringComparison.Ordinal);
        Assert.Equal(4L * uint.MaxValue, t.SizeOf(big));
        Assert.Contains("overflows", Assert.Throws<KvmFormatException>(() => t.SizeOf(biggest)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Anonymous_member_cycles_and_explosive_nesting_are_bounded()
    {
        var b = new BtfBuilder();
        int i = b.Int("int", 4);
        int loop = b.Struct("", 8, ("x", i, 0, 0), ("", 2, 0, 0)); // anonymous member of its own type
        var t = BtfTypes.Parse(b.Build());
        Assert.Contains("nest deeper", Assert.Throws<KvmFormatException>(() => t.GetFlattenedMembers(loop)).Message, StringComparison.Ordinal);

        // Each level holds two anonymous copies of the next: 2^40 leaves if nothing stopped it.
        var x = new BtfBuilder();
        int leaf = x.Int("int", 4);
        int level = x.Struct("", 4, ("v", leaf, 0, 0));
        for (int d = 0; d < 40; d++)
            level = x.Struct("", 4, ("", level, 0, 0), ("", level, 0, 0));
        var e = BtfTypes.Parse(x.Build());
        Assert.Contains("more than", Assert.Throws<KvmFormatException>(() => e.GetFlattenedMembers(level)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_and_corrupted_blobs_parse_or_fail_cleanly_and_queries_stay_bounded()
    {
        var b = new BtfBuilder();
        int i = b.Int("int", 4, encoding: 1);
        int c = b.Int("char", 1);
        int arr = b.Array(c, i, 8);
        int u = b.Union("", 4, ("p", i, 0, 0), ("q", c, 0, 0));
        int td = b.Typedef("t", i);
        int cst = b.Const(td);
        int s = b.Struct("s", 24, ("a", cst, 0, 0), ("", u, 32, 0), ("f", i, 64, 3), ("n", arr, 96, 0), ("next", b.Ptr(0), 128, 0));
        b.Enum("e", 4, true, ("A", -1));
        b.Enum64("e64", 8, false, ("B", 5));
        int proto = b.FuncProto(i, ("x", s));
        b.Func("fn", proto);
        b.DeclTag("tag", s, 0);
        b.TypeTag("user", s);
        b.Int("long int", 8, encoding: 1);
        var good = b.Build();

        int parsed = 0, refused = 0;
        void Try(byte[] blob)
        {
            BtfTypes t;
            try
            {
                t = BtfTypes.Parse(blob);
            }
            catch (KvmFormatException)
            {
                refused++;
                return;
            }
            parsed++;
            for (int id = 0; id <= t.LastId; id++)
            {
                try
                {
                    _ = t.TrySizeOf(id, out _, out _);
                    _ = t.Resolve(id);
                    _ = t.NameOf(id);
                    if (t.KindOf(t.Resolve(id)) is BtfKind.Struct or BtfKind.Union)
                        _ = t.GetFlattenedMembers(id);
                    if (t.KindOf(t.Resolve(id)) is BtfKind.Enum or BtfKind.Enum64)
                        _ = t.GetEnumValues(id);
                }
                catch (KvmException)
                {
                }
            }
        }

        for (int len = 0; len < good.Length; len++)
            Try(good[..len]);
        var random = new Random(5);
        for (int round = 0; round < 3000; round++)
        {
            var blob = (byte[])good.Clone();
            for (int k = random.Next(1, 4); k > 0; k--)
                blob[random.Next(blob.Length)] = (byte)random.Next(256);
            Try(blob);
        }
        Assert.True(parsed > 100 && refused > 100, $"parsed {parsed}, refused {refused}");
    }

    [Fact]
    public void A_bad_pointer_size_argument_is_rejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => BtfTypes.Parse(Simple(out _), pointerSize: 6));
}
