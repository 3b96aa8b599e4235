using KvmTyped.Tests.TestSupport;
using KvmTyped.TestSupport;
using System.Buffers.Binary;
using System.Text;
using KvmTyped.Btf;
using KvmTyped.Dwarf;
using KvmTyped.Formats;
using KvmTyped.Formats.Compression;
using KvmTyped.Formats.Elf;
using KvmTyped.Generators.Schema;
using KvmTyped.IO;
using KvmTyped.Linux;
using KvmTyped.Symbols;
using KvmTyped.Tests.Btf;
using KvmTyped.Tests.Linux.Unwind;
using KvmTyped.Tools;
using KvmTyped.Translation;
using KvmTyped.Types;

namespace KvmTyped.Fuzz;

/// <summary>One fuzz target: a parser or walker fed one input, with the caps its outcome must respect.</summary>
/// <param name="Name">The name <c>run.sh</c> and the corpus folders use.</param>
/// <param name="What">What the input is and what is run on it.</param>
/// <param name="MaxAllocatedBytes">The most bytes one input may make the target allocate: the parser's own caps
/// (stated where the parser is) applied to inputs of at most 1 MiB.</param>
/// <param name="MaxReads">The most reads of the memory the input stands for (walkers only; 0: the target reads a file).</param>
/// <param name="Run">Runs the target; the library's own exceptions (<see cref="KvmException"/>) are a clean outcome.</param>
/// <param name="Prepare">Loads once what every input of the target shares (a kernel's BTF), before the first input's
/// allocations are counted.</param>
public sealed record FuzzTarget(string Name, string What, long MaxAllocatedBytes, long MaxReads, Action<byte[]> Run, Action? Prepare = null);

/// <summary>Every fuzz target, by name.</summary>
public static class FuzzTargets
{
    /// <summary>The largest input AFL++ makes (its default MAX_FILE), and the largest a corpus file may be.</summary>
    public const int MaxInputBytes = 1 << 20;

    private const long MiB = 1 << 20;

