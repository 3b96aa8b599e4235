using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using KvmTyped.Arch.X86;
using KvmTyped.Btf;
using KvmTyped.Formats;
using KvmTyped.Linux;
using KvmTyped.Linux.Unwind;
using KvmTyped.Types;

namespace KvmTyped.Tools;

/// <summary>Entry points for coverage-guided fuzzing of the unwinders, the ORC table reader, the module walk and the
/// register notes: each takes arbitrary bytes (and, where structs are read, a kernel's BTF loaded once by the harness),
/// builds a small kernel image from them and runs the library's own code over it. The library's exceptions
/// (<see cref="KvmException"/> and its kinds) are expected outcomes and are caught here; anything else escaping, a hang,
/// or unbounded memory is a bug. Each returns what it found (frames, entries, modules, notes), or -1 when one of the
/// library's exceptions ended it, so a seed can be checked to reach the code it is meant for. They live above the
/// Linux layer because they place the kernel's structs from a BTF given in code, which the Linux helpers never do.</summary>
/// <remarks>Byte layouts (little-endian; short inputs read as zeros past their end):
/// <list type="bullet">
/// <item><see cref="UnwindOrc"/>: [0] start (even: registers, odd: a switched-out task), [1] ORC entry count (at most
/// 64), [2] entry layout (mod 3: 6.1, 6.3, 6.4), [8..16) sp offset into the stack, [16..24) ip offset into the code,
/// [24..32) bp, [32..40) r10, [40..48) di; then the entries, 10 bytes each (u16 code offset, s16 sp_offset,
/// s16 bp_offset, u16 packed sp_reg/bp_reg/type/flags as the layout stores them, u16 unused); the rest is 16 KiB of task
/// stack followed by 16 KiB of IRQ stack (zeros where the input ends). Code lies at 0xffffffff81000000 (64 KiB, the
/// first 256 bytes of the stack area copied there so call instructions can be verified).</item>
/// <item><see cref="UnwindFramePointers"/>: [0] start (even: registers, odd: switched out), [8..16) sp offset,
/// [16..24) ip offset, [24..32) bp; the rest is an 8 KiB task stack and an 8 KiB IRQ stack (i386 addresses when the BTF
/// is a 32-bit kernel's).</item>
/// <item><see cref="UnwindArm64FramePointers"/>: [0] start (even: registers, odd: a switched-out task), [8..16) sp
/// offset, [16..24) pc offset, [24..32) x29, [32..40) x30, [40..48) pstate; the rest is a 16 KiB task stack, a 16 KiB IRQ
/// stack and 8 KiB of task_struct (its thread.cpu_context where the BTF places it). Code lies at 0xffff800008010000
/// (64 KiB, its first 4 KiB the exception entry code), the stacks at 0xffff800008200000, the task at
/// 0xffff000002000000; return addresses may carry a pointer authentication code (KERNELPACMASK 0xffff000000000000).</item>
/// <item><see cref="OrcTableLookup"/>: [0..4) entry count, [4..8) lookup block count, [8..16) ips to look up (four u16
/// code offsets); then the ip table, the entries and the lookup table as the kernel keeps them.</item>
/// <item><see cref="ModuleWalk"/>: the bytes are kernel memory at 0xffffffffc0000000 (0xd8000000 for a 32-bit
/// BTF) whose first 16 bytes are the <c>modules</c> list head.</item>
/// <item><see cref="RegisterNotes"/>: an ELF note area.</item>
/// </list></remarks>
internal static class BacktraceFuzzing
{
    private const ulong Code = 0xffffffff81000000;
    private const int CodeSize = 0x10000;
    private const ulong Stack64 = 0xffffc90000010000;
    private const ulong Stack32 = 0xc1100000;
    private const ulong Code32 = 0xc7000000;

