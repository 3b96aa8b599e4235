using System.Text;
using KvmTyped.Linux;
using KvmTyped.Tests.Translation;
using KvmTyped.Translation;
using KvmTyped.Arch.X86;
using KvmTyped.Formats;
using static KvmTyped.Tests.TestSupport.PageTableBuilder;

namespace KvmTyped.Tests.Arch;

/// <summary>Kernel layouts built in code: the paging modes the real fixtures do not cover (i386 without PAE, x86-64
/// with 5 levels), with and without VMCOREINFO.</summary>
public class KernelLayoutSyntheticTests
{
    private const string Banner = "Linux version 6.1.0-test (builder@example) (gcc) #1 SMP\n";

    private static VmcoreInfo Info(string text) => VmcoreInfo.Parse(Encoding.ASCII.GetBytes(text));

    // i386 without PAE: PAGE_OFFSET 0xc0000000, image linked at 0xc1000000, slid by 0x2000000.
    private const ulong I386Slide = 0x0200_0000;

    private static (SparsePhysicalMemory, TestSymbols) BuildI386NonPae()
    {
        var memory = new SparsePhysicalMemory();
        var symbols = new TestSymbols(DataModel.ILP32,
            ("_text", 0xc100_0000), ("_stext", 0xc100_0000), ("startup_32", 0xc100_0000), ("phys_startup_32", 0x0100_0000),
            ("linux_banner", 0xc120_0100), ("swapper_pg_dir", 0xc140_0000), ("high_memory", 0xc150_0000), ("_end", 0xc160_0000));
        var b = new PageTableBuilder(memory, Mode.NonPae, tablesAt: 0x0340_0000);
        for (ulong i = 0; i < 32; i++)
            b.Map(0xc000_0000UL + (i << 22), i << 22, level: 2);
        b.Map(0xf800_0000UL, 0x0090_0000UL, level: 1);
        memory.Write(0x0320_0100, Encoding.ASCII.GetBytes(Banner + "\0"));
        memory.WriteU32(0x0350_0000, 0xc800_0000);
        memory.Write(0x0090_0000, Encoding.ASCII.GetBytes("vmalloc page"));
        // A decoy at the banner's page offset elsewhere (the boot log's copy): the page tables contradict it.
        memory.Write(0x0010_0100, Encoding.ASCII.GetBytes("Linux version 9.9.9-decoy\0"));
        return (memory, symbols);
    }

    [Fact]
    public void I386_without_pae_is_found_by_probing_and_by_the_banner_search()
    {
        var (memory, symbols) = BuildI386NonPae();
        foreach (var info in new[] { null, Info("OSRELEASE=6.1.0-test\nSYMBOL(_stext)=c3000000\nSYMBOL(swapper_pg_dir)=c3400000\n") })
        {
            var layout = KernelLayout.Detect(memory, info, symbols, DataModel.ILP32, "synthetic");
            Assert.Equal(I386Slide, layout.KaslrOffset);
            Assert.Equal(info is null ? "linux_banner search" : "VMCOREINFO SYMBOL(_stext)", layout.KaslrSource);
            Assert.False(layout.Pae);
            Assert.Equal(2, layout.PagingLevels);
            Assert.Equal(0xc000_0000UL, layout.PageOffset);
            Assert.Equal(0x0340_0000UL, layout.RootTable);
            Assert.Equal(0xc340_0000UL, layout.RootTableVirtual);
            Assert.Equal(Banner.TrimEnd('\n'), layout.Banner);
            var text = new byte[12];
            Assert.True(layout.TryReadVirtual(0xf800_0000UL, text, out var f), f);
            Assert.Equal("vmalloc page", Encoding.ASCII.GetString(text));
            // Low memory up to high_memory is linear; above it only the page tables answer.
            Assert.True(layout.AddressSpace.TryTranslate(0xc7ff_f000UL, out var pa, out _, out f), f);
            Assert.Equal(0x07ff_f000UL, pa);
            Assert.False(layout.AddressSpace.TryTranslate(0xf800_1000UL, out _, out _, out f));
            Assert.Equal("cannot translate 0xf8001000: PTE entry not present (0x0) at level 1", f);
        }
    }

    [Fact]
    public void I386_release_mismatch_names_both()
    {
        var (memory, symbols) = BuildI386NonPae();
        var ex = Assert.Throws<KvmOpenException>(() => KernelLayout.Detect(memory,
            Info("OSRELEASE=6.1.0-other\nSYMBOL(_stext)=c3000000\n"), symbols, DataModel.ILP32, "synthetic"));
        Assert.Equal("test.map does not match synthetic: the dump is release 6.1.0-other (VMCOREINFO OSRELEASE), " +
                     "but linux_banner at the namelist's address 0xc3200100 reads \"Linux version 6.1.0-test (builder@example) (gcc) #1 SMP\"", ex.Message);
    }