    /// <summary>The targets.</summary>
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new("elf-core", "an ELF core (ELF32/ELF64, x86-64 or i386) opened with a System.map; info, banner, uname and log read from it", 96 * MiB, 0, CoreTarget),
        new("kdump", "a kdump-compressed file (plain or flattened; or a split set: \"KVMTSPLT\", a count, lengths, the parts) opened with a System.map; info (every page descriptor), banner, uname and log", 96 * MiB, 0, CoreTarget),
        new("page-codec", "byte 0 picks the codec (raw, zlib, LZO1X, snappy, zstd); the rest is one compressed page of 4 KiB, and for LZO1X also of 64 KiB", 4 * MiB, 0, PageCodecTarget),
        new("btf", "a raw BTF blob or an ELF file with .BTF: every type read, printed as pahole does, and imported as a C schema", 256 * MiB, 0, BtfTarget),
        new("dwarf", "an ELF file with DWARF sections (relocatable or linked), converted to BTF and the BTF read back", 256 * MiB, 0, DwarfTarget),
        new("kallsyms-image", "64 bytes naming the kallsyms tables, then the kernel memory holding them (at 0xffffffff82000000)", 160 * MiB, 1 << 22, KallsymsImageTarget),
        new("schema", "a C schema file: parsed, resolved and laid out for ILP32 and LP64", 64 * MiB, 0, SchemaTarget),
        new("symbol-text", "a System.map or /proc/kallsyms text, looked up by name and by address", 64 * MiB, 0, SymbolTextTarget),
        new("elf-symtab", "an ELF kernel image: its .symtab looked up by name and address, its linux_banner read", 64 * MiB, 0, ElfSymtabTarget),
        new("printk", "byte 0 picks the log layout VMCOREINFO describes (ring, records, plain text); the rest is kernel memory at 0x10000", 16 * MiB, 1 << 20, PrintkTarget),
        new("tasks", "kernel memory at 0x1000 holding init_task and the tasks it leads to, read through a fixed BTF", 64 * MiB, KernelTasks.MaxTasks * 8L, TasksTarget),
        new("pagetables-x86", "byte 0 picks the paging mode (4 or 5 levels, PAE, non-PAE), bytes 4-7 the root table, 8-71 eight addresses; all of it is physical memory from 0", 1 * MiB, 4096, X86TablesTarget),
        new("pagetables-arm64", "byte 0 picks granule and VA size, byte 1 the half, bytes 4-7 the root table, 8-71 eight addresses; all of it is physical memory from 0", 1 * MiB, 4096, Arm64TablesTarget),
        new("unwind-orc", "registers, ORC entries (6.1, 6.3 and 6.4 layouts) and a task and IRQ stack, unwound with ORC as Debian's 6.1 amd64 kernel lays out its structs (BacktraceFuzzing.UnwindOrc)", 16 * MiB, UnwindReads,
            input => BacktraceFuzzing.UnwindOrc(input, FuzzKernels.Amd64, FuzzWork.Count), PrepareAmd64),
        new("unwind-fp", "registers and a task and IRQ stack unwound by frame pointers; bit 1 of byte 0 picks the kernel: i386 (clear) or x86-64 (set) (BacktraceFuzzing.UnwindFramePointers)", 16 * MiB, UnwindReads,
            input => BacktraceFuzzing.UnwindFramePointers(input, input.Length > 0 && (input[0] & 2) != 0 ? FuzzKernels.Amd64 : FuzzKernels.I386, FuzzWork.Count), PrepareBoth),
        new("unwind-arm64", "registers, a task and a task and IRQ stack unwound by arm64 frame records, with pointer authentication codes to strip and exception frames to cross, as Debian's 6.1 arm64 kernel lays out its structs (BacktraceFuzzing.UnwindArm64FramePointers)", 16 * MiB, UnwindReads,
            input => BacktraceFuzzing.UnwindArm64FramePointers(input, FuzzKernels.Arm64, FuzzWork.Count), () => _ = FuzzKernels.Arm64),
        new("orc-table", "a vmlinux's ORC tables (ip table, entries, the lookup blocks) and four ips looked up in them (BacktraceFuzzing.OrcTableLookup)", 16 * MiB, 1 << 16,
            input => BacktraceFuzzing.OrcTableLookup(input, FuzzKernels.Amd64, FuzzWork.Count), PrepareAmd64),
        new("modules", "byte 0 picks the kernel (even: amd64, odd: i386); the rest is kernel memory holding the modules list head, each module, its symbol and ORC tables (BacktraceFuzzing.ModuleWalk)", 96 * MiB, 1 << 22,
            input => BacktraceFuzzing.ModuleWalk(input.AsSpan(Math.Min(1, input.Length)), input.Length > 0 && (input[0] & 1) != 0 ? FuzzKernels.I386 : FuzzKernels.Amd64, FuzzWork.Count), PrepareBoth),
        new("cpu-notes", "an ELF note area: every CPU's registers from its NT_PRSTATUS (x86-64 and i386 layouts) (BacktraceFuzzing.RegisterNotes)", 4 * MiB, 0,
            input => BacktraceFuzzing.RegisterNotes(input)),
    ];

    /// <summary>The most reads one unwind may make: every frame of the longest trace (the unwinders' cap) reading a few
    /// words, an exception frame or a resync scan among them, and the stack scan after a failed step.</summary>
    private const long UnwindReads = 1 << 16;

    private static void PrepareAmd64() => _ = FuzzKernels.Amd64;

    private static void PrepareBoth() => _ = (FuzzKernels.Amd64, FuzzKernels.I386);

    /// <summary>The target of that name.</summary>
    public static FuzzTarget Get(string name) =>
        All.FirstOrDefault(t => t.Name == name) ?? throw new ArgumentException($"no fuzz target \"{name}\"; targets: {string.Join(", ", All.Select(t => t.Name))}", nameof(name));

    /// <summary>What one input did: the library's exception if it raised one (a clean outcome), the bytes allocated and
    /// the memory reads made.</summary>
    public sealed record Outcome(KvmException? Error, long AllocatedBytes, long Reads);

    /// <summary>Runs <paramref name="target"/> on <paramref name="input"/> on this thread. The library's own exceptions
    /// are returned; anything else propagates (a finding), and so does a file of the input left mapped once the
    /// target returned or threw: a file that is not closed keeps its mapping for the life of the process.</summary>
    public static Outcome Execute(FuzzTarget target, byte[] input)
    {
        ArgumentNullException.ThrowIfNull(target);
        target.Prepare?.Invoke();
        FuzzWork.Reset();
        var before = GC.GetAllocatedBytesForCurrentThread();
        KvmException? error = null;
        try
        {
            target.Run(input);
        }
        catch (KvmException e)
        {
            error = e;
        }
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        if (t_scratch is not null && StillMapped(t_scratch) is { } mapped)
            throw new InvalidOperationException($"{mapped} is still mapped after the input ({error?.Message ?? "no error"}): a file was not closed");
        return new Outcome(error, allocated, FuzzWork.Reads);
    }

    /// <summary>The first of this process's mappings that is the scratch file or one of its parts, if any
    /// (Linux only: elsewhere nothing is reported).</summary>
    private static string? StillMapped(string scratch)
    {
        const string Maps = "/proc/self/maps";
        if (!File.Exists(Maps))
            return null;
        foreach (var line in File.ReadLines(Maps))
        {
            // The file itself ends the line; a part of a split set is the name and a suffix (".0").
            var at = line.IndexOf(scratch, StringComparison.Ordinal);
            if (at >= 0 && (line.EndsWith(scratch, StringComparison.Ordinal) || line.AsSpan(at + scratch.Length).StartsWith(".")))
                return line[at..];
        }
        return null;
    }

    /// <summary>Runs each step, so that one failing (cleanly) does not hide the next.</summary>
    private static void Each(params Action[] steps)
    {
        KvmException? first = null;
        foreach (var step in steps)
        {
            try
            {
                step();
            }
            catch (KvmException e)
            {
                first ??= e;
            }
        }
        if (first is not null)
            throw first;
    }

    [ThreadStatic]
    private static string? t_scratch;

    /// <summary>Where a file target's input is written: one file per thread, in memory where /dev/shm exists.</summary>
    private static string Scratch(byte[] input, string suffix = "")
    {
        t_scratch ??= Path.Combine(Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), $"kvmtyped-fuzz-{Environment.ProcessId}-{Environment.CurrentManagedThreadId}");
        var path = t_scratch + suffix;
        File.WriteAllBytes(path, input);
        return path;
    }

    /// <summary>The folder of the namelists the core targets open their input with (copied beside the program).</summary>
    public static string NamelistDirectory => Path.Combine(AppContext.BaseDirectory, "namelists");

    private static readonly byte[] SplitMagic = "KVMTSPLT"u8.ToArray();

    private static void CoreTarget(byte[] input)
    {
        string core;
        string[]? parts = null;
        if (input.AsSpan().StartsWith(SplitMagic) && input.Length >= 9)
        {
            int count = Math.Clamp((int)input[8], 1, 4), at = 9 + 4 * count;
            if (input.Length < at)
                return;
            var files = new List<string>();
            for (var i = 0; i < count; i++)
            {
                var length = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(input.AsSpan(9 + 4 * i)), (uint)(input.Length - at));
                files.Add(Scratch(input[at..(at + length)], "." + i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                at += length;
            }
            core = files[0];
            parts = [.. files.Skip(1)];
        }
        else
            core = Scratch(input);
        // The namelist follows the machine: EM_386 in an ELF header, a 32-bit kdump header's "i686" utsname.
        var i386 = (input.Length > 19 && input[0] == 0x7f && input[18] == 3)
            || input.AsSpan(0, Math.Min(input.Length, 4096)).IndexOf("i686"u8) >= 0;
        var map = Path.Combine(NamelistDirectory, i386 ? "i386.map" : "amd64.map");
        using var kvm = Kvm.Open(map, core, options: new KvmOpenOptions { SplitFiles = parts });
        Each(
            () => kvm.DescribeDump(),
            () => kvm.ReadCString(kvm.SymbolAddress("linux_banner")),
            () => Utsname.Read(kvm),
            () => KernelLog.Read(kvm));
    }

    private static void PageCodecTarget(byte[] input)
    {
        if (input.Length == 0)
            return;
        var codec = (PageCodec)(input[0] % 5);
        var page = new byte[4096];
        PageCompression.TryDecode(codec, input.AsSpan(1), page, out _);
        if (codec == PageCodec.Lzo)
        {
            var block = new byte[65536];
            Lzo1x.TryDecompress(input.AsSpan(1), block, out _, out _);
        }
    }

    private static void BtfTarget(byte[] input)
    {
        ReadAsUsed(input);
        var btf = KernelBtf.Load(Scratch(input), pointerSize: 8);
        var output = new StringWriter();
        Each(
            () => BtfDump.WriteText(btf, [], output),
            () => ReadEveryType(btf.Types),
            () => SchemaImport.Complete(btf, FirstStructs(btf.Types, 4)));
    }

    /// <summary>The input as a kernel's BTF in memory, read as it is used (<see cref="BtfTypes.Read"/>) in pieces of 4
    /// to 64 bytes, so that lookups stop, resume and cross pieces: the names of the first structs parsing finds, one
    /// no type has, then every type. It must refuse exactly the blobs parsing refuses.</summary>
    private static void ReadAsUsed(byte[] input)
    {
        BtfTypes? parsed;
        try
        {
            parsed = BtfTypes.Parse(input, null, "fuzz", 8);
        }
        catch (KvmFormatException)
        {
            parsed = null;
        }
        bool ok;
        try
        {
            var read = BtfTypes.Read(
                (ulong address, Span<byte> destination, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure) =>
                {
                    input.AsSpan((int)(address - 0x1000), destination.Length).CopyTo(destination);
                    failure = null;
                    return true;
                },
                0x1000, input.Length, "fuzz", 8, out _, chunkBytes: 4 * (1 + input.Length % 16))!;
            if (parsed is not null)
            {
                foreach (var name in FirstStructs(parsed, 4))
                {
                    foreach (var kind in new[] { BtfKind.Struct, BtfKind.Union })
                    {
                        if ((parsed.TryFind(name, kind, out var p), p) != (read.TryFind(name, kind, out var r), r))
                            throw new InvalidOperationException($"read as used, the BTF's {kind} {name} is {r}, parsed {p}");
                        if (r == 0)
                            continue;
                        try
                        {
                            read.GetFlattenedMembers(r);
                        }
                        catch (KvmFormatException)
                        {
                            // As parsed whole (a nesting too deep, a size that overflows); the whole blob is checked below.
                        }
                    }
                }
            }
            read.TryFind("no such type", BtfKind.Struct, out _);
            ok = read.Count >= 0;
        }
        catch (KvmFormatException)
        {
            ok = false;
        }
        if (ok != parsed is not null)
            throw new InvalidOperationException($"parsing {(parsed is null ? "refuses" : "accepts")} the blob, reading it as used does not");
    }

    private static IEnumerable<string> FirstStructs(BtfTypes types, int count)
    {
        var names = new List<string>();
        for (var id = types.FirstId; id <= types.LastId && names.Count < count; id++)
        {
            if (types.KindOf(id) is BtfKind.Struct or BtfKind.Union && types.NameOf(id) is { Length: > 0 } name)
                names.Add(name);
        }
        return names;
    }

    private static void ReadEveryType(BtfTypes types)
    {
        for (var id = types.FirstId; id <= types.LastId; id++)
        {
            try
            {
                types.NameOf(id);
                types.TrySizeOf(id, out _, out _);
                types.Resolve(id);
                types.Describe(id);
            }
            catch (KvmFormatException)
            {
            }
        }
    }

    private static void DwarfTarget(byte[] input)
    {
        using var file = RandomAccessFile.Open(Scratch(input), writable: false);
        var image = ElfImage.Parse(file);
        if (DwarfToBtf.Convert(image, parallelism: 1) is { } blob)
            ReadEveryType(BtfTypes.Parse(blob, sourceName: "converted DWARF", pointerSize: 8));
    }

    private static void KallsymsImageTarget(byte[] input)
    {
        if (input.Length < 64)
            return;
        const ulong At = 0xffffffff82000000;
        ulong Field(int i) => At + (BinaryPrimitives.ReadUInt64LittleEndian(input.AsSpan(8 * i)) & 0xf_ffff);
        var flags = input[56];
        var baseRelative = (flags & 1) == 0;
        var tables = new KallsymsTables(Field(0), Field(1), Field(2), Field(3),
            baseRelative ? Field(4) : null, baseRelative ? Field(5) : null, baseRelative ? null : Field(4),
            (flags & 2) != 0 ? Field(6) : null, TwoByteLengths: (flags & 4) == 0);
        var memory = new FuzzKernelMemory((flags & 8) == 0 ? DataModel.LP64 : DataModel.ILP32, input.AsMemory(64), At);
        var table = KallsymsImage.Decode(memory.TryReadVirtual, tables, memory.DataModel, "fuzz input");
        table.TryLookup("_stext", out _);
        table.TryFindNearest(At + 0x100, out _);
    }

    private static void SchemaTarget(byte[] input)
    {
        var unit = SchemaParser.Parse("fuzz.h", Encoding.UTF8.GetString(input));
        var schema = SchemaResolver.Resolve([unit]);
        if (schema.Diagnostics.Count > 0)
            return;
        foreach (var lp64 in new[] { true, false })
        {
            var layout = new SchemaLayout(schema, lp64);
            foreach (var s in schema.Structs)
            {
                if (!s.IsAnonymous && !s.PreserveAccessIndex)
                    layout.Get(s.Name);
            }
        }
    }

    private static void SymbolTextTarget(byte[] input)
    {
        var path = Scratch(input);
        Each(
            () =>
            {
                // The table owns the file once open; when OpenMap refuses it, the file is the caller's to close (an
                // unclosed file keeps its mapping for the life of the process). Disposing twice is harmless.
                using var file = RandomAccessFile.Open(path, writable: false);
                using var map = TextSymbolTable.OpenMap(file);
                Lookups(map);
            },
            () =>
            {
                using var kallsyms = TextSymbolTable.OpenKallsyms(path);
                Lookups(kallsyms);
            },
            () =>
            {
                // A map of 1 MiB or more has its lines checked in two parts at once: split at any size, it must answer
                // (and refuse) exactly as one pass does.
                var whole = MapAnswers(path, int.MaxValue);
                var split = MapAnswers(path, 1);
                if (whole != split)
                    throw new InvalidOperationException($"a map checked in two parts answers otherwise:\n{whole}\n---\n{split}");
            });
    }

    /// <summary>What a System.map opened with <paramref name="splitBytes"/> answers to a few name lookups (names from
    /// the text's start, middle and end among them) and its count, or the message it refuses with.</summary>
    private static string MapAnswers(string path, int splitBytes)
    {
        var text = File.ReadAllBytes(path);
        var names = new List<string> { "init_task", "linux_banner", "_text" };
        foreach (var at in new[] { 0, text.Length / 2, text.Length - 1 })
        {
            var start = at <= 0 ? 0 : Array.LastIndexOf(text, (byte)'\n', at) + 1;
            var fields = Encoding.ASCII.GetString(text, start, Math.Min(200, text.Length - start)).Split('\n')[0].Split(' ');
            if (fields.Length >= 3)
                names.Add(fields[2].TrimEnd('\r'));
        }
        var answers = new StringBuilder();
        using var file = RandomAccessFile.Open(path, writable: false);
        try
        {
            using var map = TextSymbolTable.OpenMap(file, splitBytes);
            foreach (var name in names)
                answers.Append(map.TryLookup(name, out var s) ? $"{name}={s}; " : $"{name}: none; ");
            answers.Append($"count {map.Count}");
            // Address lookups read the lines' sorted addresses: they must answer as every symbol decoded does.
            var index = map.FullIndex;
            foreach (var a in new[] { 0UL, 0xc1000000, 0xffffffff81000000, 0xffffffff81000001, ulong.MaxValue })
            {
                if (index.TryFindNearest(a, out var e) != map.TryFindNearest(a, out var g) || e != g
                    || index.TryFindNext(a, out e) != map.TryFindNext(a, out g) || e != g)
                    throw new InvalidOperationException($"address 0x{a:x}: the lines' addresses answer {g}, the decoded symbols {e}");
            }
        }
        catch (KvmException e)
        {
            answers.Append($"refused: {e.Message}");
        }
        return answers.ToString();
    }

    private static void Lookups(ISymbolTable table)
    {
        table.TryLookup("linux_banner", out _);
        table.TryLookup("init_task", out var init);
        table.TryFindNearest(init.Address + 8, out _);
        table.TryFindNearest(0xffffffff81000000, out _);
        table.TryFindNearest(0xc1000000, out _);
    }

    private static void ElfSymtabTarget(byte[] input)
    {
        // Closed here whether or not the table took it (as ImageOpener does): the mapping must not outlive the input.
        using var file = RandomAccessFile.Open(Scratch(input), writable: false);
        var image = ElfImage.Parse(file);
        using var table = new ElfSymbolTable(image);
        Each(() => Lookups(table), () => table.ReadBanner());
    }

    /// <summary>The log layouts of VMCOREINFO the printk target picks from: the offsets Debian's 6.1 amd64 kernel
    /// writes, the 3.5-5.9 record buffer's, and the plain buffer's.</summary>
    internal static readonly string[] PrintkInfos =
    [
        PrintkRingInfo.Debian61Amd64,
        """
        SYMBOL(log_buf)=10000
        SYMBOL(log_buf_len)=10008
        SYMBOL(log_first_idx)=1000c
        SYMBOL(log_next_idx)=10010
        SIZE(printk_log)=16
        OFFSET(printk_log.ts_nsec)=0
        OFFSET(printk_log.len)=8
        OFFSET(printk_log.text_len)=10
        OFFSET(printk_log.dict_len)=12

        """,
        """
        SYMBOL(log_buf)=10000
        SYMBOL(log_buf_len)=10008
        SYMBOL(log_end)=1000c
        SYMBOL(logged_chars)=10010

        """,
    ];

    // Lazy, as everything that runs library code: under afl-fuzz the instrumented library may run only once the fork
    // server is up.
    private static readonly Lazy<VmcoreInfo[]> PrintkVmcoreInfos = new(() => [.. PrintkInfos.Select(t => VmcoreInfo.Parse(Encoding.ASCII.GetBytes(t)))]);

    private static void PrintkTarget(byte[] input)
    {
        if (input.Length == 0)
            return;
        var memory = new FuzzKernelMemory(DataModel.LP64, input.AsMemory(1), 0x10000);
        KernelLog.Read(memory, PrintkVmcoreInfos.Value[input[0] % PrintkVmcoreInfos.Value.Length]);
    }

    /// <summary>Where init_task is in the tasks target's memory.</summary>
    internal const ulong InitTask = 0x1000;

    /// <summary>A small 64-bit kernel's types for the tasks target: list_head, task_struct (threads on
    /// signal->thread_head), mm_struct and signal_struct, at fixed offsets.</summary>
    internal static BtfTypes TaskTypes => TaskTypesLazy.Value;

    private static readonly Lazy<BtfTypes> TaskTypesLazy = new(BuildTaskTypes);

    private static BtfTypes BuildTaskTypes()
    {
        var b = new BtfBuilder();
        var u32 = b.Int("unsigned int", 4);
        var u64 = b.Int("long unsigned int", 8);
        var ch = b.Int("char", 1, encoding: 2);
        var listHead = b.Struct("list_head", 16, ("next", 5, 0, 0), ("prev", 5, 64, 0));
        b.Ptr(listHead); // 5
        b.Ptr(7); // 6: struct task_struct *
        b.Struct("task_struct", 128, ("tasks", listHead, 0, 0), ("pid", u32, 128, 0), ("tgid", u32, 160, 0), ("real_parent", 6, 192, 0),
            ("comm", 8, 256, 0), ("__state", u32, 384, 0), ("exit_state", u32, 416, 0), ("mm", 10, 448, 0), ("signal", 12, 512, 0),
            ("thread_node", listHead, 576, 0), ("cpu", u32, 704, 0)); // 7
        b.Array(ch, u32, 16); // 8
        b.Struct("mm_struct", 24, ("arg_start", u64, 0, 0), ("arg_end", u64, 64, 0), ("pgd", 13, 128, 0)); // 9
        b.Ptr(9); // 10
        b.Struct("signal_struct", 16, ("thread_head", listHead, 0, 0)); // 11
        b.Ptr(11); // 12
        b.Ptr(u64); // 13
        return BtfTypes.Parse(b.Build(), sourceName: "fuzz BTF", pointerSize: 8);
    }

    private static void TasksTarget(byte[] input)
    {
        var memory = new FuzzKernelMemory(DataModel.LP64, input, InitTask);
        var tasks = new KernelTasks(new ViewMemory(memory, new BtfRelocator(TaskTypes, DataModel.LP64, "fuzz kernel")),
            name => name == "init_task" ? InitTask : null, 1, null, () => "fuzz BTF");
        tasks.List();
    }

    private static void Translate(IAddressSpace space, ReadOnlySpan<byte> input)
    {
        for (var i = 0; i < 8 && 16 + 8 * i <= input.Length; i++)
            space.TryTranslate(BinaryPrimitives.ReadUInt64LittleEndian(input[(8 + 8 * i)..]), out _, out _, out _);
    }

    private static void X86TablesTarget(byte[] input)
    {
        if (input.Length < 16)
            return;
        var memory = new FuzzPhysicalMemory(input);
        var root = BinaryPrimitives.ReadUInt32LittleEndian(input.AsSpan(4));
        IAddressSpace space = (input[0] & 3) switch
        {
            0 => new X86_64PageTables(memory, root & ~0xfffUL, 4, smeMask: (input[1] & 1) != 0 ? 1UL << 47 : 0),
            1 => new X86_64PageTables(memory, root & ~0xfffUL, 5),
            2 => new X86PaeTables(memory, root & ~0x1fUL),
            _ => new X86NonPaeTables(memory, root & ~0xfffUL),
        };
        Translate(space, input);
        Translate(new TranslationCache(space), input);
    }

    private static void Arm64TablesTarget(byte[] input)
    {
        if (input.Length < 16)
            return;
        var memory = new FuzzPhysicalMemory(input);
        var granule = (input[0] % 3) switch { 0 => Arm64Granule.Size4K, 1 => Arm64Granule.Size16K, _ => Arm64Granule.Size64K };
        var vaBits = ((input[0] >> 2) % 3) switch { 0 => 39, 1 => 48, _ => granule == Arm64Granule.Size64K ? 52 : 47 };
        var half = (input[1] & 1) == 0 ? Arm64AddressHalf.Kernel : Arm64AddressHalf.User;
        var format = (input[1] & 2) == 0 ? Arm64OutputAddressFormat.Bits48 : granule == Arm64Granule.Size64K ? Arm64OutputAddressFormat.Lpa : Arm64OutputAddressFormat.Lpa2;
        var pte = (input[1] & 4) == 0 ? Arm64LinuxPteFormat.ProtNoneBit58 : Arm64LinuxPteFormat.PresentInvalidNg;
        var root = BinaryPrimitives.ReadUInt32LittleEndian(input.AsSpan(4)) & ~0xfffUL;
        Translate(new Arm64PageTables(memory, root, granule, vaBits, half, format, linuxPteFormat: pte), input);
    }
}

