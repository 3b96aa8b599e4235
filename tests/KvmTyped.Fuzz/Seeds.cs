using System.Buffers.Binary;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.IO.Compression;
using System.Text;
using KvmTyped.Arch.X86;
using KvmTyped.Formats;
using KvmTyped.Formats.Compression;
using KvmTyped.Formats.Kdump;
using KvmTyped.Linux;
using KvmTyped.Open;
using KvmTyped.Symbols;
using KvmTyped.Tests.Linux.Unwind;
using KvmTyped.Tests.TestSupport;
using KvmTyped.TestSupport;

namespace KvmTyped.Fuzz;

/// <summary>Builds the seed corpora: cores cut down from the fixtures to the pages that open, info, the banner, uname and
/// the log touch (every codec, flattened, split), and small synthetic inputs for the other targets; and the
/// namelists the core targets open with (the fixtures' System.map cut down to the symbols the open reads).</summary>
internal static class Seeds
{
    private const int Page = 4096;

    private static readonly string[] NamelistSymbols =
    [
        "__start_BTF", "__stop_BTF", "_end", "_stext", "_text", "high_memory", "init_top_pgt", "init_uts_ns", "init_task",
        "linux_banner", "log_buf", "log_buf_len", "log_end", "log_first_idx", "log_next_idx", "logged_chars", "page_offset_base",
        "phys_startup_32", "prb", "startup_32", "swapper_pg_dir", "phys_base", "vmalloc_base", "vmemmap_base", "runqueues",
        "__per_cpu_offset", "init_mm", "_sinittext", "_etext", "_sdata", "_edata", "__bss_start", "__bss_stop",
    ];

