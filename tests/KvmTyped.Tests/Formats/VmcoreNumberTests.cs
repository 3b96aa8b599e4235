using KvmTyped.Formats;
using KvmTyped.Translation;

namespace KvmTyped.Tests.Formats;

public class VmcoreNumberTests
{
    [Theory]
    [InlineData("0xffffba1342000000", 0xffffba1342000000UL)]
    [InlineData("0xffff000000000000", 0xffff000000000000UL)]
    [InlineData("0x40000000", 0x40000000UL)]
    [InlineData("0X10", 0x10UL)]
    [InlineData("48", 48UL)]
    [InlineData("18446744073709551615", ulong.MaxValue)]
    [InlineData("-769654784", 0xffff_ffff_d220_0000UL)]
    [InlineData("-129", 0xffff_ffff_ffff_ff7fUL)]
    [InlineData(" 27 ", 27UL)]
    public void Parses_every_form_the_kernel_writes(string text, ulong expected)
    {
        Assert.True(VmcoreNumber.TryParse(text, out var value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("0x")]
    [InlineData("0x1ffffffffffffffff")]
    [InlineData("18446744073709551616")]
    [InlineData("-9223372036854775809")]
    [InlineData("ffff")]
    [InlineData("+5")]
    [InlineData("1e3")]
    [InlineData("0x-5")]
    [InlineData("000000000000000000000048")]
    public void Refuses_what_is_not_a_64_bit_number(string? text)
    {
        Assert.False(VmcoreNumber.TryParse(text, out var value));
        Assert.Equal(0UL, value);
    }

    [Fact]
    public void Reads_the_arm64_numbers_that_VmcoreInfo_Number_misses()
    {
        var info = VmcoreInfo.Parse("NUMBER(VA_BITS)=48\nNUMBER(kimage_voffset)=0xffffba1342000000\nNUMBER(PHYS_OFFSET)=0x40000000\nNUMBER(phys_base)=-5\n"u8);
        Assert.Null(info.Number("kimage_voffset"));
        Assert.Equal(0xffffba1342000000UL, VmcoreNumber.Get(info, "kimage_voffset"));
        Assert.Equal(0x40000000UL, VmcoreNumber.Get(info, "PHYS_OFFSET"));
        Assert.Equal(48UL, VmcoreNumber.Get(info, "VA_BITS"));
        Assert.Equal(unchecked((ulong)-5L), VmcoreNumber.Get(info, "phys_base"));
        Assert.Null(VmcoreNumber.Get(info, "TCR_EL1_T1SZ"));
    }
}