    /// <summary>The ORC unwinder over a stack, registers and ORC entries taken from <paramref name="data"/>;
    /// <paramref name="onRead"/>, when given, is called on every read of the kernel memory built from it.</summary>
    public static int UnwindOrc(ReadOnlySpan<byte> data, BtfTypes types, Action? onRead = null)
    {
        ArgumentNullException.ThrowIfNull(types);
        var header = Take(data, 0, 64);
        var count = Math.Min((int)header[1], 64);
        var version = (OrcVersion)(header[2] % 3);
        var orc = new ListOrc();
        for (var i = 0; i < count; i++)
        {
            var e = Take(data, 64 + i * 10, 10);
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(e[6..]);
            var (type, end, signal) = version switch
            {
                OrcVersion.Linux4_14 => ((uint)(flags >> 8) & 3, (flags & 0x400) != 0, false),
                OrcVersion.Linux6_3 => ((uint)(flags >> 8) & 3, (flags & 0x800) != 0, (flags & 0x400) != 0),
                _ => ((uint)(flags >> 8) & 7, false, (flags & 0x800) != 0),
            };
            orc.Add(Code + BinaryPrimitives.ReadUInt16LittleEndian(e),
                OrcEntry.Decode(BinaryPrimitives.ReadInt16LittleEndian(e[2..]), BinaryPrimitives.ReadInt16LittleEndian(e[4..]), (uint)flags & 0xf, ((uint)flags >> 4) & 0xf, type, end, signal, version));
        }
        var rest = data.Length > 64 + count * 10 ? data[(64 + count * 10)..] : [];
        var memory = new BlockMemory(DataModel.LP64, onRead);
        memory.Add(Stack64, Take(rest, 0, 0x8000));
        var code = new byte[CodeSize];
        Take(rest, 0, 256).CopyTo(code);
        memory.Add(Code, code);
        var placed = new ViewMemory(memory, new BtfRelocator(types, DataModel.LP64, "fuzz kernel"));
        var stacks = new StackSet([new StackRange(StackKind.Task, "task", Stack64, Stack64 + 0x4000), new StackRange(StackKind.HardIrq, "IRQ", Stack64 + 0x4000, Stack64 + 0x8000)]);
        var unwinder = new OrcUnwinder(placed, orc, a => a >= Code && a < Code + CodeSize, Code, a => a >= Code && a < Code + CodeSize ? a & ~0xffUL : null);
        var sp = Stack64 + BinaryPrimitives.ReadUInt64LittleEndian(header[8..]) % 0x8000;
        var ip = Code + BinaryPrimitives.ReadUInt64LittleEndian(header[16..]) % CodeSize;
        try
        {
            if ((header[0] & 1) == 0)
            {
                var regs = new Registers(
                [
                    new("ip", ip), new("sp", sp), new("bp", BinaryPrimitives.ReadUInt64LittleEndian(header[24..])), new("r10", BinaryPrimitives.ReadUInt64LittleEndian(header[32..])),
                    new("di", BinaryPrimitives.ReadUInt64LittleEndian(header[40..])), new("cs", 0x10),
                ], full: true);
                return unwinder.FromRegisters(regs, stacks).Frames.Count;
            }
            return unwinder.FromSwitchedOut(sp, stacks).Frames.Count;
        }
        catch (KvmException)
        {
            return -1;
        }
    }

    /// <summary>The frame-pointer unwinder over a stack and registers taken from <paramref name="data"/>, in the data
    /// model of <paramref name="types"/> (i386 or x86-64); <paramref name="onRead"/> as for <see cref="UnwindOrc"/>.</summary>
    public static int UnwindFramePointers(ReadOnlySpan<byte> data, BtfTypes types, Action? onRead = null)
    {
        ArgumentNullException.ThrowIfNull(types);
        var lp64 = types.PointerSize == 8;
        var model = lp64 ? DataModel.LP64 : DataModel.ILP32;
        var (stack, code) = lp64 ? (Stack64, Code) : (Stack32, Code32);
        var header = Take(data, 0, 32);
        var memory = new BlockMemory(model, onRead);
        memory.Add(stack, Take(data.Length > 32 ? data[32..] : [], 0, 0x4000));
        var placed = new ViewMemory(memory, new BtfRelocator(types, model, "fuzz kernel"));
        var stacks = new StackSet([new StackRange(StackKind.Task, "task", stack, stack + 0x2000), new StackRange(StackKind.HardIrq, "IRQ", stack + 0x2000, stack + 0x4000)]);
        var unwinder = new FramePointerUnwinder(placed, a => a >= code && a < code + CodeSize);
        var sp = stack + BinaryPrimitives.ReadUInt64LittleEndian(header[8..]) % 0x4000;
        var ip = code + BinaryPrimitives.ReadUInt64LittleEndian(header[16..]) % CodeSize;
        var bp = BinaryPrimitives.ReadUInt64LittleEndian(header[24..]);
        if (!lp64)
            bp &= uint.MaxValue;
        var top = stack + 0x2000 - 8 - (lp64 ? 168UL : 68UL);
        try
        {
            return (header[0] & 1) == 0
                ? unwinder.FromRegisters(new Registers([new("ip", ip), new("sp", sp), new("bp", bp), new("cs", lp64 ? 0x10UL : 0x60UL)], full: true) { Vm86 = !lp64 }, stacks, top).Frames.Count
                : unwinder.FromSwitchedOut(sp, stacks, top).Frames.Count;
        }
        catch (KvmException)
        {
            return -1;
        }
    }