    // x86-64 with 5-level paging: image linked at 0xffffffff81000000, slid by 0x4000000, phys_base 0x1000000.
    private const ulong Map = KernelLayout.StartKernelMap;
    private const ulong Slide = 0x0400_0000;
    private const ulong PhysBase = 0x0100_0000;
    private const ulong DirectMap = 0xff11_00c0_0000_0000UL;

    private static (SparsePhysicalMemory, TestSymbols) Build5Level()
    {
        var memory = new SparsePhysicalMemory();
        var symbols = new TestSymbols(DataModel.LP64,
            ("_text", 0xffff_ffff_8100_0000UL), ("_stext", 0xffff_ffff_8100_0000UL), ("linux_banner", 0xffff_ffff_8180_0040UL),
            ("page_offset_base", 0xffff_ffff_81a0_0008UL), ("init_top_pgt", 0xffff_ffff_81c0_0000UL), ("_end", 0xffff_ffff_8200_0000UL));
        static ulong Phys(ulong link) => link + Slide - Map + PhysBase;
        var b = new PageTableBuilder(memory, Mode.X86_64Level5, tablesAt: Phys(0xffff_ffff_81c0_0000UL));
        for (ulong va = 0xffff_ffff_8100_0000UL + Slide; va < 0xffff_ffff_8200_0000UL + Slide; va += 0x20_0000)
            b.Map(va, va - Map + PhysBase, level: 2, extra: NX);
        b.Map(DirectMap, 0, level: 3);
        memory.Write(Phys(0xffff_ffff_8180_0040UL), Encoding.ASCII.GetBytes(Banner + "\0"));
        memory.WriteU64(Phys(0xffff_ffff_81a0_0008UL), DirectMap);
        return (memory, symbols);
    }

    [Fact]
    public void X86_64_five_level_with_vmcoreinfo()
    {
        var (memory, symbols) = Build5Level();
        var info = Info("OSRELEASE=6.1.0-test\nKERNELOFFSET=4000000\nNUMBER(phys_base)=16777216\nNUMBER(pgtable_l5_enabled)=1\n" +
                        "SYMBOL(init_top_pgt)=ffffffff85c00000\n");
        var layout = KernelLayout.Detect(memory, info, symbols, DataModel.LP64, "synthetic");
        Assert.Equal(5, layout.PagingLevels);
        Assert.Equal(Slide, layout.KaslrOffset);
        Assert.Equal((long)PhysBase, layout.PhysBase);
        Assert.Equal(DirectMap, layout.PageOffset);
        Assert.Equal(0x06c0_0000UL, layout.RootTable);
        Assert.Equal(Banner.TrimEnd('\n'), layout.Banner);
        // The banner through the page tables alone, and through the direct map.
        Assert.True(layout.PageTables.TryTranslate(0xffff_ffff_8580_0040UL, out var pa, out _, out var f), f);
        Assert.Equal(0x0680_0040UL, pa);
        var bytes = new byte[13];
        Assert.True(layout.TryReadVirtual(DirectMap + pa, bytes, out f), f);
        Assert.Equal("Linux version", Encoding.ASCII.GetString(bytes));
    }

    [Fact]
    public void X86_64_five_level_without_vmcoreinfo_is_found_by_the_banner_search()
    {
        var (memory, symbols) = Build5Level();
        var layout = KernelLayout.Detect(memory, null, symbols, DataModel.LP64, "synthetic");
        Assert.Equal("linux_banner search", layout.KaslrSource);
        Assert.Equal(5, layout.PagingLevels);
        Assert.Equal(Slide, layout.KaslrOffset);
        Assert.Equal((long)PhysBase, layout.PhysBase);
        Assert.Equal(DirectMap, layout.PageOffset);
    }

    [Fact]
    public void A_vmcoreinfo_symbol_that_disagrees_with_the_namelist_is_refused()
    {
        var (memory, symbols) = Build5Level();
        var info = Info("OSRELEASE=6.1.0-test\nKERNELOFFSET=4000000\nNUMBER(phys_base)=16777216\nNUMBER(pgtable_l5_enabled)=1\n" +
                        "SYMBOL(init_top_pgt)=ffffffff85c01000\n");
        var ex = Assert.Throws<KvmOpenException>(() => KernelLayout.Detect(memory, info, symbols, DataModel.LP64, "synthetic"));
        Assert.Equal("test.map does not match synthetic: init_top_pgt is at 0xffffffff85c01000 in the dump's VMCOREINFO (release 6.1.0-test), " +
                     "but at 0xffffffff81c00000 + KASLR offset 0x4000000 = 0xffffffff85c00000 in the namelist", ex.Message);
    }

