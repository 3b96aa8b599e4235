using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using KvmTyped.Formats;
using KvmTyped.Formats.Elf;
using KvmTyped.Formats.Kdump;
using KvmTyped.Formats.Lime;
using KvmTyped.IO;
using KvmTyped.TestSupport;

// Stopwatch benchmarks of the kdump reader on the real fixtures.
//   dotnet run -c Release --project tests/KvmTyped.Bench [-- seconds [more kdump files to time the open of]]
// 1. open time and managed memory of each kdump fixture;
// 2. sequential physical read throughput of the zlib kdump against plain zlib inflate of the same pages;
// 3. random 8-byte physical reads on cached pages.
// 4. a core read by position through the block cache (the /proc/kcore path) against the mapped one, and LiME files.
// Last: DWARF to BTF conversion of the Debian -dbg vmlinux, when tests/Shared/fetch-dbg.sh has cached it.
// `-- bt [rounds] [DUMP NAMELIST]` instead: kvmtyped bt --all beside ps on the sample (BacktraceBench.cs).
// `-- bdn [--short] [BenchmarkDotNet arguments, e.g. --filter *Random*]`: the random and sequential read benchmarks
// above under BenchmarkDotNet (MicroBenchmarks.cs).
if (args is ["bt", ..])
    Environment.Exit(KvmTyped.Bench.BacktraceBench.Run(args[1..]));
if (args is ["bdn", ..])
    Environment.Exit(KvmTyped.Bench.MicroBenchmarks.Run(args[1..]));
var seconds = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 3.0;
var fixtures = new[]
{
    "amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump",
    "i386/pae-kdump-kaslr/vmcore.mdf-zlib-d31.kdump",
};

if (Environment.GetEnvironmentVariable("KVMTYPED_BENCH_ONLY") == "arch")
{
    ArchComparison(seconds);
    return;
}

Console.WriteLine("== open: time and managed memory (first open in the process includes JIT) ==");
foreach (var f in fixtures.Concat(args.Skip(1)))
{
    var path = File.Exists(f) ? f : Fixtures.Get(f);
    File.ReadAllBytes(path); // warm the page cache, as `cat FILE > /dev/null` would
    var times = new List<double>();
    long allocated = 0, retained = 0;
    for (int i = 0; i < 21; i++)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long before = GC.GetTotalMemory(true);
        long allocBefore = GC.GetTotalAllocatedBytes(true);
        var sw = Stopwatch.StartNew();
        var k = KdumpFile.Open(path);
        sw.Stop();
        long allocAfter = GC.GetTotalAllocatedBytes(true);
        long after = GC.GetTotalMemory(true);
        GC.KeepAlive(k);
        times.Add(sw.Elapsed.TotalMilliseconds);
        if (i == 0)
            Console.WriteLine($"{f}: first open {sw.Elapsed.TotalMilliseconds:F1} ms");
        allocated = allocAfter - allocBefore;
        retained = after - before;
        k.Dispose();
    }
    times.Sort();
    Console.WriteLine($"{f}: warm open median {times[times.Count / 2]:F2} ms, max {times[^1]:F2} ms; allocated {allocated / 1024.0:F0} KiB, retained {retained / 1024.0:F0} KiB");
}

