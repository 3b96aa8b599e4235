using KvmTyped.Formats.Compression;
using KvmTyped.Translation;

namespace KvmTyped.Tests.Translation;

public class ReviewRegressionTests
{
    /// <summary>Linux's pmd_modify to PROT_NONE: clear present, set PROTNONE, invert the frame bits (21 and up) only.</summary>
    private static ulong ProtNoneLarge(ulong frame, int pageShift) =>
        (PageTableBuilder.PS | 0x100UL) | (~frame & 0x000f_ffff_ffff_f000UL & ~((1UL << pageShift) - 1));

    [Theory]
    [InlineData(false, 2, 21)]
    [InlineData(false, 3, 30)]
    [InlineData(true, 2, 21)]
    public void Prot_none_large_pages_translate_as_linux_reads_them(bool pae, int level, int shift)
    {
        var mode = pae ? PageTableBuilder.Mode.Pae : PageTableBuilder.Mode.X86_64Level4;
        var memory = new SparsePhysicalMemory();
        var b = new PageTableBuilder(memory, mode);
        var va = mode == PageTableBuilder.Mode.Pae ? 0x4060_0000UL : 0x7f00_4000_0000UL;
        var frame = mode == PageTableBuilder.Mode.Pae ? 0x4060_0000UL : 0x4000_0000UL;
        b.Map(va, frame, level, PageTableBuilder.PS);
        b.SetEntry(va, level, ProtNoneLarge(frame, shift));
        IAddressSpace space = mode == PageTableBuilder.Mode.Pae ? new X86PaeTables(memory, b.Root) : new X86_64PageTables(memory, b.Root);
        Assert.True(space.TryTranslate(va + 0x1234, out var pa, out _, out var failure), failure);
        Assert.Equal(frame + 0x1234, pa);
    }

    [Fact]
    public void A_read_that_would_wrap_past_the_top_of_the_address_space_fails()
    {
        var memory = new SparsePhysicalMemory();
        memory.Page(0);
        var top = new LinearAddressSpace(0xffff_ffff_ffff_f000, 0x1000, 0);
        Assert.True(top.TryReadVirtual(memory, 0xffff_ffff_ffff_fff0, new byte[16], out _));
        Assert.False(top.TryReadVirtual(memory, 0xffff_ffff_ffff_fffc, new byte[8], out var failure));
        Assert.Contains("wraps past the top", failure);
    }

    [Fact]
    public void A_zlib_page_asking_for_a_preset_dictionary_fails_as_damaged_data()
    {
        byte[] fdict = [0x78, 0xBB, 0x00, 0x00, 0x00, 0x01, 0x03, 0x00];
        Assert.False(PageCompression.TryDecode(PageCodec.Zlib, fdict, new byte[4096], out var error));
        Assert.Contains("damaged", error);
    }

    private sealed class Switchable : IAddressSpace
    {
        public ulong Target { get; set; } = 0x10000;

        public bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure)
        {
            physicalAddress = Target + (virtualAddress & 0xfff);
            contiguous = 0x1000 - (virtualAddress & 0xfff);
            failure = null;
            return true;
        }
    }

    [Fact]
    public void Clear_makes_the_cache_forget_translations_whose_tables_changed()
    {
        var inner = new Switchable();
        var cache = new TranslationCache(inner);
        Assert.True(cache.TryTranslate(0x5000, out var pa, out _, out _));
        Assert.Equal(0x10000UL, pa);
        inner.Target = 0x20000;
        Assert.True(cache.TryTranslate(0x5000, out pa, out _, out _));
        Assert.Equal(0x10000UL, pa); // cached
        cache.Clear();
        Assert.True(cache.TryTranslate(0x5000, out pa, out _, out _));
        Assert.Equal(0x20000UL, pa);
    }
}
