using KvmTyped.Btf;
using KvmTyped.Types;

namespace KvmTyped.Tests.Btf;

public class RelocatorTests
{
    private static readonly KernelFieldType S32 = new(KernelFieldKind.Int, 4, 4, true);
    private static readonly KernelFieldType U32 = new(KernelFieldKind.Int, 4, 4, false);
    private static readonly KernelFieldType Long = new(KernelFieldKind.Int, 4, 8, true);
    private static readonly KernelFieldType Ptr = new(KernelFieldKind.Pointer, 4, 8);

    /// <summary>struct item { long id; unsigned flags:3, mode:5; union { int value; struct item *link; }; char name[8];
    /// enum state state; struct pair p; };</summary>
    private static BtfRelocator Relocator(string image = "kernel 9.9.9-test")
    {
        var b = new BtfBuilder();
        int i32 = b.Int("int", 4, encoding: 1);
        int u32 = b.Int("unsigned int", 4);
        int i64 = b.Int("long int", 8, encoding: 1);
        int ch = b.Int("char", 1, encoding: 1);
        int fwd = b.Fwd("item");
        int p = b.Ptr(fwd);
        int anon = b.Union("", 8, ("value", i32, 0, 0), ("link", p, 0, 0));
        int idx = b.Int("__ARRAY_SIZE_TYPE__", 4);
        int name = b.Array(ch, idx, 8);
        int state = b.Enum("state", 4, false, ("IDLE", 0), ("BUSY", 1));
        int pair = b.Struct("pair", 8, ("a", i32, 0, 0), ("b", i32, 32, 0));
        b.Struct("item", 48, ("id", i64, 0, 0), ("flags", u32, 64, 3), ("mode", u32, 67, 5), ("", anon, 128, 0),
            ("name", name, 192, 0), ("state", state, 256, 0), ("p", pair, 288, 0));
        return new BtfRelocator(BtfTypes.Parse(b.Build(), sourceName: "test.btf"), DataModel.LP64, image);
    }

    [Fact]
    public void Members_are_found_by_name_through_anonymous_unions_with_a_flavor_ignored()
    {
        var r = Relocator().Relocate(new KernelRelocationRequest("item___v2", false, ["id", "value", "link", "name", "mode", "p"],
            [Long, S32, Ptr, new(KernelFieldKind.Array, 0, 0, Length: 8, Element: new(KernelFieldKind.Int, 1, 1, true)), new(KernelFieldKind.Int, 4, 4, BitWidth: 5),
             new(KernelFieldKind.Struct, 0, 0, Name: "pair___x")]));
        Assert.Equal(48UL, r.Size);
        Assert.Equal(new long[] { 0, 128, 128, 192, 67, 288 }, Enumerable.Range(0, 6).Select(r.BitOffset));
        Assert.Equal(5, r.BitSize(4));
        Assert.Equal(0, r.BitSize(0));
        Assert.Equal("kernel 9.9.9-test", r.Image);
    }

    [Theory]
    [InlineData(3)]     // few asked for: each found by comparing names
    [InlineData(30)]    // many: through a table of every name
    public void The_first_member_of_a_name_is_taken_however_many_are_asked_for(int asked)
    {
        // struct wide { int m0 … m29; union { int dup; long other; }; long dup; } (a name twice: the first wins).
        var b = new BtfBuilder();
        int i32 = b.Int("int", 4, encoding: 1);
        int i64 = b.Int("long int", 8, encoding: 1);
        int anon = b.Union("", 8, ("dup", i32, 0, 0), ("other", i64, 0, 0));
        var members = Enumerable.Range(0, 30).Select(i => ($"m{i}", i32, (uint)i * 32, 0)).ToList();
        members.Add(("", anon, 30 * 32, 0));
        members.Add(("dup", i64, 30 * 32 + 64, 0));
        b.Struct("wide", 30 * 4 + 16, members.ToArray());
        var relocator = new BtfRelocator(BtfTypes.Parse(b.Build(), sourceName: "test.btf"), DataModel.LP64, "kernel 9.9.9-test");
        var names = new List<string> { "dup", "m29", "absent" };
        names.AddRange(Enumerable.Range(0, asked - names.Count).Select(i => $"m{i}"));
        var r = relocator.Relocate(new KernelRelocationRequest("wide", false, [.. names]));
        Assert.Equal((960L, 928L), (r.BitOffset(0), r.BitOffset(1)));
        Assert.False(r.Has("absent"));
        Assert.All(Enumerable.Range(3, asked - 3), i => Assert.Equal((i - 3) * 32L, r.BitOffset(i)));
    }

    [Fact]
    public void A_missing_member_is_recorded_and_fails_only_when_read()
    {
        var r = Relocator().Relocate(new KernelRelocationRequest("item", false, ["id", "gone"], [Long, S32]));
        Assert.True(r.Has("id"));
        Assert.False(r.Has("gone"));
        Assert.Equal("this kernel's struct item has no member 'gone' (kernel 9.9.9-test)", Assert.Throws<KvmException>(() => r.BitOffset(1)).Message);
    }