Console.WriteLine();
Console.WriteLine("== sequential physical reads of the zlib kdump vs plain zlib inflate of its pages ==");
{
    var path = Fixtures.Get(fixtures[1]);
    using var k = KdumpFile.Open(path, options: new KdumpOptions { CachePages = 64 });
    // The pages present, in address order, and their stored forms (read once, for the baseline).
    var pfns = new List<ulong>();
    for (ulong pfn = 0; pfn < k.MaxMapnr; pfn++)
        if (k.GetPageCodec(pfn) is not null)
            pfns.Add(pfn);
    var stored = ReadStoredPages(path, k);
    int pageSize = k.PageSize;
    long bytesPerPass = (long)pfns.Count * pageSize;
    Console.WriteLine($"{pfns.Count} pages present ({bytesPerPass / 1048576.0:F1} MiB), {stored.Count(s => s.Zlib)} zlib, {stored.Count(s => !s.Zlib)} raw");

    var page = new byte[pageSize];
    double Baseline()
    {
        var sw = Stopwatch.StartNew();
        long bytes = 0;
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            foreach (var (data, zlib) in stored)
            {
                if (zlib)
                    Inflate(data, page);
                else
                    data.CopyTo(page, 0);
            }
            bytes += bytesPerPass;
        }
        return bytes / sw.Elapsed.TotalSeconds / 1048576.0;
    }

    double Reader()
    {
        var sw = Stopwatch.StartNew();
        long bytes = 0;
        var buf = new byte[pageSize];
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            k.ClearCache();
            foreach (var pfn in pfns)
                k.Read(pfn * (ulong)pageSize, buf);
            bytes += bytesPerPass;
        }
        return bytes / sw.Elapsed.TotalSeconds / 1048576.0;
    }

    Baseline();
    Reader();
    // Alternate the two, three rounds each, and compare medians: the machine is shared.
    var b = new List<double>();
    var r = new List<double>();
    for (int round = 0; round < 3; round++)
    {
        b.Add(Baseline());
        r.Add(Reader());
    }
    b.Sort();
    r.Sort();
    double baseline = b[1], reader = r[1];
    Console.WriteLine($"plain zlib inflate (ZLibStream per page over the compressed bytes in memory; raw pages copied): {baseline:F1} MiB/s (rounds: {string.Join(", ", b.Select(x => x.ToString("F0", CultureInfo.InvariantCulture)))})");
    Console.WriteLine($"KdumpFile sequential physical reads (cache cleared each pass): {reader:F1} MiB/s (rounds: {string.Join(", ", r.Select(x => x.ToString("F0", CultureInfo.InvariantCulture)))}) = {100 * reader / baseline:F0}% of inflate");
}

Console.WriteLine();
Console.WriteLine("== sequential physical reads of the LZO kdump ==");
{
    using var k = KdumpFile.Open(Fixtures.Get(fixtures[0]), options: new KdumpOptions { CachePages = 64 });
    var pfns = new List<ulong>();
    for (ulong pfn = 0; pfn < k.MaxMapnr; pfn++)
        if (k.GetPageCodec(pfn) is not null)
            pfns.Add(pfn);
    var buf = new byte[k.PageSize];
    var rates = new List<double>();
    for (int round = 0; round < 4; round++)
    {
        var sw = Stopwatch.StartNew();
        long bytes = 0;
        while (sw.Elapsed.TotalSeconds < seconds / 2)
        {
            k.ClearCache();
            foreach (var pfn in pfns)
                k.Read(pfn * (ulong)k.PageSize, buf);
            bytes += (long)pfns.Count * k.PageSize;
        }
        rates.Add(bytes / sw.Elapsed.TotalSeconds / 1048576.0);
    }
    rates.Sort();
    Console.WriteLine($"{pfns.Count} pages: {rates[2]:F1} MiB/s (median of the last rounds; first round includes JIT)");
}