    /// <summary>The arm64 frame-record unwinder over a stack, registers and a task taken from <paramref name="data"/>
    /// (struct pt_regs and task_struct placed by <paramref name="types"/>, an arm64 kernel's BTF); <paramref name="onRead"/>
    /// as for <see cref="UnwindOrc"/>.</summary>
    public static int UnwindArm64FramePointers(ReadOnlySpan<byte> data, BtfTypes types, Action? onRead = null)
    {
        ArgumentNullException.ThrowIfNull(types);
        const ulong code = 0xffff800008010000, stack = 0xffff800008200000, task = 0xffff000002000000, size = 0x4000;
        var header = Take(data, 0, 64);
        var rest = data.Length > 64 ? data[64..] : [];
        var memory = new BlockMemory(DataModel.LP64, onRead);
        memory.Add(stack, Take(rest, 0, (int)(2 * size)));
        memory.Add(task, Take(rest, (int)(2 * size), 0x2000));
        memory.Add(code, new byte[CodeSize]);
        var placed = new ViewMemory(memory, new BtfRelocator(types, DataModel.LP64, "fuzz kernel"));
        var stacks = new StackSet([new StackRange(StackKind.Task, "task", stack, stack + size), new StackRange(StackKind.HardIrq, "IRQ", stack + size, stack + 2 * size)]);
        var unwinder = new Arm64FramePointerUnwinder(placed, a => a >= code && a < code + CodeSize, a => a >= code && a < code + 0x1000,
            a => a >= code && a < code + CodeSize ? a & ~0xffUL : null, 0xffff_0000_0000_0000);
        try
        {
            var regsSize = Linux.Kernel.Arm64.pt_regs.SizeOf(placed);
            var final = stack + size - regsSize + Linux.Kernel.Arm64.pt_regs.OffsetOf(placed, "stackframe");
            if ((header[0] & 1) == 0)
            {
                var regs = new Registers(
                [
                    new("x29", BinaryPrimitives.ReadUInt64LittleEndian(header[24..])), new("x30", BinaryPrimitives.ReadUInt64LittleEndian(header[32..])),
                    new("sp", stack + BinaryPrimitives.ReadUInt64LittleEndian(header[8..]) % (2 * size)),
                    new("pc", code + BinaryPrimitives.ReadUInt64LittleEndian(header[16..]) % CodeSize),
                    new("pstate", BinaryPrimitives.ReadUInt64LittleEndian(header[40..])),
                ], full: true);
                return unwinder.FromRegisters(regs, stacks, final).Frames.Count;
            }
            return unwinder.FromSwitchedOut(task, stacks, final).Frames.Count;
        }
        catch (KvmException)
        {
            return -1;
        }
    }

