using KvmTyped.Dwarf;

namespace KvmTyped.Tests.Dwarf;

/// <summary>A compressed DWARF section's header states the size it decompresses to, and that size is allocated at
/// once: it is believed only when the stored bytes can produce it, and only for a known compression type. The dwarf
/// fuzz campaign found a 3936-byte file whose .debug_str claimed 621 MB under an unknown type: the buffer was
/// allocated before the type was looked at.</summary>
public sealed class CompressedSizeClaimTests
{
    private const ulong Claim = 512UL << 20;   // under DwarfSections.MaxSectionLength: only the ratio can refuse it

    [Theory]
    [InlineData(1u, "more than its")]                       // zlib
    [InlineData(2u, "more than its")]                       // zstd
    [InlineData(37889u, "unknown compression type 37889")]  // the campaign's input
    public void A_small_section_claiming_half_a_gigabyte_is_refused_before_anything_is_allocated(uint type, string expected)
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        var u = s.Unit();
        s.Point(u, s.Struct, w => w.Strp("point").U8(8));
        u.End();
        var sections = b.Sections()
            .Select(x => x.Name == ".debug_info" ? x with { Flags = SectionElf.ShfCompressed, Data = Lying(x.Data, type) } : x).ToList();
        var elf = SectionElf.Build(true, false, 2, 62, sections);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<KvmFormatException>(() => DwarfTest.Convert(elf));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains(".debug_info", e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Contains(expected, StringComparison.Ordinal), e.Message);
        Assert.True(allocated < 64 << 20, $"{allocated} bytes allocated for a section claiming {Claim}");
    }

    [Fact]
    public void The_ratio_limits_leave_room_for_real_sections()
    {
        // A run of zeros is about the best case of either codec: what they really make of it must pass the check.
        var zeros = new byte[4 << 20];
        foreach (var type in new uint[] { 1, 2 })
        {
            var compressed = SectionElf.Compressed(zeros, type, true, false);
            var stream = compressed.Length - 24;
            var ratio = type == 1 ? DwarfSections.MaxZlibRatio : DwarfSections.MaxZstdRatio;
            Assert.True((ulong)zeros.Length <= (ulong)stream * ratio, $"type {type}: {zeros.Length} bytes from {stream}, more than {ratio} to 1");
        }
    }

    private static byte[] Lying(byte[] data, uint type)
    {
        var c = SectionElf.Compressed(data, type is 1 or 2 ? type : 1, true, false);
        BitConverter.TryWriteBytes(c.AsSpan(0, 4), type);
        BitConverter.TryWriteBytes(c.AsSpan(8, 8), Claim);
        return c;
    }
}