Console.WriteLine();
Console.WriteLine("== random 8-byte physical reads on cached pages ==");
{
    using var k = KdumpFile.Open(Fixtures.Get(fixtures[0]), options: new KdumpOptions { CachePages = 1024 });
    var pfns = new List<ulong>();
    for (ulong pfn = 0x7600; pfn < k.MaxMapnr && pfns.Count < 512; pfn++)
        if (k.GetPageCodec(pfn) is not null)
            pfns.Add(pfn);
    var addresses = new ulong[1 << 16];
    var rnd = new Random(1);
    for (int i = 0; i < addresses.Length; i++)
        addresses[i] = pfns[rnd.Next(pfns.Count)] * 4096 + (ulong)rnd.Next(0, 4096 - 8);
    Span<byte> eight = stackalloc byte[8];
    foreach (var a in addresses)
        k.Read(a, eight);
    long reads = 0;
    long alloc = GC.GetAllocatedBytesForCurrentThread();
    var sw = Stopwatch.StartNew();
    while (sw.Elapsed.TotalSeconds < seconds)
    {
        foreach (var a in addresses)
            k.TryRead(a, eight, out _);
        reads += addresses.Length;
    }
    alloc = GC.GetAllocatedBytesForCurrentThread() - alloc;
    Console.WriteLine($"{reads / sw.Elapsed.TotalSeconds / 1e6:F1} M reads/s on one thread, {alloc} bytes allocated");
}

Console.WriteLine();
Console.WriteLine("== Kvm.Open of every fixture with its System.map (whole open: headers, VMCOREINFO, KASLR, page tables, namelist check) ==");
{
    var sets = new (string Core, string Map)[]
    {
        ("amd64/nokaslr/dump.elf.gz", "amd64/System.map-6.1.0-56-amd64"),
        ("amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz", "amd64/System.map-6.1.0-56-amd64"),
        ("amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump", "amd64/System.map-6.1.0-56-amd64"),
        ("i386/pae-kdump-kaslr/vmcore.mdf-d31.elf.gz", "i386/System.map-6.1.0-50-686-pae"),
        ("i386/pae-kdump-kaslr/vmcore.mdf-zlib-d31.kdump", "i386/System.map-6.1.0-50-686-pae"),
        ("arm64/dump.kdump-zlib", "arm64/System.map-6.1.0-50-arm64"),
    };
    foreach (var (coreName, mapName) in sets)
    {
        var core = Fixtures.Get(coreName);
        var map = Fixtures.Get(mapName);
        var times = new List<double>();
        long retained = 0;
        double first = 0;
        for (int i = 0; i < 11; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            long before = GC.GetTotalMemory(true);
            var sw = Stopwatch.StartNew();
            var kvm = KvmTyped.Kvm.Open(map, core);
            sw.Stop();
            retained = GC.GetTotalMemory(true) - before;
            GC.KeepAlive(kvm);
            kvm.Dispose();
            if (i == 0)
                first = sw.Elapsed.TotalMilliseconds;
            else
                times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        Console.WriteLine($"{coreName}: first open {first:F1} ms (JIT included), warm median {times[times.Count / 2]:F1} ms; managed memory held by an open image {retained / 1048576.0:F1} MiB");
    }
}

Console.WriteLine();
Console.WriteLine("== sequential physical reads of an ELF dump vs reading the file (cat FILE > /dev/null) ==");
{
    var path = Fixtures.Get("amd64/nokaslr/dump.elf.gz");
    using var kvm = KvmTyped.Kvm.Open(Fixtures.Get("amd64/System.map-6.1.0-56-amd64"), path);
    var ranges = kvm.Physical.Ranges;
    var buf = new byte[1 << 20];
    double Cat()
    {
        var sw = Stopwatch.StartNew();
        long bytes = 0;
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        int n;
        while ((n = f.Read(buf)) > 0)
            bytes += n;
        return bytes / sw.Elapsed.TotalSeconds / 1048576.0;
    }
    double Physical()
    {
        var sw = Stopwatch.StartNew();
        long bytes = 0;
        foreach (var r in ranges)
        {
            for (ulong a = r.Start; a < r.End; a += (ulong)buf.Length)
            {
                var n = (int)Math.Min((ulong)buf.Length, r.End - a);
                kvm.Physical.Read(a, buf.AsSpan(0, n));
                bytes += n;
            }
        }
        return bytes / sw.Elapsed.TotalSeconds / 1048576.0;
    }
    Cat();
    Physical();
    var c = new List<double>();
    var p = new List<double>();
    for (int round = 0; round < 5; round++)
    {
        c.Add(Cat());
        p.Add(Physical());
    }
    c.Sort();
    p.Sort();
    Console.WriteLine($"file read (1 MiB reads, page cache warm): {c[2]:F0} MiB/s; Kvm physical reads over every range: {p[2]:F0} MiB/s = {100 * p[2] / c[2]:F0}%");
}

Console.WriteLine();
Console.WriteLine("== random 8-byte kernel-virtual reads through Kvm on cached pages (direct map, page tables, translation cache) ==");
foreach (var (coreName, mapName) in new[] { ("amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump", "amd64/System.map-6.1.0-56-amd64"), ("amd64/nokaslr/dump.elf.gz", "amd64/System.map-6.1.0-56-amd64") })
{
    using var kvm = KvmTyped.Kvm.Open(Fixtures.Get(mapName), Fixtures.Get(coreName));
    // 512 pages of kernel data that the dump holds, reached through the direct map.
    var addresses = KvmTyped.Bench.RandomReads.DirectMapAddresses(kvm, out var pageCount);
    var eight = new byte[8];
    foreach (var a in addresses)
        kvm.TryReadVirtual(a, eight, out _);
    var rates = new List<double>();
    long alloc = 0;
    for (int round = 0; round < 5; round++)
    {
        long reads = 0;
        long a0 = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < seconds / 3)
        {
            foreach (var a in addresses)
                kvm.TryReadVirtual(a, eight, out _);
            reads += addresses.Length;
        }
        alloc = GC.GetAllocatedBytesForCurrentThread() - a0;
        rates.Add(reads / sw.Elapsed.TotalSeconds / 1e6);
    }
    rates.Sort();
    Console.WriteLine($"{coreName}: {rates[2]:F1} M reads/s median on one thread ({pageCount} pages), {alloc} bytes allocated in the last round");
}

