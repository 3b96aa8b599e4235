using KvmTyped.Arch.X86;
using KvmTyped.Formats;
using KvmTyped.TestSupport;
using KvmTyped.Translation;

namespace KvmTyped.Tests.Translation;

/// <summary>On a real dump, the translation cache answers as the page tables do, whether the physical pages come from
/// the mapped dump or from a copy; and the banner search finds the layout VMCOREINFO gives. (How fast: tests/KvmTyped.Bench.)</summary>
public class TranslationCacheAgreementTests
{
    [Fact]
    public void Cached_translations_and_reads_equal_uncached_ones()
    {
        using var memory = new TestElfCoreMemory(Fixtures.Get("amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz"));
        using var symbols = new TestSystemMap(Fixtures.Get("amd64/System.map-6.1.0-56-amd64"));
        var layout = KernelLayout.Detect(memory, memory.VmcoreInfo, symbols, DataModel.LP64);
        Assert.True(symbols.TryLookup("_sdata", out var sdata));
        // Half kernel data (text mapping), half the direct map (page tables with large pages).
        var pages = new List<ulong>();
        for (ulong i = 0; i < 256; i++)
        {
            pages.Add(layout.SymbolRelocation.ToRunning(sdata.Address) + (i * 4096));
            pages.Add(layout.PageOffset + 0x0100_0000UL + (i * 4096));
        }
        var random = new Random(42);
        var addresses = new ulong[1 << 14];
        for (var i = 0; i < addresses.Length; i++)
            addresses[i] = pages[random.Next(pages.Count)] + ((ulong)random.Next(512) * 8);

        using var copy = new SparsePhysicalMemory();
        var page = new byte[4096];
        foreach (var va in pages)
        {
            Assert.True(layout.PageTables.TryTranslate(va, out var pa, out _, out var f), f);
            memory.Read(pa & ~0xfffUL, page);
            copy.Write(pa & ~0xfffUL, page);
        }
        Span<byte> a = stackalloc byte[8];
        Span<byte> b = stackalloc byte[8];
        for (var round = 0; round < 2; round++) // the second round is served by the cache
        {
            foreach (var va in addresses)
            {
                Assert.True(layout.AddressSpace.TryTranslate(va, out var cached, out _, out var f), f);
                Assert.True(layout.PageTables.TryTranslate(va, out var walked, out _, out f), f);
                Assert.Equal(walked, cached);
                Assert.True(layout.AddressSpace.TryReadVirtual(memory, va, a, out f), f);
                Assert.True(layout.AddressSpace.TryReadVirtual(copy, va, b, out f), f);
                Assert.True(a.SequenceEqual(b));
            }
        }
    }

    [Theory]
    [InlineData("amd64/nokaslr/dump.elf.gz", "amd64/System.map-6.1.0-56-amd64")]
    [InlineData("amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz", "amd64/System.map-6.1.0-56-amd64")]
    [InlineData("i386/pae-kdump-kaslr/vmcore.mdf-d31.elf.gz", "i386/System.map-6.1.0-50-686-pae")]
    public void The_banner_search_finds_the_layout_vmcoreinfo_gives(string dump, string map)
    {
        using var memory = new TestElfCoreMemory(Fixtures.Get(dump));
        using var symbols = new TestSystemMap(Fixtures.Get(map));
        var model = symbols.DataModel!.Value;
        var withInfo = KernelLayout.Detect(memory, memory.VmcoreInfo, symbols, model);
        var raw = KernelLayout.Detect(memory, null, symbols, model);
        Assert.Equal((withInfo.KaslrOffset, withInfo.PhysBase, withInfo.RootTable, withInfo.PagingLevels),
            (raw.KaslrOffset, raw.PhysBase, raw.RootTable, raw.PagingLevels));
        Assert.Equal("linux_banner search", raw.KaslrSource);
    }
}
