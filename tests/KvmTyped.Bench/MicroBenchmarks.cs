using System.Buffers.Binary;
using System.IO.Compression;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using KvmTyped.Formats;
using KvmTyped.Formats.Kdump;
using KvmTyped.TestSupport;

namespace KvmTyped.Bench;

/// <summary>The stopwatch micro-benchmarks of Program.cs under BenchmarkDotNet:
/// <c>dotnet run -c Release --project tests/KvmTyped.Bench -- bdn [--filter PATTERN]… [--short]</c>.
/// Benchmarks run in this process (the in-process toolchain: no generated project to build, which on a shared
/// two-core machine costs minutes per benchmark), with memory diagnostics; the table reports time per operation,
/// and each benchmark names what one operation is.</summary>
internal static class MicroBenchmarks
{
    public static int Run(string[] args)
    {
        var shortRun = args.Contains("--short");
        var job = (shortRun ? Job.ShortRun : Job.Default.WithWarmupCount(4).WithIterationCount(15))
            .WithToolchain(InProcessEmitToolchain.Instance);
        var config = ManualConfig.CreateMinimumViable()
            .AddJob(job)
            .AddDiagnoser(BenchmarkDotNet.Diagnosers.MemoryDiagnoser.Default)
            .AddColumn(StatisticColumn.Median, StatisticColumn.Min, StatisticColumn.Max)
            .WithSummaryStyle(SummaryStyle.Default.WithRatioStyle(RatioStyle.Trend));
        var rest = args.Where(a => a != "--short").ToArray();
        var summaries = BenchmarkSwitcher.FromTypes([typeof(RandomReads), typeof(SequentialReads)]).Run(rest.Length == 0 ? ["--filter", "*"] : rest, config);
        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }
}

/// <summary>Random 8-byte reads on cached pages: 65,536 of them per operation (Program.cs's "random 8-byte physical
/// reads" and "random 8-byte kernel-virtual reads through Kvm").</summary>
[BenchmarkCategory("random")]
public class RandomReads
{
    /// <summary>Reads per operation.</summary>
    public const int Reads = 1 << 16;

    private KdumpFile _kdump = null!;
    private ulong[] _physical = null!;
    private Kvm _lzo = null!, _elf = null!;
    private ulong[] _lzoVirtual = null!, _elfVirtual = null!;
    private readonly byte[] _eight = new byte[8];

    [GlobalSetup]
    public void Setup()
    {
        _kdump = KdumpFile.Open(Fixtures.Get("amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump"), options: new KdumpOptions { CachePages = 1024 });
        var pfns = new List<ulong>();
        for (ulong pfn = 0x7600; pfn < _kdump.MaxMapnr && pfns.Count < 512; pfn++)
        {
            if (_kdump.GetPageCodec(pfn) is not null)
                pfns.Add(pfn);
        }
        var rnd = new Random(1);
        _physical = [.. Enumerable.Range(0, Reads).Select(_ => pfns[rnd.Next(pfns.Count)] * 4096 + (ulong)rnd.Next(0, 4096 - 8))];
        var map = Fixtures.Get("amd64/System.map-6.1.0-56-amd64");
        _lzo = Kvm.Open(map, Fixtures.Get("amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump"));
        _elf = Kvm.Open(map, Fixtures.Get("amd64/nokaslr/dump.elf.gz"));
        _lzoVirtual = DirectMapAddresses(_lzo);
        _elfVirtual = DirectMapAddresses(_elf);
        PhysicalKdump();
        VirtualKvmLzoKdump();
        VirtualKvmElf();
    }

    /// <summary>512 pages of the direct map that the dump holds, 65,536 random addresses in them (seed 2): the random
    /// virtual reads of every bench mode.</summary>
    internal static ulong[] DirectMapAddresses(Kvm kvm) => DirectMapAddresses(kvm, out _);

    /// <inheritdoc cref="DirectMapAddresses(Kvm)"/>
    /// <param name="kvm">The dump.</param>
    /// <param name="pageCount">How many pages the addresses fall in.</param>
    internal static ulong[] DirectMapAddresses(Kvm kvm, out int pageCount)
    {
        var pageOffset = kvm.PageOffset ?? throw new InvalidOperationException("no direct map");
        var pages = new List<ulong>();
        var probe = new byte[8];
        for (ulong pa = 0x1000000; pages.Count < 512 && pa < 0x8000000; pa += 0x3000)
        {
            if (kvm.TryReadVirtual(pageOffset + pa, probe, out _))
                pages.Add(pageOffset + pa);
        }
        var rnd = new Random(2);
        pageCount = pages.Count;
        return [.. Enumerable.Range(0, Reads).Select(_ => pages[rnd.Next(pages.Count)] + (ulong)rnd.Next(0, 4096 - 8))];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _kdump.Dispose();
        _lzo.Dispose();
        _elf.Dispose();
    }