ArchComparison(seconds);

Console.WriteLine();
Console.WriteLine("== namelist: first use (index build) and lookups ==");
foreach (var name in new[] { "amd64/vmlinux-6.1.0-56-amd64.gz", "amd64/System.map-6.1.0-56-amd64" })
{
    var path = Fixtures.Get(name);
    var core = Fixtures.Get("amd64/nokaslr/dump.elf.gz");
    var sw = Stopwatch.StartNew();
    using var kvm = KvmTyped.Kvm.Open(path, core);
    var openMs = sw.Elapsed.TotalMilliseconds;
    var all = File.ReadLines(Fixtures.Get("amd64/System.map-6.1.0-56-amd64")).Select(l => l.Split(' ')).Where(x => x[0].StartsWith("ffffffff", StringComparison.Ordinal)).ToArray();
    var names = all.Select(x => x[2]).ToArray();
    var addrs = all.Select(x => Convert.ToUInt64(x[0], 16) + 0x123).ToArray();
    long found = 0;
    sw.Restart();
    for (int round = 0; round < 10; round++)
        foreach (var n in names)
            if (kvm.Symbols.TryLookup(n, out _))
                found++;
    var byName = names.Length * 10 / sw.Elapsed.TotalSeconds / 1e6;
    sw.Restart();
    for (int round = 0; round < 10; round++)
        foreach (var a in addrs)
            if (kvm.Symbols.TryFindNearest(a, out _))
                found++;
    var byAddr = addrs.Length * 10 / sw.Elapsed.TotalSeconds / 1e6;
    Console.WriteLine($"{name}: {kvm.Symbols.Count} symbols; open with first use (index built) {openMs:F0} ms; {byName:F1} M lookups/s by name, {byAddr:F1} M nearest-symbol lookups/s ({found} hits)");
}