    [Fact]
    public void Co_re_compatible_types_are_accepted()
    {
        // Another signedness, an enum as an int of its size, an int as an enum, any pointer, no declared types at all.
        var relocator = Relocator();
        var a = relocator.Relocate(new KernelRelocationRequest("item", false, ["value", "state", "link"],
            [U32, new(KernelFieldKind.Int, 4, 4), Ptr with { Name = "other" }]));
        Assert.Equal(new ulong[] { 16, 32, 16 }, Enumerable.Range(0, 3).Select(a.ByteOffset));
        var b = relocator.Relocate(new KernelRelocationRequest("item", false, ["value"], [new(KernelFieldKind.Enum, 4, 4, Name: "e")]));
        Assert.Equal(16UL, b.ByteOffset(0));
        var c = relocator.Relocate(new KernelRelocationRequest("item", false, ["name", "flags"]));
        Assert.Equal((24UL, 64L, 3), (c.ByteOffset(0), c.BitOffset(1), c.BitSize(1)));
        // A flexible array matches any length.
        var d = relocator.Relocate(new KernelRelocationRequest("item", false, ["name"], [new(KernelFieldKind.Array, 0, 0, Length: 0, Element: new(KernelFieldKind.Int, 1, 1))]));
        Assert.Equal(24UL, d.ByteOffset(0));
    }

    [Theory]
    [InlineData("id", KernelFieldKind.Int, 4, "struct item, member 'id': declared signed 4-byte int, but kernel 9.9.9-test has long int id (signed 8-byte int): the sizes differ")]
    [InlineData("value", KernelFieldKind.Pointer, 8, "declared pointer, but kernel 9.9.9-test has int value (signed 4-byte int): a pointer needs a pointer")]
    [InlineData("link", KernelFieldKind.Int, 8, "declared signed 8-byte int, but kernel 9.9.9-test has struct item *link (pointer): an integer or enum needs an integer or enum")]
    [InlineData("p", KernelFieldKind.Union, 0, "declared union pair, but kernel 9.9.9-test has struct pair p (struct pair): a union needs a union")]
    [InlineData("flags", KernelFieldKind.Int, 4, "the kernel's member is a bitfield; declare it as one")]
    [InlineData("name", KernelFieldKind.Bool, 1, "_Bool needs a 1-byte integer")]
    [InlineData("value", KernelFieldKind.Float, 4, "a float needs a float of the same size")]
    public void Incompatible_types_fail_naming_struct_member_both_types_and_image(string member, KernelFieldKind kind, int size, string expected)
    {
        var declared = new KernelFieldType(kind, size, size, true, Name: kind == KernelFieldKind.Union ? "pair" : null);
        var e = Assert.Throws<KvmException>(() => Relocator().Relocate(new KernelRelocationRequest("item", false, [member], [declared])));
        Assert.EndsWith(expected, e.Message, StringComparison.Ordinal);
        Assert.StartsWith($"struct item, member '{member}': declared ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Arrays_need_the_same_length_and_compatible_elements()
    {
        var relocator = Relocator();
        var e = Assert.Throws<KvmException>(() => relocator.Relocate(new KernelRelocationRequest("item", false, ["name"],
            [new(KernelFieldKind.Array, 0, 0, Length: 16, Element: new(KernelFieldKind.Int, 1, 1, true))])));
        Assert.EndsWith("(array[8] of signed 1-byte int): the lengths differ (16 declared, 8 in the kernel)", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<KvmException>(() => relocator.Relocate(new KernelRelocationRequest("item", false, ["name"],
            [new(KernelFieldKind.Array, 0, 0, Length: 8, Element: new(KernelFieldKind.Int, 2, 2, true))])));
        Assert.EndsWith("elements: the sizes differ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_struct_the_kernel_lacks_or_has_as_a_union_fails()
    {
        var relocator = Relocator();
        Assert.Equal("struct nothing: kernel 9.9.9-test has no struct nothing in its BTF (test.btf)",
            Assert.Throws<KvmException>(() => relocator.Relocate(new KernelRelocationRequest("nothing", false, ["x"]))).Message);
        Assert.StartsWith("union item: ", Assert.Throws<KvmException>(() => relocator.Relocate(new KernelRelocationRequest("item", true, ["id"]))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Answers_are_cached_per_request_and_sizes_follow_the_data_model()
    {
        var relocator = Relocator();
        var request = new KernelRelocationRequest("item", false, ["id"], [Long]);
        Assert.Same(relocator.Relocate(request), relocator.Relocate(request));
        Assert.Equal("signed 4-byte int", Long.Describe(DataModel.ILP32));
        Assert.Equal("signed 8-byte int : 3", (Long with { BitWidth = 3 }).Describe(DataModel.LP64));
        Assert.Equal(new KernelFieldType(KernelFieldKind.Pointer, 4, 8, Name: "x"), Ptr with { Name = "x" });
        Assert.Throws<ArgumentException>(() => new KernelRelocationRequest("item", false, ["a", "b"], [S32]));
    }
}