    public static void Build(string outDir, string namelistDir)
    {
        Directory.CreateDirectory(namelistDir);
        var amd64Map = CutNamelist(Fixtures.Get("amd64/System.map-6.1.0-56-amd64"), Path.Combine(namelistDir, "amd64.map"));
        var i386Map = CutNamelist(Fixtures.Get("i386/System.map-6.1.0-50-686-pae"), Path.Combine(namelistDir, "i386.map"));

        string Dir(string target) => Directory.CreateDirectory(Path.Combine(outDir, target)).FullName;
        void Put(string target, string name, byte[] bytes)
        {
            if (bytes.Length > FuzzTargets.MaxInputBytes)
                throw new InvalidOperationException($"seed {target}/{name} is {bytes.Length} bytes, more than {FuzzTargets.MaxInputBytes}");
            File.WriteAllBytes(Path.Combine(Dir(target), name), bytes);
            Console.WriteLine($"{target}/{name}: {bytes.Length} bytes");
        }

        // ELF cores: the QEMU x86-64 dump and the i386 PAE kdump's ELF, with only the pages the commands read.
        var qemu = Touched(amd64Map, Fixtures.Get("amd64/nokaslr/dump.elf.gz"), withLog: true);
        var i386 = Touched(i386Map, Fixtures.Get("i386/pae-kdump-kaslr/vmcore.mdf-d31.elf.gz"), withLog: true);
        foreach (var (name, (pages, vmcoreinfo), is64, machine) in new[] { ("amd64-qemu.elf", qemu, true, (ushort)62), ("i386-kdump.elf", i386, false, (ushort)3) })
        {
            var w = new ElfWriter { Is64 = is64, Machine = machine, Type = 4 };
            foreach (var (start, data) in Runs(pages))
                w.AddLoad(start, start, data);
            w.AddNote("VMCOREINFO", 0, vmcoreinfo);
            Put("elf-core", name, w.Build());
        }
        // A page claimed 32 TiB wide: the banner search must not crawl it (issue 15, finding 3).
        Put("elf-core", "claims-32TiB.elf", ElfWriter.Core64().AddLoad(0, 0, new byte[Page], memsz: 32UL << 40).Build());

        // kdump-compressed: the QEMU dump's pages in every codec, flattened and split; the real LZO and zlib pages of
        // the fixtures' kdumps copied as they are.
        {
            var (pages, vmcoreinfo) = qemu;
            var uts = new byte[6 * 65];
            Encoding.ASCII.GetBytes("Linux").CopyTo(uts, 0);
            Encoding.ASCII.GetBytes("x86_64").CopyTo(uts, 4 * 65);
            foreach (var codec in new[] { PageCodec.Raw, PageCodec.Zlib, PageCodec.Snappy, PageCodec.Zstd })
                Put("kdump", $"amd64-{codec.ToString().ToLowerInvariant()}.kdump", KdumpImage(pages.Keys, p => Compress(codec, pages[p]), uts, vmcoreinfo));
            Put("kdump", "amd64-zlib-flattened.kdump", Flatten(KdumpImage(pages.Keys, p => Compress(PageCodec.Zlib, pages[p]), uts, vmcoreinfo)));
            var split = pages.Keys.Order().ToArray()[pages.Count / 2];
            var first = KdumpImage(pages.Keys, p => Compress(PageCodec.Zstd, pages[p]), uts, vmcoreinfo, (0, split));
            var second = KdumpImage(pages.Keys, p => Compress(PageCodec.Zstd, pages[p]), uts, vmcoreinfo, (split, pages.Keys.Max() + 1));
            Put("kdump", "amd64-zstd-split.kdumpset", SplitSet(first, second));
        }
        foreach (var (name, file, map, bits32) in new[]
        {
            ("amd64-real-lzo.kdump", "amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump", amd64Map, false),
            ("i386-real-zlib.kdump", "i386/pae-kdump-kaslr/vmcore.mdf-zlib-d31.kdump", i386Map, true),
        })
        {
            var path = Fixtures.Get(file);
            var (pages, vmcoreinfo) = Touched(map, path, withLog: true);
            var stored = CopyStoredPages(path, pages.Keys, bits32);
            Put("kdump", name, KdumpImage(pages.Keys, p => stored[p], File.ReadAllBytes(path).AsSpan(12, 6 * 65).ToArray(), vmcoreinfo));
        }

        // One page per codec, and a real LZO page.
        var sample = new byte[Page];
        Encoding.ASCII.GetBytes("Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)\n").CopyTo(sample, 64);
        for (var i = 1024; i < 2048; i++)
            sample[i] = (byte)(i * 7);
        foreach (var codec in Enum.GetValues<PageCodec>())
            Put("page-codec", codec.ToString().ToLowerInvariant(), [(byte)codec, .. Compress(codec, sample).Data]);
        Put("page-codec", "lzo-real", [(byte)PageCodec.Lzo, .. CopyStoredPages(Fixtures.Get("amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump"), [0x1000], bits32: false)[0x1000].Data]);

        // BTF: the tagged blob of the unit tests, and the tasks target's.
        Put("btf", "tagged.btf", File.ReadAllBytes(Path.Combine(Fixtures.RepoRoot, "tests", "Shared", "Btf", "tagged.btf")));
        Put("btf", "tasks.btf", TaskTypesBlob());

        // DWARF: small C files compiled with gcc -g, 64- and 32-bit.
        foreach (var (name, args) in new[] { ("tagged-64.o", "-m64"), ("tagged-32.o", "-m32") })
        {
            if (Gcc(Path.Combine(Fixtures.RepoRoot, "tests", "Shared", "Btf", "tagged.c"), args) is { } o)
                Put("dwarf", name, o);
        }
        if (Gcc(WriteTemp("structs.c", StructsC), "-m64") is { } structs)
            Put("dwarf", "structs-64.o", structs);

        // kallsyms in memory, in each address mode.
        foreach (var mode in Enum.GetValues<KallsymsAddressMode>())
            Put("kallsyms-image", mode.ToString(), KallsymsSeed(mode));

        // Schemas: the shipped ones and the library's own.
        foreach (var h in Directory.EnumerateFiles(Path.Combine(Fixtures.RepoRoot, "schemas"), "*.h", SearchOption.AllDirectories)
            .Concat(Directory.EnumerateFiles(Path.Combine(Fixtures.RepoRoot, "src", "KvmTyped", "Linux", "Schemas"), "*.h")))
            Put("schema", Path.GetFileName(h), File.ReadAllBytes(h));

        // Symbol texts: the head of each System.map, and the same as /proc/kallsyms prints it.
        foreach (var (name, map) in new[] { ("amd64", "amd64/System.map-6.1.0-56-amd64"), ("i386", "i386/System.map-6.1.0-50-686-pae") })
        {
            var lines = File.ReadLines(Fixtures.Get(map)).Take(400).ToList();
            Put("symbol-text", name + ".map", Encoding.ASCII.GetBytes(string.Join('\n', lines) + "\n"));
            Put("symbol-text", name + ".kallsyms", Encoding.ASCII.GetBytes(string.Join('\n', lines.Select((l, i) => i % 5 == 0 ? l + "\t[fat]" : l)) + "\n"));
        }

        // ELF kernels with a symbol table, 64- and 32-bit.
        Put("elf-symtab", "kernel64.elf", KernelElf(ElfWriter.Kernel64(), 0xffffffff82000000));
        Put("elf-symtab", "kernel32.elf", KernelElf(ElfWriter.Kernel32(), 0xc1800000));

        // The log in each layout; the tasks of a small kernel; page tables of each mode.
        Put("printk", "ring", PrintkRing());
        Put("printk", "records", PrintkRecords());
        Put("printk", "plain", PrintkPlain());
        Put("tasks", "four-tasks", TasksSeed());
        foreach (var mode in new[] { 0, 1, 2, 3 })
            Put("pagetables-x86", "mode" + mode.ToString(System.Globalization.CultureInfo.InvariantCulture), X86TablesSeed(mode));
        Put("pagetables-arm64", "4k-48-kernel", Arm64TablesSeed());

        // Backtraces: the inputs the unit tests check reach their code, and each variant the byte layouts pick.
        var orc = BacktraceSeeds.Orc();
        Put("unwind-orc", "registers-6.1", orc);
        Put("unwind-orc", "switched-out-6.1", [1, .. orc.AsSpan(1)]);
        Put("unwind-orc", "registers-6.4", [orc[0], orc[1], 2, .. orc.AsSpan(3)]);
        Put("unwind-fp", "i386-registers", BacktraceSeeds.FramePointers());
        Put("unwind-fp", "amd64-registers", FramePointers64());
        Put("unwind-arm64", "registers-pac", BacktraceSeeds.Arm64());
        Put("orc-table", "three-entries", BacktraceSeeds.OrcTable());
        Put("modules", "amd64-empty", [0, .. BacktraceSeeds.EmptyModuleList()]);
        Put("modules", "amd64-fat", [0, .. BacktraceSeeds.OneModuleList()]);
        // The real note areas: QEMU's (NT_PRSTATUS and its own CPU state per vCPU, VMCOREINFO) and the kdump kernels'
        // (the panic CPU's registers and the others', VMCOREINFO), 64-bit and 32-bit.
        Put("cpu-notes", "amd64-qemu", BacktraceSeeds.NoteArea(Fixtures.Get("amd64/nokaslr/dump.elf.gz")));
        Put("cpu-notes", "amd64-kdump", BacktraceSeeds.NoteArea(Fixtures.Get("amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz")));
        using (var arm64 = KdumpFile.Open(Fixtures.Get("arm64/dump.kdump-zlib")))
            Put("cpu-notes", "arm64-qemu", arm64.NoteBytes.ToArray());
        Put("cpu-notes", "i386-kdump", BacktraceSeeds.NoteArea(Fixtures.Get("i386/pae-kdump-kaslr/vmcore.mdf-d31.elf.gz")));
        // The kernels the backtrace targets place their structs with, where run.sh points the campaign at them.
        FuzzKernels.Write(Path.Combine(outDir, "kernels"));
    }

