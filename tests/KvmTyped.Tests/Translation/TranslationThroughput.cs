using System.Diagnostics;
using System.Runtime.CompilerServices;
using KvmTyped.Linux;
using KvmTyped.Formats;
using KvmTyped.TestSupport;
using KvmTyped.Translation;
using Xunit.Abstractions;
using KvmTyped.Arch.X86;

namespace KvmTyped.Tests.Translation;

/// <summary>Prints the rate of random 8-byte kernel-virtual reads on cached pages of a real dump (one thread), for
/// working sets of 64, 512 and 4096 pages, from the memory-mapped dump and from an in-memory copy of its pages. It checks the values read, never the time: timings are figures to report,
/// not pass/fail. Run: dotnet test tests/KvmTyped.Tests -c Release --filter "FullyQualifiedName~TranslationThroughput"
/// --logger "console;verbosity=detailed".</summary>
public class TranslationThroughput(ITestOutputHelper output)
{
    [Fact]
    [Trait("Category", "Benchmark")]
    public void Random_8_byte_reads_on_cached_pages()
    {
        using var memory = new TestElfCoreMemory(Fixtures.Get("amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz"));
        using var symbols = new TestSystemMap(Fixtures.Get("amd64/System.map-6.1.0-56-amd64"));
        var layout = KernelLayout.Detect(memory, memory.VmcoreInfo, symbols, DataModel.LP64);
        Assert.True(symbols.TryLookup("_sdata", out var sdata));

        foreach (var pageCount in new[] { 64, 512, 4096 })
        {
            // Half kernel data (text mapping), half the direct map (page tables with large pages).
            var pages = new List<ulong>();
            for (ulong i = 0; i < (ulong)pageCount / 2; i++)
            {
                pages.Add(layout.SymbolRelocation.ToRunning(sdata.Address) + (i * 4096));
                pages.Add(layout.PageOffset + 0x0100_0000UL + (i * 4096));
            }
            var random = new Random(42);
            var addresses = new ulong[1 << 16];
            for (var i = 0; i < addresses.Length; i++)
                addresses[i] = pages[random.Next(pages.Count)] + ((ulong)random.Next(512) * 8);

            var expected = ReadAll(layout.AddressSpace, memory, addresses);
            // Warm up (lets tiered compilation settle), then measure.
            Measure(layout.AddressSpace, memory, addresses, 1000, translateOnly: false, out _);
            var translate = Measure(layout.AddressSpace, memory, addresses, 300, translateOnly: true, out _);
            var read = Measure(layout.AddressSpace, memory, addresses, 500, translateOnly: false, out var sums);
            foreach (var s in sums)
                Assert.Equal(expected, s);

            // The same reads from an in-memory copy of the pages: what a physical layer's page cache would serve,
            // without the memory map's page faults.
            using var copy = new SparsePhysicalMemory();
            var page = new byte[4096];
            foreach (var va in pages)
            {
                Assert.True(layout.AddressSpace.TryTranslate(va, out var pa, out _, out var f), f);
                memory.Read(pa & ~0xfffUL, page);
                copy.Write(pa & ~0xfffUL, page);
            }
            Assert.Equal(expected, ReadAll(layout.AddressSpace, copy, addresses));
            Measure(layout.AddressSpace, copy, addresses, 300, translateOnly: false, out _);
            var cachedRead = Measure(layout.AddressSpace, copy, addresses, 500, translateOnly: false, out sums);
            foreach (var s in sums)
                Assert.Equal(expected, s);
            var line = $"{pageCount,5} pages: translate (cache hit) {translate / 1e6:F1} M/s; translate + 8-byte read: " +
                       $"memory-mapped dump {read / 1e6:F1} M/s, in-memory pages {cachedRead / 1e6:F1} M/s";
            output.WriteLine(line);
            Console.WriteLine("[bench] " + line);
        }
    }

    [Theory]
    [Trait("Category", "Benchmark")]
    [InlineData("amd64/nokaslr/dump.elf.gz", "amd64/System.map-6.1.0-56-amd64")]
    [InlineData("amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz", "amd64/System.map-6.1.0-56-amd64")]
    [InlineData("i386/pae-kdump-kaslr/vmcore.mdf-d31.elf.gz", "i386/System.map-6.1.0-50-686-pae")]
    public void Layout_detection_time(string dump, string map)
    {
        using var memory = new TestElfCoreMemory(Fixtures.Get(dump));
        using var symbols = new TestSystemMap(Fixtures.Get(map));
        var model = symbols.DataModel!.Value;
        KernelLayout.Detect(memory, memory.VmcoreInfo, symbols, model);
        var sw = Stopwatch.StartNew();
        var withInfo = KernelLayout.Detect(memory, memory.VmcoreInfo, symbols, model);
        var infoTime = sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        var raw = KernelLayout.Detect(memory, null, symbols, model);
        var rawTime = sw.Elapsed.TotalMilliseconds;
        Assert.Equal(withInfo.KaslrOffset, raw.KaslrOffset);
        var line = $"{dump}: layout from VMCOREINFO {infoTime:F2} ms, by banner search {rawTime:F2} ms";
        output.WriteLine(line);
        Console.WriteLine("[bench] " + line);
    }

    private static ulong ReadAll(IAddressSpace space, IPhysicalMemory memory, ulong[] addresses)
    {
        Span<byte> buffer = stackalloc byte[8];
        ulong sum = 0;
        foreach (var va in addresses)
        {
            Assert.True(space.TryReadVirtual(memory, va, buffer, out var f), f);
            sum += BitConverter.ToUInt64(buffer);
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static double Measure(IAddressSpace space, IPhysicalMemory memory, ulong[] addresses, int milliseconds,
        bool translateOnly, out List<ulong> sums)
    {
        sums = [];
        Span<byte> buffer = stackalloc byte[8];
        var sw = Stopwatch.StartNew();
        long n = 0;
        while (sw.ElapsedMilliseconds < milliseconds)
        {
            ulong sum = 0;
            if (translateOnly)
            {
                foreach (var va in addresses)
                {
                    space.TryTranslate(va, out var pa, out _, out _);
                    sum += pa;
                }
            }
            else
            {
                foreach (var va in addresses)
                {
                    space.TryReadVirtual(memory, va, buffer, out _);
                    sum += BitConverter.ToUInt64(buffer);
                }
                sums.Add(sum);
            }
            n += addresses.Length;
        }
        return n / sw.Elapsed.TotalSeconds;
    }
}