    /// <summary>The ORC table reader over vmlinux tables taken from <paramref name="data"/> (struct orc_entry placed by
    /// <paramref name="types"/>, an x86-64 kernel's BTF); <paramref name="onRead"/> as for <see cref="UnwindOrc"/>.</summary>
    public static int OrcTableLookup(ReadOnlySpan<byte> data, BtfTypes types, Action? onRead = null)
    {
        ArgumentNullException.ThrowIfNull(types);
        var header = Take(data, 0, 16);
        var count = BinaryPrimitives.ReadUInt32LittleEndian(header) % 4096;
        var blocks = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]) % 512;
        const ulong tables = 0xffffffff82000000;
        var memory = new BlockMemory(DataModel.LP64, onRead);
        memory.Add(tables, Take(data.Length > 16 ? data[16..] : [], 0, 0x10000));
        var placed = new ViewMemory(memory, new BtfRelocator(types, DataModel.LP64, "fuzz kernel"));
        var entries = tables + count * 4;
        var lookup = entries + count * 6;
        var symbols = new Dictionary<string, ulong>
        {
            ["_stext"] = Code, ["_etext"] = Code + CodeSize, ["_sinittext"] = Code + CodeSize, ["_einittext"] = Code + CodeSize + 0x100,
            ["__start_orc_unwind_ip"] = tables, ["__stop_orc_unwind_ip"] = entries, ["__start_orc_unwind"] = entries, ["__stop_orc_unwind"] = lookup,
            ["orc_lookup"] = lookup, ["orc_lookup_end"] = lookup + blocks * 4,
        };
        try
        {
            var orc = OrcTables.Open(placed, n => symbols.TryGetValue(n, out var a) ? a : null, () => []);
            var found = 0;
            for (var i = 0; i < 4; i++)
                found += orc.Find(Code + BinaryPrimitives.ReadUInt16LittleEndian(header[(8 + 2 * i)..]), out _) is null ? 0 : 1;
            return found;
        }
        catch (KvmException)
        {
            return -1;
        }
    }

    /// <summary>The module walk over kernel memory taken from <paramref name="data"/>: the list, each module's memory
    /// layout, symbol table and ORC tables, and the symbol tables handed to symbolization; <paramref name="onRead"/> as
    /// for <see cref="UnwindOrc"/>.</summary>
    public static int ModuleWalk(ReadOnlySpan<byte> data, BtfTypes types, Action? onRead = null)
    {
        ArgumentNullException.ThrowIfNull(types);
        var lp64 = types.PointerSize == 8;
        var model = lp64 ? DataModel.LP64 : DataModel.ILP32;
        ulong at = lp64 ? 0xffffffffc0000000 : 0xd8000000;
        var memory = new BlockMemory(model, onRead);
        memory.Add(at, Take(data, 0, Math.Min(data.Length, 1 << 20)));
        var placed = new ViewMemory(memory, new BtfRelocator(types, model, "fuzz kernel"));
        try
        {
            var modules = new KernelModules(placed, n => n == "modules" ? at : null, lp64 ? KernelMachine.X86_64 : KernelMachine.X86);
            var list = modules.List();
            _ = modules.OrcTables.Count;
            _ = modules.SymbolTables();
            return list.Count;
        }
        catch (KvmException)
        {
            return -1;
        }
    }

    /// <summary>The register notes of an ELF note area.</summary>
    public static int RegisterNotes(ReadOnlySpan<byte> data)
    {
        try
        {
            var notes = CpuNotes.Parse(data, bigEndian: false, "fuzz").Notes;
            foreach (var n in notes)
                _ = n.Names.Count + n.Values.Length;
            return notes.Count;
        }
        catch (KvmException)
        {
            return -1;
        }
    }

    /// <summary><paramref name="length"/> bytes of <paramref name="data"/> from <paramref name="start"/>, zeros past its end.</summary>
    private static byte[] Take(ReadOnlySpan<byte> data, int start, int length)
    {
        var bytes = new byte[length];
        if (start < data.Length)
            data[start..Math.Min(data.Length, start + length)].CopyTo(bytes);
        return bytes;
    }

    /// <summary>ORC entries from a list: the last at or below an ip applies.</summary>
    private sealed class ListOrc : IOrcLookup
    {
        private readonly SortedList<ulong, OrcEntry> _entries = [];

        public void Add(ulong ip, OrcEntry entry) => _entries[ip] = entry;

        public OrcEntry? Find(ulong ip, out string? why)
        {
            why = null;
            var keys = _entries.Keys;
            int lo = 0, hi = keys.Count;
            while (lo < hi)
            {
                var mid = (lo + hi) >>> 1;
                if (keys[mid] <= ip)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo == 0)
            {
                why = "no entry";
                return null;
            }
            return _entries.Values[lo - 1];
        }
    }

    /// <summary>Kernel memory of a few blocks; anything else is unmapped. Every read is reported to
    /// <paramref name="onRead"/>, so a harness can bound the work one input makes.</summary>
    private sealed class BlockMemory(DataModel model, Action? onRead) : IKernelMemory
    {
        private readonly List<(ulong Start, byte[] Bytes)> _blocks = [];

        public DataModel DataModel { get; } = model;

        public void Add(ulong start, byte[] bytes) => _blocks.Add((start, bytes));

        public bool TryReadVirtual(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
        {
            onRead?.Invoke();
            foreach (var (start, bytes) in _blocks)
            {
                if (address >= start && address - start <= (ulong)bytes.Length && (ulong)destination.Length <= (ulong)bytes.Length - (address - start))
                {
                    bytes.AsSpan((int)(address - start), destination.Length).CopyTo(destination);
                    failure = null;
                    return true;
                }
            }
            failure = "not mapped";
            return false;
        }
    }
}