Console.WriteLine();
Console.WriteLine("== kallsyms decoded from the dump's memory (tables found through VMCOREINFO; image already open) ==");
foreach (var (coreName, mapName) in new[] { ("amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump", "amd64/System.map-6.1.0-56-amd64"), ("i386/pae-kdump-kaslr/vmcore.mdf-zlib-d31.kdump", "i386/System.map-6.1.0-50-686-pae") })
{
    using var kvm = KvmTyped.Kvm.Open(Fixtures.Get(mapName), Fixtures.Get(coreName));
    var tables = KvmTyped.Symbols.KallsymsTables.FromVmcoreInfo(kvm.VmcoreInfoData, coreName);
    var reads = 0;
    KvmTyped.Symbols.ReadVirtualMemory counting = (ulong a, Span<byte> d, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? f) => { reads++; return kvm.TryReadVirtual(a, d, out f); };
    var times = new List<double>();
    double first = 0;
    long allocated = 0;
    int count = 0;
    for (int i = 0; i < 21; i++)
    {
        reads = 0;
        long a0 = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        var table = KvmTyped.Symbols.KallsymsImage.Decode(counting, tables, kvm.DataModel, coreName);
        sw.Stop();
        allocated = GC.GetAllocatedBytesForCurrentThread() - a0;
        count = table.Count;
        if (i == 0)
            first = sw.Elapsed.TotalMilliseconds;
        else
            times.Add(sw.Elapsed.TotalMilliseconds);
    }
    times.Sort();
    Console.WriteLine($"{coreName}: {count} symbols in {reads} reads; first decode {first:F1} ms (JIT included), warm median {times[times.Count / 2]:F1} ms, fastest {times[0]:F1} ms; {allocated / 1048576.0:F1} MiB allocated per decode");
}