    [Fact]
    public void Memory_without_a_kernel_is_refused()
    {
        using var memory = new SparsePhysicalMemory();
        memory.Write(0x20_0040, Encoding.ASCII.GetBytes("Linux version but no page tables"));
        var (_, symbols) = Build5Level();
        var ex = Assert.Throws<KvmOpenException>(() => KernelLayout.Detect(memory, null, symbols, DataModel.LP64, "empty"));
        Assert.StartsWith("empty: cannot find the kernel", ex.Message);
        var (_, i386) = BuildI386NonPae();
        Assert.Throws<KvmOpenException>(() => KernelLayout.Detect(memory, null, i386, DataModel.ILP32, "empty"));
    }

    [Fact]
    public void Process_address_spaces_use_the_kernel_paging_mode()
    {
        var (memory, symbols) = Build5Level();
        var layout = KernelLayout.Detect(memory, null, symbols, DataModel.LP64, "synthetic");
        var b = new PageTableBuilder(memory, Mode.X86_64Level5, tablesAt: 0x0900_0000);
        b.Map(0x0000_7fff_0000_0000UL, 0x0a00_0000UL, level: 1);
        var process = layout.CreateProcessAddressSpace(b.Root);
        Assert.True(process.TryTranslate(0x0000_7fff_0000_0123UL, out var pa, out _, out var f), f);
        Assert.Equal(0x0a00_0123UL, pa);
        Assert.False(process.TryTranslate(0xffff_ffff_8500_0000UL, out _, out _, out _));
    }

    [Fact]
    public void Five_levels_are_found_when_vmcoreinfo_does_not_say()
    {
        var (memory, symbols) = Build5Level();
        var info = Info("OSRELEASE=6.1.0-test\nKERNELOFFSET=4000000\nNUMBER(phys_base)=16777216\n");
        var layout = KernelLayout.Detect(memory, info, symbols, DataModel.LP64, "synthetic");
        Assert.Equal(5, layout.PagingLevels);
        Assert.Equal(DirectMap, layout.PageOffset);
    }

    [Theory]
    [InlineData("OSRELEASE=6.1.0-test\nKERNELOFFSET=7fff0000000\nNUMBER(phys_base)=16777216\n")]
    [InlineData("OSRELEASE=6.1.0-test\nKERNELOFFSET=4000000\nNUMBER(phys_base)=-9000000000000000000\n")]
    [InlineData("OSRELEASE=6.1.0-test\nKERNELOFFSET=4000000\nNUMBER(phys_base)=16781312\nNUMBER(pgtable_l5_enabled)=1\n")]
    [InlineData("OSRELEASE=6.1.0-test\nKERNELOFFSET=4000000\nNUMBER(phys_base)=16777217\nNUMBER(pgtable_l5_enabled)=1\n")]
    public void Absurd_vmcoreinfo_values_give_an_open_error(string text)
    {
        var (memory, symbols) = Build5Level();
        Assert.Throws<KvmOpenException>(() => KernelLayout.Detect(memory, Info(text), symbols, DataModel.LP64, "synthetic"));
    }

    [Theory]
    [InlineData("OSRELEASE=6.1.0-test\nSYMBOL(_stext)=3000000\n")]
    [InlineData("OSRELEASE=6.1.0-test\nSYMBOL(_stext)=ff000000\n")]
    public void Absurd_i386_slides_give_an_open_error(string text)
    {
        var (memory, symbols) = BuildI386NonPae();
        Assert.Throws<KvmOpenException>(() => KernelLayout.Detect(memory, Info(text), symbols, DataModel.ILP32, "synthetic"));
    }

    [Fact]
    public void The_banner_search_is_bounded_on_absurd_ranges()
    {
        using var memory = new HugeEmptyMemory();
        var found = KernelLayout.BannerCandidates(memory, 0xffff_ffff_8180_0040UL, 0x1000).Count();
        Assert.Equal(0, found);
        Assert.Equal(KernelLayout.MaxBannerProbes, memory.Reads);
    }

    private sealed class HugeEmptyMemory : KvmTyped.Formats.IPhysicalMemory
    {
        public int Reads;

        public string FormatName => "huge";

        public IReadOnlyList<KvmTyped.Formats.PhysicalRange> Ranges => [new(0, 1UL << 62, "huge")];

        public bool IsWritable => false;

        public bool TryRead(ulong address, Span<byte> destination, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure)
        {
            Reads++;
            destination.Clear();
            failure = null;
            return true;
        }

        public void Write(ulong address, ReadOnlySpan<byte> source) => throw new NotSupportedException();

        public void Dispose()
        {
        }
    }
}
