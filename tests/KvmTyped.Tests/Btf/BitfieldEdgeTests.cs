using KvmTyped.Btf;
using KvmTyped.Tests.Linux;
using KvmTyped.Types;
using KvmTyped.Tools;

namespace KvmTyped.Tests.Btf;

/// <summary>Bitfields the kernel's BTF lays out unusually: wider than a read returns, declared over a plain
/// integer, beyond the object, or in big-endian BTF.</summary>
public class BitfieldEdgeTests
{
    private static readonly KernelFieldType U32Bits3 = new(KernelFieldKind.Int, 4, 4, BitWidth: 3);

    /// <summary>struct k { unsigned int wide : 100; unsigned int plain; unsigned int narrow : 5; __int128 huge; }.</summary>
    private static BtfRelocator Relocator()
    {
        var b = new BtfBuilder();
        int u32 = b.Int("unsigned int", 4);
        int u128 = b.Int("unsigned __int128", 16);
        b.Struct("k", 48, ("wide", u32, 0, 100), ("plain", u32, 128, 0), ("narrow", u32, 160, 5), ("huge", u128, 256, 0));
        return new BtfRelocator(BtfTypes.Parse(b.Build(), sourceName: "k.btf"), DataModel.LP64, "kernel 9.9.9-test");
    }

    [Fact]
    public void A_kernel_bitfield_wider_than_64_bits_is_refused_by_name()
    {
        var r = Relocator();
        var e = Assert.Throws<KvmException>(() => r.Relocate(new KernelRelocationRequest("k", false, ["wide"], [U32Bits3])));
        Assert.Contains("struct k, member 'wide'", e.Message, StringComparison.Ordinal);
        Assert.Contains("kernel 9.9.9-test", e.Message, StringComparison.Ordinal);
        Assert.Contains("100 bits", e.Message, StringComparison.Ordinal);
        // Without declared types as well: the width never reaches a read.
        Assert.Throws<KvmException>(() => r.Relocate(new KernelRelocationRequest("k", false, ["wide"])));
    }

    [Fact]
    public void A_bitfield_declared_over_a_plain_integer_reads_the_kernels_whole_integer()
    {
        var rel = Relocator().Relocate(new KernelRelocationRequest("k", false, ["plain", "narrow"], [U32Bits3, U32Bits3]));
        Assert.Equal(128, rel.BitOffset(0));
        Assert.Equal(32, rel.BitSize(0));
        Assert.Equal(5, rel.BitSize(1));

        var m = new FlatKernelMemory(DataModel.LP64, 0x1000, 48);
        m.U32(0x1010, 0xffff_ffff);
        m.U32(0x1014, 0xffff_ffff);
        Assert.Equal(0xffff_ffffUL, KernelReader.ReadBits(m, 0x1000, rel.BitOffset(0), rel.BitSize(0), false));
        Assert.Equal(0x1fUL, KernelReader.ReadBits(m, 0x1000, rel.BitOffset(1), rel.BitSize(1), false));
    }

    [Fact]
    public void A_bitfield_declared_over_a_128_bit_integer_is_refused()
    {
        var e = Assert.Throws<KvmException>(() => Relocator().Relocate(new KernelRelocationRequest("k", false, ["huge"], [U32Bits3])));
        Assert.Contains("member 'huge'", e.Message, StringComparison.Ordinal);
        Assert.Contains("128 bits", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_printer_marks_wide_and_outlying_bitfields_instead_of_failing()
    {
        var b = new BtfBuilder();
        int u32 = b.Int("unsigned int", 4);
        int id = b.Struct("k", 0x20_0000, ("wide", u32, 0, 100), ("far", u32, 0xff_fff0, 4), ("ok", u32, 4, 4));
        var t = BtfTypes.Parse(b.Build());
        var v = Assert.IsType<BtfStructValue>(new BtfValuePrinter(t).Decode(id, [0xa5, 0, 0, 0, 0, 0, 0, 0]));
        Assert.Equal("(bitfield wider than 64 bits)", ((BtfScalarValue)v.Members[0].Value).Text);
        Assert.Equal("(outside the object)", ((BtfScalarValue)v.Members[1].Value).Text);
        Assert.Equal("10", ((BtfScalarValue)v.Members[2].Value).Text);
    }

    [Fact]
    public void Array_offsets_that_overflow_are_outside_the_object()
    {
        // struct k { struct big a[40][0x7fffffff]; } with struct big { char s[4]; unsigned b : 3; } claiming 2^28
        // bytes: a row is nearly 2^59 bytes, so bit offsets from the third row on overflow.
        var b = new BtfBuilder();
        int u32 = b.Int("unsigned int", 4);
        int text = b.Array(b.Int("char", 1, encoding: 2), u32, 4);
        int big = b.Struct("big", 0x0fff_ffff, ("s", text, 0, 0), ("b", u32, 32, 3));
        int inner = b.Array(big, u32, 0x7fff_ffff);
        int arr = b.Array(inner, u32, 40);
        int id = b.Struct("k", 8, ("a", arr, 0, 0));
        var t = BtfTypes.Parse(b.Build());
        var v = Assert.IsType<BtfStructValue>(new BtfValuePrinter(t).Decode(id, new byte[8]));
        var outer = Assert.IsType<BtfArrayValue>(v.Members[0].Value);
        Assert.Equal(40, outer.Elements.Count);
        Assert.Contains(outer.Elements, e => e is BtfScalarValue { Text: "(outside the object)" });
    }

    [Fact]
    public void Big_endian_btf_reads_integers_and_bitfields_big_endian()
    {
        var b = new BtfBuilder();
        int u32 = b.Int("unsigned int", 4);
        int u16 = b.Int("unsigned short", 2);
        int id = b.Struct("k", 8, ("word", u32, 0, 0), ("half", u16, 32, 0), ("hi", u32, 48, 4), ("lo", u32, 52, 4));
        var t = BtfTypes.Parse(b.Build(bigEndian: true));
        Assert.True(t.IsBigEndian);
        var v = Assert.IsType<BtfStructValue>(new BtfValuePrinter(t).Decode(id, [0x12, 0x34, 0x56, 0x78, 0xab, 0xcd, 0x9e, 0]));
        Assert.Equal("305419896", ((BtfScalarValue)v.Members[0].Value).Text); // 0x12345678
        Assert.Equal("43981", ((BtfScalarValue)v.Members[1].Value).Text);     // 0xabcd
        Assert.Equal("9", ((BtfScalarValue)v.Members[2].Value).Text);         // high nibble of 0x9e
        Assert.Equal("14", ((BtfScalarValue)v.Members[3].Value).Text);        // low nibble
    }
}