/// <summary>The kernels whose BTF places the structs of the backtrace targets: Debian's 6.1 amd64 and i386 PAE kernels.
/// Under afl-fuzz the program runs from a copy outside the repository, so <c>run.sh</c> points
/// <c>KVMTYPED_FUZZ_KERNELS</c> at the folder the seed step wrote their BTF to (<c>seeds/kernels</c>); elsewhere (the
/// test suite, replay) they come from the fixtures.</summary>
internal static class FuzzKernels
{
    /// <summary>The environment variable naming the folder of <c>amd64.btf</c>, <c>i386.btf</c> and <c>arm64.btf</c>.</summary>
    public const string Variable = "KVMTYPED_FUZZ_KERNELS";

    private static readonly Lazy<BtfTypes> Amd64Lazy = new(() => Load("amd64.btf", 8) ?? FixtureTypes.Amd64);
    private static readonly Lazy<BtfTypes> I386Lazy = new(() => Load("i386.btf", 4) ?? FixtureTypes.I386);
    private static readonly Lazy<BtfTypes> Arm64Lazy = new(() => Load("arm64.btf", 8) ?? FixtureTypes.Arm64);

    /// <summary>Debian's 6.1.0-56-amd64.</summary>
    public static BtfTypes Amd64 => Amd64Lazy.Value;

    /// <summary>Debian's 6.1.0-50-686-pae.</summary>
    public static BtfTypes I386 => I386Lazy.Value;

    /// <summary>Debian's 6.1.0-50-arm64.</summary>
    public static BtfTypes Arm64 => Arm64Lazy.Value;

    private static BtfTypes? Load(string name, int pointerSize) =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } dir
            ? BtfTypes.Parse(File.ReadAllBytes(Path.Combine(dir, name)), sourceName: name, pointerSize: pointerSize)
            : null;

    /// <summary>Writes both kernels' BTF into <paramref name="dir"/>, for <see cref="Variable"/>.</summary>
    public static void Write(string dir)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "amd64.btf"), BtfReader.ReadBlob(Fixtures.Get("amd64/vmlinux-6.1.0-56-amd64.gz")).Blob);
        File.WriteAllBytes(Path.Combine(dir, "i386.btf"), BtfReader.ReadBlob(Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf")).Blob);
        File.WriteAllBytes(Path.Combine(dir, "arm64.btf"), BtfReader.ReadBlob(Fixtures.Get("arm64/vmlinux-6.1.0-50-arm64.btf")).Blob);
    }
}