Console.WriteLine("== a core read by position (the /proc/kcore path: no map, a block cache) and the same memory as a LiME file ==");
{
    // The nokaslr ELF dump's memory three ways: mapped (ElfCoreMemory), read by position through the block cache
    // (KcoreMemory, as /proc/kcore is read), and rewritten as a LiME file (LimeMemory, also mapped).
    var path = Fixtures.Get("amd64/nokaslr/dump.elf.gz");
    using var mapped = new ElfCoreMemory(ElfImage.Parse(RandomAccessFile.Open(path, writable: false)));
    using var byPosition = new KcoreMemory(ElfImage.Parse(RandomAccessFile.Open(path, writable: false, map: false)));
    var lime = Path.Combine(Path.GetTempPath(), $"kvmtyped-bench-{Environment.ProcessId}.lime");
    try
    {
        using (var o = File.Create(lime))
        {
            var header = new byte[LimeMemory.HeaderSize];
            var chunk = new byte[1 << 20];
            foreach (var r in mapped.Ranges)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(header, LimeMemory.LimeMagic);
                BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), 1);
                BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(8), r.Start);
                BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(16), r.End - 1);
                o.Write(header);
                for (var a = r.Start; a < r.End; a += (ulong)chunk.Length)
                {
                    var n = (int)Math.Min((ulong)chunk.Length, r.End - a);
                    mapped.Read(a, chunk.AsSpan(0, n));
                    o.Write(chunk, 0, n);
                }
            }
        }
        File.ReadAllBytes(lime);
        var opens = new List<double>();
        for (var i = 0; i < 11; i++)
        {
            var sw = Stopwatch.StartNew();
            using var m = LimeMemory.Open(RandomAccessFile.Open(lime, writable: false));
            opens.Add(sw.Elapsed.TotalMilliseconds);
        }
        opens.Sort();
        using var limeMemory = LimeMemory.Open(RandomAccessFile.Open(lime, writable: false));
        Console.WriteLine($"LiME file of {mapped.Ranges.Count} ranges ({new FileInfo(lime).Length / 1048576.0:F0} MiB): open median {opens[5]:F2} ms");

        var buf = new byte[1 << 20];
        double Sequential(IPhysicalMemory memory, int size)
        {
            var sw = Stopwatch.StartNew();
            long bytes = 0;
            foreach (var r in memory.Ranges)
            {
                for (var a = r.Start; a < r.End; a += (ulong)size)
                {
                    var n = (int)Math.Min((ulong)size, r.End - a);
                    memory.Read(a, buf.AsSpan(0, n));
                    bytes += n;
                }
            }
            return bytes / sw.Elapsed.TotalSeconds / 1048576.0;
        }
        foreach (var (name, memory) in new (string, IPhysicalMemory)[] { ("mapped ELF", mapped), ("ELF by position", byPosition), ("LiME", limeMemory) })
        {
            foreach (var size in new[] { 1 << 20, 4096 })
            {
                Sequential(memory, size);
                var rates = new List<double>();
                for (var round = 0; round < 3; round++)
                    rates.Add(Sequential(memory, size));
                rates.Sort();
                Console.WriteLine($"{name}: sequential reads of {size / 1024} KiB over every range: {rates[1]:F0} MiB/s");
            }
        }

        // Random 8-byte reads over 64 pages (256 KiB: the block cache holds them all) and over 4096 pages (16 MiB: it
        // does not), as a walk of task structs and page tables would read.
        foreach (var pages in new[] { 64, 4096 })
        {
            var rnd = new Random(3);
            var ram = mapped.Ranges.OrderByDescending(r => r.Length).First();
            var addresses = new ulong[1 << 16];
            var bases = Enumerable.Range(0, pages).Select(_ => ram.Start + (ulong)rnd.NextInt64((long)(ram.Length / 4096)) * 4096).ToArray();
            for (var i = 0; i < addresses.Length; i++)
                addresses[i] = bases[rnd.Next(pages)] + (ulong)rnd.Next(0, 4096 - 8);
            var eight = new byte[8];
            foreach (var (name, memory) in new (string, IPhysicalMemory)[] { ("mapped ELF", mapped), ("ELF by position", byPosition) })
            {
                foreach (var a in addresses)
                    memory.TryRead(a, eight, out _);
                var preads = byPosition.Cache.FileReads;
                long reads = 0;
                var sw = Stopwatch.StartNew();
                while (sw.Elapsed.TotalSeconds < seconds / 3)
                {
                    foreach (var a in addresses)
                        memory.TryRead(a, eight, out _);
                    reads += addresses.Length;
                }
                var perThousand = memory == byPosition ? $", {1000.0 * (byPosition.Cache.FileReads - preads) / reads:F1} preads per 1000 reads" : "";
                Console.WriteLine($"{name}: random 8-byte reads over {pages} pages: {reads / sw.Elapsed.TotalSeconds / 1e6:F2} M reads/s{perThousand}");
            }
        }
    }
    finally
    {
        File.Delete(lime);
    }
}