    /// <summary>KdumpFile.TryRead: physical addresses, LZO kdump, pages cached.</summary>
    [Benchmark(OperationsPerInvoke = Reads, Description = "physical 8 B, KdumpFile (LZO kdump)")]
    public int PhysicalKdump()
    {
        var ok = 0;
        foreach (var a in _physical)
            ok += _kdump.TryRead(a, _eight, out _) ? 1 : 0;
        return ok;
    }

    /// <summary>Kvm.TryReadVirtual through the direct map of the LZO kdump.</summary>
    [Benchmark(OperationsPerInvoke = Reads, Description = "virtual 8 B, Kvm (LZO kdump)")]
    public int VirtualKvmLzoKdump() => Virtual(_lzo, _lzoVirtual);

    /// <summary>Kvm.TryReadVirtual through the direct map of QEMU's ELF dump.</summary>
    [Benchmark(OperationsPerInvoke = Reads, Description = "virtual 8 B, Kvm (ELF)")]
    public int VirtualKvmElf() => Virtual(_elf, _elfVirtual);

    private int Virtual(Kvm kvm, ulong[] addresses)
    {
        var ok = 0;
        foreach (var a in addresses)
            ok += kvm.TryReadVirtual(a, _eight, out _) ? 1 : 0;
        return ok;
    }
}

/// <summary>Sequential physical reads, one operation = every page the dump holds, read once with the page cache
/// cleared first (Program.cs's "sequential physical reads … vs plain zlib inflate" and the LZO pass). The baseline
/// is zlib itself: ZLibStream over each stored page already in memory, raw pages copied.</summary>
[BenchmarkCategory("sequential")]
public class SequentialReads
{
    private KdumpFile _zlib = null!, _lzo = null!;
    private List<ulong> _zlibPfns = null!, _lzoPfns = null!;
    private List<(byte[] Data, bool Zlib)> _stored = null!;
    private byte[] _page = null!;

    [GlobalSetup]
    public void Setup()
    {
        var zlibPath = Fixtures.Get("i386/pae-kdump-kaslr/vmcore.mdf-zlib-d31.kdump");
        _zlib = KdumpFile.Open(zlibPath, options: new KdumpOptions { CachePages = 64 });
        _lzo = KdumpFile.Open(Fixtures.Get("amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump"), options: new KdumpOptions { CachePages = 64 });
        _zlibPfns = Present(_zlib);
        _lzoPfns = Present(_lzo);
        _stored = Stored(zlibPath, _zlib);
        _page = new byte[_zlib.PageSize];
    }

    private static List<ulong> Present(KdumpFile k)
    {
        var pfns = new List<ulong>();
        for (ulong pfn = 0; pfn < k.MaxMapnr; pfn++)
        {
            if (k.GetPageCodec(pfn) is not null)
                pfns.Add(pfn);
        }
        return pfns;
    }

    /// <summary>Each dumped page's stored bytes, and whether they are zlib (flag 1) or raw.</summary>
    private static List<(byte[] Data, bool Zlib)> Stored(string path, KdumpFile k)
    {
        var list = new List<(byte[], bool)>();
        using var f = File.OpenHandle(path);
        var d = new byte[24];
        for (ulong i = 0; i < k.DumpedPageCount; i++)
        {
            RandomAccess.Read(f, d, k.Header.DescriptorsOffset + (long)i * 24);
            var data = new byte[BinaryPrimitives.ReadInt32LittleEndian(d.AsSpan(8))];
            RandomAccess.Read(f, data, BinaryPrimitives.ReadInt64LittleEndian(d));
            list.Add((data, BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(12)) == 1));
        }
        return list;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _zlib.Dispose();
        _lzo.Dispose();
    }

    /// <summary>zlib's own speed on the same pages: the floor for a zlib kdump reader.</summary>
    [Benchmark(Baseline = true, Description = "zlib inflate of every stored page (i386 zlib kdump)")]
    public unsafe int InflateBaseline()
    {
        var n = 0;
        foreach (var (data, zlib) in _stored)
        {
            if (zlib)
            {
                fixed (byte* p = data)
                {
                    using var input = new UnmanagedMemoryStream(p, data.Length);
                    using var z = new ZLibStream(input, CompressionMode.Decompress);
                    z.ReadExactly(_page);
                }
            }
            else
            {
                data.CopyTo(_page, 0);
            }
            n++;
        }
        return n;
    }

    [Benchmark(Description = "KdumpFile sequential, every page (i386 zlib kdump)")]
    public int ZlibKdump() => Pass(_zlib, _zlibPfns);

    [Benchmark(Description = "KdumpFile sequential, every page (amd64 LZO kdump)")]
    public int LzoKdump() => Pass(_lzo, _lzoPfns);

    private int Pass(KdumpFile k, List<ulong> pfns)
    {
        k.ClearCache();
        foreach (var pfn in pfns)
            k.Read(pfn * (ulong)k.PageSize, _page);
        return pfns.Count;
    }
}