    /// <summary>The frame-pointer input on x86-64 (bit 1 of byte 0): registers at code offset 0x10, stack offset 0x100,
    /// an rbp chain of one frame whose return address is code offset 0x55.</summary>
    private static byte[] FramePointers64()
    {
        const ulong Stack = 0xffffc90000010000, Code = 0xffffffff81000000;
        var data = new byte[32 + 0x400];
        data[0] = 2;
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), 0x100);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16), 0x10);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(24), Stack + 0x200);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(32 + 0x208), Code + 0x55);
        return data;
    }

    private static string CutNamelist(string map, string output)
    {
        var wanted = new HashSet<string>(NamelistSymbols, StringComparer.Ordinal);
        var lines = File.ReadLines(map).Where(l => l.Split(' ') is [_, _, var n] && wanted.Contains(n)).ToList();
        File.WriteAllText(output, string.Join('\n', lines) + "\n");
        return output;
    }

    /// <summary>Counts reads by page, forwarding everything.</summary>
    private sealed class RecordingMemory(IPhysicalMemory inner) : IPhysicalMemory
    {
        public HashSet<ulong> Pfns { get; } = [];

        public string FormatName => inner.FormatName;

        public IReadOnlyList<PhysicalRange> Ranges => inner.Ranges;

        public IReadOnlyList<PhysicalRange> StoredRanges => inner.StoredRanges;

        public bool IsWritable => false;

        public bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
        {
            if (destination.Length > 0)
            {
                for (var p = address / Page; p <= (address + (ulong)destination.Length - 1) / Page; p++)
                    Pfns.Add(p);
            }
            return inner.TryRead(address, destination, out failure);
        }

        public void Write(ulong address, ReadOnlySpan<byte> source) => throw new NotSupportedException();

        public void Dispose() => inner.Dispose();
    }

    /// <summary>The pages (by pfn, with their bytes) that the core target's commands read from a fixture, and its VMCOREINFO.</summary>
    private static (SortedDictionary<ulong, byte[]> Pages, byte[] VmcoreInfo) Touched(string map, string core, bool withLog = false)
    {
        var image = ImageOpener.Open(map, core, null, KvmOpenFlags.ReadOnly, new KvmOpenOptions());
        var recording = new RecordingMemory(image.Physical);
        var layout = KernelLayout.Detect(recording, image.VmcoreInfo, image.Symbols.Table, image.DataModel, core);
        using var kvm = new Kvm(image with { Physical = recording, Layout = layout, Symbols = new KernelSymbols(image.Symbols.Table, layout.SymbolRelocation) });
        var afterOpen = recording.Pfns.Count;
        kvm.ReadCString(kvm.SymbolAddress("linux_banner"));
        // Not uname: it reads the kernel's BTF from memory (about 1,000 pages), more than a seed should hold.
        var beforeLog = recording.Pfns.Count;
        if (withLog)
            KernelLog.Read(kvm);
        Console.WriteLine($"{Path.GetFileName(core)}: {afterOpen} pages to open, {beforeLog} with the banner, {recording.Pfns.Count} with the log");
        var pages = new SortedDictionary<ulong, byte[]>();
        foreach (var pfn in recording.Pfns)
        {
            var data = new byte[Page];
            if (image.Physical.TryRead(pfn * Page, data, out _))
                pages[pfn] = data;
        }
        var text = string.Concat(image.VmcoreInfo!.Entries.Select(e => e.Key + "=" + e.Value + "\n"));
        return (pages, Encoding.ASCII.GetBytes(text));
    }

    private static IEnumerable<(ulong Start, byte[] Data)> Runs(SortedDictionary<ulong, byte[]> pages)
    {
        var run = new List<byte>();
        ulong start = 0, next = ulong.MaxValue;
        foreach (var (pfn, data) in pages)
        {
            if (pfn != next && run.Count > 0)
            {
                yield return (start * Page, run.ToArray());
                run.Clear();
            }
            if (run.Count == 0)
                start = pfn;
            run.AddRange(data);
            next = pfn + 1;
        }
        if (run.Count > 0)
            yield return (start * Page, run.ToArray());
    }

    private readonly record struct Stored(byte[] Data, uint Flags);

    private static Stored Compress(PageCodec codec, byte[] page) => codec switch
    {
        PageCodec.Raw => new Stored(page, 0),
        PageCodec.Zlib => new Stored(Zlib(page), 1),
        PageCodec.Snappy => new Stored(Snappier.Snappy.CompressToArray(page), 4),
        PageCodec.Zstd => new Stored(new ZstdSharp.Compressor(3).Wrap(page).ToArray(), 0x20),
        _ => new Stored(LzoLiterals(page), 2),
    };

    private static byte[] Zlib(byte[] page)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Optimal))
            z.Write(page);
        return ms.ToArray();
    }

    /// <summary>An LZO1X stream of one literal run and the end marker: valid, if not small.</summary>
    private static byte[] LzoLiterals(byte[] page)
    {
        var o = new List<byte> { 0 };
        var rest = page.Length - 18;
        while (rest > 255)
        {
            o.Add(0);
            rest -= 255;
        }
        o.Add((byte)rest);
        o.AddRange(page);
        o.AddRange([0x11, 0, 0]);
        return [.. o];
    }

    /// <summary>The stored (compressed) bytes of each page of a kdump fixture, as its descriptors place them.</summary>
    private static Dictionary<ulong, Stored> CopyStoredPages(string kdump, IEnumerable<ulong> pfns, bool bits32)
    {
        var f = File.ReadAllBytes(kdump);
        var o = bits32 ? 0 : 12;
        int I32(int at) => BinaryPrimitives.ReadInt32LittleEndian(f.AsSpan(at));
        int bs = I32(416 + o), sub = I32(420 + o), bmb = I32(424 + o);
        var bitmap2 = f.AsSpan((1 + sub) * bs + bmb * bs / 2, bmb * bs / 2);
        long descs = (long)(1 + sub + bmb) * bs;
        var result = new Dictionary<ulong, Stored>();
        foreach (var pfn in pfns)
        {
            ulong rank = 0;
            for (ulong p = 0; p < pfn; p++)
                rank += (ulong)((bitmap2[(int)(p / 8)] >> (int)(p % 8)) & 1);
            var d = f.AsSpan((int)(descs + (long)rank * 24), 24);
            var offset = BinaryPrimitives.ReadInt64LittleEndian(d);
            var size = BinaryPrimitives.ReadInt32LittleEndian(d[8..]);
            result[pfn] = new Stored(f.AsSpan((int)offset, size).ToArray(), BinaryPrimitives.ReadUInt32LittleEndian(d[12..]));
        }
        return result;
    }

    /// <summary>A kdump-compressed file (header version 6, 64-bit layout) holding <paramref name="pfns"/>; with
    /// <paramref name="split"/>, one part of a split set holding the pages in [start, end).</summary>
    private static byte[] KdumpImage(IEnumerable<ulong> pfns, Func<ulong, Stored> store, byte[] uts, byte[] vmcoreinfo, (ulong Start, ulong End)? split = null)
    {
        var all = pfns.Order().ToArray();
        var maxMapnr = all.Max() + 1;
        var bitmapHalf = (int)((maxMapnr + 8L * Page - 1) / (8L * Page)) * Page;
        var subBlocks = 1 + (104 + vmcoreinfo.Length + Page - 1) / Page;
        var mine = all.Where(p => split is not { } s || (p >= s.Start && p < s.End)).ToArray();
        var descsAt = (long)(1 + subBlocks + 2 * bitmapHalf / Page) * Page;
        var dataAt = descsAt + (mine.Length * 24L + Page - 1) / Page * Page;
        var o = new MemoryStream();
        var header = new byte[Page];
        Encoding.ASCII.GetBytes("KDUMP   ").CopyTo(header, 0);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), 6);
        uts.CopyTo(header, 12);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(428), Page);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(432), subBlocks);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(436), 2 * bitmapHalf / Page);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(440), (uint)maxMapnr);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(444), (uint)all.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(460), 1);
        o.Write(header);
        var sub = new byte[subBlocks * Page];
        BinaryPrimitives.WriteInt32LittleEndian(sub.AsSpan(8), 31);
        if (split is { } sp)
        {
            BinaryPrimitives.WriteInt32LittleEndian(sub.AsSpan(12), 1);
            BinaryPrimitives.WriteUInt64LittleEndian(sub.AsSpan(16), sp.Start);
            BinaryPrimitives.WriteUInt64LittleEndian(sub.AsSpan(24), sp.End);
            BinaryPrimitives.WriteUInt64LittleEndian(sub.AsSpan(80), sp.Start);
            BinaryPrimitives.WriteUInt64LittleEndian(sub.AsSpan(88), sp.End);
        }
        BinaryPrimitives.WriteUInt64LittleEndian(sub.AsSpan(32), Page + 104);
        BinaryPrimitives.WriteUInt64LittleEndian(sub.AsSpan(40), (ulong)vmcoreinfo.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(sub.AsSpan(96), maxMapnr);
        vmcoreinfo.CopyTo(sub, 104);
        o.Write(sub);
        var bitmap = new byte[bitmapHalf];
        foreach (var p in all)
            bitmap[p / 8] |= (byte)(1 << (int)(p % 8));
        o.Write(bitmap);
        o.Write(bitmap);
        var descs = new byte[dataAt - descsAt];
        var data = new MemoryStream();
        for (var i = 0; i < mine.Length; i++)
        {
            var s = store(mine[i]);
            BinaryPrimitives.WriteInt64LittleEndian(descs.AsSpan(i * 24), dataAt + data.Length);
            BinaryPrimitives.WriteInt32LittleEndian(descs.AsSpan(i * 24 + 8), s.Data.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(descs.AsSpan(i * 24 + 12), s.Flags);
            data.Write(s.Data);
        }
        o.Write(descs);
        o.Write(data.ToArray());
        return o.ToArray();
    }

    /// <summary>The flattened form (makedumpfile -F): a 4 KiB header, then records of 64 KiB, the last one first.</summary>
    private static byte[] Flatten(byte[] plain)
    {
        var o = new MemoryStream();
        var header = new byte[Page];
        Encoding.ASCII.GetBytes("makedumpfile").CopyTo(header, 0);
        BinaryPrimitives.WriteInt64BigEndian(header.AsSpan(16), 1);
        BinaryPrimitives.WriteInt64BigEndian(header.AsSpan(24), 1);
        o.Write(header);
        const int record = 65536;
        var starts = Enumerable.Range(0, (plain.Length + record - 1) / record).Select(i => i * record).Reverse();
        Span<byte> rh = stackalloc byte[16];
        foreach (var s in starts)
        {
            var n = Math.Min(record, plain.Length - s);
            BinaryPrimitives.WriteInt64BigEndian(rh, s);
            BinaryPrimitives.WriteInt64BigEndian(rh[8..], n);
            o.Write(rh);
            o.Write(plain, s, n);
        }
        BinaryPrimitives.WriteInt64BigEndian(rh, -1);
        BinaryPrimitives.WriteInt64BigEndian(rh[8..], 0);
        o.Write(rh);
        return o.ToArray();
    }

    /// <summary>The split target's container: "KVMTSPLT", a count, each part's length, the parts.</summary>
    private static byte[] SplitSet(params byte[][] parts)
    {
        var o = new MemoryStream();
        o.Write("KVMTSPLT"u8);
        o.WriteByte((byte)parts.Length);
        Span<byte> n = stackalloc byte[4];
        foreach (var p in parts)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(n, (uint)p.Length);
            o.Write(n);
        }
        foreach (var p in parts)
            o.Write(p);
        return o.ToArray();
    }

    private static byte[] TaskTypesBlob()
    {
        var b = new KvmTyped.Tests.Btf.BtfBuilder();
        var u32 = b.Int("unsigned int", 4);
        var ch = b.Int("char", 1, encoding: 2);
        var lh = b.Struct("list_head", 16, ("next", 5, 0, 0), ("prev", 5, 64, 0));
        b.Ptr(lh);
        b.Struct("task_struct", 48, ("tasks", lh, 0, 0), ("pid", u32, 128, 0), ("comm", 7, 160, 0), ("flags", u32, 288, 3));
        b.Array(ch, u32, 16);
        b.Typedef("pid_t", u32);
        b.Enum("state", 4, false, ("RUNNING", 0), ("STOPPED", 4));
        return b.Build();
    }

    private const string StructsC = """
        struct list_head { struct list_head *next, *prev; };
        typedef unsigned long long u64;
        enum kind { KIND_A, KIND_B = 7 };
        union value { int i; long l; double d; char bytes[8]; };
        struct task {
            struct list_head tasks;
            int pid;
            char comm[16];
            unsigned int flags : 3, state : 5;
            union value v;
            enum kind k;
            const volatile u64 *counters[4];
            struct { int anon_a; short anon_b; };
            void (*fn)(int, struct task *);
            char tail[];
        } __attribute__((aligned(16)));
        struct task global_task;
        """;

    private static string WriteTemp(string name, string text)
    {
        var path = Path.Combine(Path.GetTempPath(), "kvmtyped-seed-" + name);
        File.WriteAllText(path, text);
        return path;
    }

    private static byte[]? Gcc(string source, string model)
    {
        var output = Path.Combine(Path.GetTempPath(), $"kvmtyped-seed-{Path.GetFileNameWithoutExtension(source)}{model}.o");
        try
        {
            using var p = Process.Start(new ProcessStartInfo("gcc", ["-g", "-c", model, "-fno-eliminate-unused-debug-types", "-o", output, source]) { RedirectStandardError = true })!;
            var err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
            {
                Console.Error.WriteLine($"gcc {model} {source}: {err}");
                return null;
            }
            return File.ReadAllBytes(output);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Console.Error.WriteLine($"gcc: {e.Message}: the dwarf seeds need gcc (and gcc-multilib for -m32)");
            return null;
        }
    }

    private static byte[] KallsymsSeed(KallsymsAddressMode mode)
    {
        var w = new KallsymsWriter(DataModel.LP64, mode);
        ulong at = 0xffffffff81000000;
        string[] names = ["_text", "_stext", "startup_64", "secondary_startup_64", "init_task", "linux_banner", "do_one_initcall", "kallsyms_names",
            "init_uts_ns", "panic", "sysrq_handle_crash", "schedule", "__schedule", "per_cpu_start", "page_offset_base", "_etext"];
        foreach (var n in names)
        {
            w.Add(n, at, n.StartsWith("init", StringComparison.Ordinal) ? 'D' : 'T');
            at += 0x1230;
        }
        var built = w.Build();
        const ulong At = 0xffffffff82000000;
        var header = new byte[64];
        void Field(int i, ulong? address) => BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(8 * i), address is { } a ? a - At : 0);
        var t = built.Tables;
        Field(0, t.NumSyms);
        Field(1, t.Names);
        Field(2, t.TokenTable);
        Field(3, t.TokenIndex);
        Field(4, t.Offsets ?? t.Addresses);
        Field(5, t.RelativeBase);
        Field(6, t.Stext);
        header[56] = (byte)((t.BaseRelative ? 0 : 1) | (t.Stext is null ? 0 : 2));
        var memory = new byte[built.Memory.Bytes.Length + (int)(built.Memory.Base - At)];
        built.Memory.Bytes.CopyTo(memory, (int)(built.Memory.Base - At));
        return [.. header, .. memory];
    }

    private static byte[] KernelElf(ElfWriter w, ulong text)
    {
        var banner = Encoding.ASCII.GetBytes("Linux version 6.1.0-fuzz (seed) #1 SMP\n\0");
        var data = new byte[Page];
        banner.CopyTo(data, 0x100);
        w.AddLoad(text & 0xffffffff, text, data);
        w.AddSymbol("_text", text, info: 0x10);
        w.AddSymbol("linux_banner", text + 0x100);
        w.AddSymbol("init_task", text + 0x800);
        w.AddSymbol("swapper_pg_dir", text + 0x1000);
        return w.Build();
    }

    private static void Word(byte[] m, ulong at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan((int)(at - 0x10000)), v);

    private static byte[] PrintkRing()
    {
        // Memory at 0x10000: prb at 0x10100, 4 descriptors at 0x10400, infos at 0x10800, 64 text bytes at 0x11000.
        var m = new byte[0x2000];
        Word(m, 0x10000, 0x10100);
        Word(m, 0x10100, 2);
        Word(m, 0x10108, 0x10400);
        Word(m, 0x10110, 0x10800);
        Word(m, 0x10118, 6);
        Word(m, 0x10120, 5);
        Word(m, 0x10130, 6);
        Word(m, 0x10138, 0x11000);
        void Record(ulong id, ulong begin, ulong next, string text, ulong at)
        {
            var index = id & 3;
            Word(m, 0x10400 + index * 24, (2UL << 62) | id);
            Word(m, 0x10408 + index * 24, begin);
            Word(m, 0x10410 + index * 24, next);
            Word(m, 0x10800 + index * 88, id);
            Word(m, 0x10808 + index * 88, id * 1_000_000_000);
            BinaryPrimitives.WriteUInt16LittleEndian(m.AsSpan((int)(0x10810 + index * 88 - 0x10000)), (ushort)text.Length);
            m[0x10813 + index * 88 - 0x10000] = 6 << 5;
            Word(m, 0x11000 + at, id);
            Encoding.ASCII.GetBytes(text).CopyTo(m, (int)(0x11008 + at - 0x10000));
        }
        Record(5, 64 + 24, 64 + 48, "first record", 24);
        Record(6, 64 + 48, 128 + 24, "wrapped\nline", 0);
        return [0, .. m];
    }

    private static byte[] PrintkRecords()
    {
        var m = new byte[0x1000];
        Word(m, 0x10000, 0x10100);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), 0x100);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(0xc), 0);
        var at = 0;
        foreach (var text in new[] { "Linux version 5.4", "Command line: console=ttyS0" })
        {
            var len = (16 + text.Length + 7) & ~7;
            var r = m.AsSpan(0x100 + at);
            BinaryPrimitives.WriteUInt64LittleEndian(r, (ulong)at * 1000);
            BinaryPrimitives.WriteUInt16LittleEndian(r[8..], (ushort)len);
            BinaryPrimitives.WriteUInt16LittleEndian(r[10..], (ushort)text.Length);
            r[15] = 6 << 5;
            Encoding.ASCII.GetBytes(text).CopyTo(r[16..]);
            at += len;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(0x10), (uint)at);
        return [1, .. m];
    }

    private static byte[] PrintkPlain()
    {
        var m = new byte[0x1000];
        Word(m, 0x10000, 0x10100);
        var text = Encoding.ASCII.GetBytes("<6>[    0.000000] Linux version 2.6.32\n<4>[    1.250000] second line\n");
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), 0x100);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(0xc), (uint)text.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(0x10), (uint)text.Length);
        text.CopyTo(m, 0x100);
        return [2, .. m];
    }

    private static byte[] TasksSeed()
    {
        const ulong Init = 0x1000, A = 0x2000, B = 0x3000, Thread = 0x4000, SignalA = 0x5000, SignalB = 0x5100;
        var m = new FlatKernelMemory(DataModel.LP64, 0x1000, 0x5000);
        void Task(ulong at, uint pid, uint tgid, ulong parent, string comm, uint state, uint exit, ulong signal, uint cpu)
        {
            m.U32(at + 16, pid);
            m.U32(at + 20, tgid);
            m.U64(at + 24, parent);
            m.Text(at + 32, comm);
            m.U32(at + 48, state);
            m.U32(at + 52, exit);
            m.U64(at + 64, signal);
            m.U32(at + 88, cpu);
        }
        void Link(params ulong[] ring)
        {
            for (var i = 0; i < ring.Length; i++)
                m.U64(ring[i], ring[(i + 1) % ring.Length]);
        }
        Task(Init, 0, 0, Init, "swapper/0", 0, 0, 0, 0);
        Task(A, 1, 1, Init, "init", 1, 0, SignalA, 1);
        Task(Thread, 3, 1, Init, "worker", 0x402, 0, SignalA, 0);
        Task(B, 2, 2, A, "child", 0, 0x20, SignalB, 1);
        Link(Init, A, B);
        Link(SignalA, A + 72, Thread + 72);
        Link(SignalB, B + 72);
        return m.Bytes;
    }

    /// <summary>Tables in seven pages: root at 0x1000, each level's table in the next page, data at 0x6000; the
    /// addresses map the data page through each level, a large page, and a hole.</summary>
    private static byte[] X86TablesSeed(int mode)
    {
        var m = new byte[7 * Page];
        m[0] = (byte)mode;
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(4), 0x1000);
        const ulong P = 0x1, W = 0x2, Ps = 0x80;
        ulong va;
        switch (mode)
        {
            case 0 or 1:
                {
                    var levels = mode == 0 ? 4 : 5;
                    va = mode == 0 ? 0xffff888000006123UL : 0xff11000000006123UL;
                    var table = 0x1000UL;
                    for (var l = levels; l > 1; l--)
                    {
                        var shift = 12 + 9 * (l - 1);
                        var index = (va >> shift) & 511;
                        BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan((int)(table + index * 8)), (table + 0x1000) | P | W);
                        table += 0x1000;
                    }
                    BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan((int)(table + ((va >> 12) & 511) * 8)), 0x6000 | P | W);
                    // A 2 MiB page beside it in the PD.
                    BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan((int)(table - 0x1000 + (((va >> 21) + 1) & 511) * 8)), 0x200000 | P | W | Ps);
                    break;
                }
            case 2:
                {
                    va = 0xc0006123;
                    BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan(0x1000 + 3 * 8), 0x2000 | P);
                    BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan(0x2000), 0x3000 | P | W);
                    BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan(0x3000 + 6 * 8), 0x6000 | P | W);
                    BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan(0x2000 + 8), 0x200000 | P | W | Ps);
                    break;
                }
            default:
                {
                    va = 0xc0006123;
                    BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(0x1000 + 0x300 * 4), (uint)(0x2000 | P | W));
                    BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(0x2000 + 6 * 4), (uint)(0x6000 | P | W));
                    BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(0x1000 + 0x301 * 4), (uint)(0x400000 | P | W | Ps));
                    break;
                }
        }
        ulong[] addresses = [va, va + 0x1000, va + 0x200000, va ^ 0x8000_0000, va & ~0xfffUL, 0, ulong.MaxValue, va + 0x400000];
        for (var i = 0; i < 8; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan(8 + 8 * i), addresses[i]);
        Encoding.ASCII.GetBytes("data page").CopyTo(m, 0x6000);
        return m;
    }

    private static byte[] Arm64TablesSeed()
    {
        // 4 KiB granule, 48-bit VA, kernel half: levels 0-3 at 0x1000..0x4000, data at 0x6000.
        var m = new byte[7 * Page];
        m[0] = 1 << 2; // granule 4K, 48 bits
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(4), 0x1000);
        const ulong Table = 0x3, PageDesc = 0x3 | 0x400, Block = 0x1 | 0x400;
        var va = 0xffff000000006123UL;
        var table = 0x1000UL;
        for (var level = 0; level < 3; level++)
        {
            var shift = 39 - 9 * level;
            BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan((int)(table + ((va >> shift) & 511) * 8)), (table + 0x1000) | Table);
            table += 0x1000;
        }
        BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan((int)(table + ((va >> 12) & 511) * 8)), 0x6000 | PageDesc);
        BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan((int)(table - 0x1000 + 8)), 0x200000 | Block);
        ulong[] addresses = [va, va + 0x200000, va + 0x1000, 0xffff800000000000, 0x0000000000006123, ulong.MaxValue, va + 0x40000000, va & ~0xfffUL];
        for (var i = 0; i < 8; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan(8 + 8 * i), addresses[i]);
        return m;
    }
}