Console.WriteLine();
Console.WriteLine("== DWARF to BTF of the Debian -dbg vmlinux (fetched by tests/Shared/fetch-dbg.sh): first conversion in the process, warm ones, and a load from the cache ==");
{
    var dbgCache = Environment.GetEnvironmentVariable("KVMTYPED_DBG_CACHE") is { Length: > 0 } d ? d
        : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x : Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/", ".cache"), "kvmtyped-dbg");
    foreach (var name in new[] { "vmlinux-6.1.0-56-amd64", "vmlinux-6.1.0-50-686-pae" })
    {
        var path = Path.Combine(dbgCache, name);
        if (!File.Exists(path))
        {
            Console.WriteLine($"{name}: skipped, {path} is missing (run tests/Shared/fetch-dbg.sh)");
            continue;
        }
        File.OpenRead(path).CopyTo(Stream.Null); // warm the page cache, as `cat FILE > /dev/null` would
        var times = new List<double>();
        long retained = 0;
        KvmTyped.Dwarf.DwarfConversionStats stats = default;
        for (int i = 0; i < 4; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            long before = GC.GetTotalMemory(true);
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            using var file = KvmTyped.IO.RandomAccessFile.Open(path, writable: false);
            var blob = KvmTyped.Dwarf.DwarfToBtf.Convert(KvmTyped.Formats.Elf.ElfImage.Parse(file), 0, out stats)!;
            var types = KvmTyped.Btf.BtfTypes.Parse(blob);
            sw.Stop();
            var cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds;
            retained = GC.GetTotalMemory(true) - before;
            GC.KeepAlive(types);
            if (i == 0)
                Console.WriteLine($"{name}: first conversion {sw.Elapsed.TotalMilliseconds:F0} ms wall, {cpuMs:F0} ms CPU (JIT included): index {stats.IndexTime.TotalMilliseconds:F0} ms wall, {stats.IndexCpuTime.TotalMilliseconds:F0} ms CPU ({stats.Units} units, {stats.EntriesSkimmed} top-level entries), convert {stats.ConvertTime.TotalMilliseconds:F0} ms, {stats.Types} BTF types, {blob.Length / 1048576.0:F1} MiB of BTF");
            else
                times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        Console.WriteLine($"{name}: warm conversions median {times[times.Count / 2]:F0} ms (of {string.Join(", ", times.Select(t => t.ToString("F0", CultureInfo.InvariantCulture)))}); managed memory held by the BTF {retained / 1048576.0:F1} MiB; process peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0:F0} MiB (includes mapped file pages)");
        var cacheDir = Path.Combine(Path.GetTempPath(), "kvmtyped-bench-cache-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        try
        {
            var options = new KvmTyped.Dwarf.DwarfOptions { CacheDirectory = cacheDir };
            KvmTyped.Dwarf.DwarfTypeSource.TryLoad(path, options, out _, out _);
            var sw = Stopwatch.StartNew();
            KvmTyped.Dwarf.DwarfTypeSource.TryLoad(path, options, out _, out var source);
            Console.WriteLine($"{name}: load from the cache {sw.Elapsed.TotalMilliseconds:F1} ms ({source})");
        }
        finally
        {
            Directory.Delete(cacheDir, recursive: true);
        }
    }
}

Console.WriteLine();
Console.WriteLine("== kernel layout: from VMCOREINFO and by the linux_banner search (no VMCOREINFO) ==");
foreach (var (dumpName, mapName) in new[] { ("amd64/nokaslr/dump.elf.gz", "amd64/System.map-6.1.0-56-amd64"), ("amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz", "amd64/System.map-6.1.0-56-amd64"), ("i386/pae-kdump-kaslr/vmcore.mdf-d31.elf.gz", "i386/System.map-6.1.0-50-686-pae") })
{
    using var kvm = KvmTyped.Kvm.Open(Fixtures.Get(mapName), Fixtures.Get(dumpName));
    var memory = kvm.Physical;
    var symbols = kvm.Symbols;
    KvmTyped.Arch.X86.KernelLayout.Detect(memory, kvm.VmcoreInfoData, symbols, kvm.DataModel);
    var times = new double[2];
    for (var k = 0; k < 2; k++)
    {
        var runs = new List<double>();
        for (var round = 0; round < 5; round++)
        {
            var sw = Stopwatch.StartNew();
            KvmTyped.Arch.X86.KernelLayout.Detect(memory, k == 0 ? kvm.VmcoreInfoData : null, symbols, kvm.DataModel);
            runs.Add(sw.Elapsed.TotalMilliseconds);
        }
        runs.Sort();
        times[k] = runs[2];
    }
    Console.WriteLine($"{dumpName}: from VMCOREINFO {times[0]:F2} ms, by banner search {times[1]:F2} ms (medians of 5)");
}

Console.WriteLine();
Console.WriteLine("== BTF: read, parse and flatten task_struct (the vmlinux's .BTF, and this machine's /sys/kernel/btf/vmlinux) ==");
foreach (var path in new[] { Fixtures.Get("amd64/vmlinux-6.1.0-56-amd64.gz"), "/sys/kernel/btf/vmlinux" })
{
    if (!File.Exists(path))
    {
        Console.WriteLine($"{path}: missing, not measured");
        continue;
    }
    var runs = new List<double>();
    for (var round = 0; round < 6; round++)
    {
        var sw = Stopwatch.StartNew();
        var types = KvmTyped.Btf.BtfReader.Load(path);
        _ = types.GetFlattenedMembers(types.Find("task_struct", KvmTyped.Btf.BtfKind.Struct));
        runs.Add(sw.Elapsed.TotalMilliseconds);
    }
    runs.Sort();
    Console.WriteLine($"{path}: {runs[2]:F1} ms median, first {runs[^1]:F1} ms at most");
}

static unsafe void Inflate(byte[] data, byte[] page)
{
    fixed (byte* p = data)
    {
        using var input = new UnmanagedMemoryStream(p, data.Length);
        using var z = new ZLibStream(input, CompressionMode.Decompress);
        z.ReadExactly(page);
    }
}

static List<(byte[] Data, bool Zlib)> ReadStoredPages(string path, KdumpFile k)
{
    var list = new List<(byte[], bool)>();
    using var f = File.OpenHandle(path);
    var d = new byte[24];
    for (ulong i = 0; i < k.DumpedPageCount; i++)
    {
        RandomAccess.Read(f, d, k.Header.DescriptorsOffset + (long)i * 24);
        long offset = BinaryPrimitives.ReadInt64LittleEndian(d);
        int size = BinaryPrimitives.ReadInt32LittleEndian(d.AsSpan(8));
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(12));
        var data = new byte[size];
        RandomAccess.Read(f, data, offset);
        list.Add((data, flags == 1));
    }
    return list;
}

// ps (every task through the generated views) and random 8-byte kernel-virtual reads through the linear map, on the
// amd64 kdump and the arm64 one: the same code above translation, x86-64 4-level tables beside aarch64 4 KiB/48-bit
// ones (each behind the translation cache). Alone: KVMTYPED_BENCH_ONLY=arch.
static void ArchComparison(double seconds)
{
    Console.WriteLine();
    Console.WriteLine("== amd64 beside arm64: ps (KernelTasks.List) and random 8-byte kernel-virtual reads on the direct/linear map ==");
    foreach (var (coreName, mapName) in new[] { ("amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump", "amd64/System.map-6.1.0-56-amd64"), ("arm64/dump.kdump-zlib", "arm64/System.map-6.1.0-50-arm64") })
    {
        using var kvm = KvmTyped.Kvm.Open(Fixtures.Get(mapName), Fixtures.Get(coreName));
        var psTimes = new List<double>();
        var tasks = 0;
        for (int i = 0; i < 21; i++)
        {
            var sw = Stopwatch.StartNew();
            tasks = new KvmTyped.Linux.KernelTasks(kvm).List().Count;
            sw.Stop();
            if (i > 0)
                psTimes.Add(sw.Elapsed.TotalMilliseconds);
        }
        psTimes.Sort();

        var addresses = KvmTyped.Bench.RandomReads.DirectMapAddresses(kvm, out var pageCount);
        var eight = new byte[8];
        foreach (var a in addresses)
            kvm.TryReadVirtual(a, eight, out _);
        var rates = new List<double>();
        for (int round = 0; round < 5; round++)
        {
            long reads = 0;
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed.TotalSeconds < seconds / 3)
            {
                foreach (var a in addresses)
                    kvm.TryReadVirtual(a, eight, out _);
                reads += addresses.Length;
            }
            rates.Add(reads / sw.Elapsed.TotalSeconds / 1e6);
        }
        rates.Sort();
        Console.WriteLine($"{coreName} ({kvm.Machine}): ps of {tasks} tasks warm median {psTimes[psTimes.Count / 2]:F2} ms; random reads {rates[2]:F1} M/s median on one thread ({pageCount} pages)");
    }
}
