using System.Buffers.Binary;
using System.Text;
using KvmTyped.Formats;
using KvmTyped.Formats.Elf;
using KvmTyped.IO;
using KvmTyped.Linux.Kernel;
using KvmTyped.Types;
using X86_64 = KvmTyped.Linux.Kernel.X86_64;

namespace KvmTyped.Tests.Linux.Unwind;

/// <summary>Inputs of the backtrace fuzzing entry points (<c>KvmTyped.Tools.BacktraceFuzzing</c>) that reach the code
/// they are for: the unit tests check that they do, and the fuzz harness starts its campaigns from them.</summary>
internal static class BacktraceSeeds
{
    private const ulong Code = 0xffffffff81000000;

    /// <summary>Where the module walk's input lies in kernel memory (the list head is its first 16 bytes).</summary>
    public const ulong ModuleArea = 0xffffffffc0000000;

    /// <summary>An ORC input: registers at code offset 0x10 and stack offset 0x100, an entry for the first function
    /// (call frame, return address at sp) and an end-of-stack entry for the second: two frames.</summary>
    public static byte[] Orc()
    {
        var data = new byte[64 + 2 * 10 + 0x200];
        data[1] = 2;
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), 0x100);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16), 0x10);
        BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(64 + 2), 8);
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(64 + 6), 5);            // sp_reg SP, CALL
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(74), 0x100);
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(74 + 6), 0x400);        // sp_reg UNDEFINED, end
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(84 + 0x100), Code + 0x105);
        return data;
    }

    /// <summary>An i386 frame-pointer input: registers at code offset 0x10, an ebp chain of one frame: two frames.</summary>
    public static byte[] FramePointers()
    {
        var data = new byte[32 + 0x400];
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), 0x100);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16), 0x10);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(24), 0xc1100200);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(32 + 0x204), 0xc7000055);
        return data;
    }

    /// <summary>An arm64 input: registers at code offset 0x10 and stack offset 0x100 (EL1h), x29 at a record whose
    /// return address carries a pointer authentication code and whose caller record is 0 (the end): two frames.</summary>
    public static byte[] Arm64()
    {
        var data = new byte[64 + 0x400];
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), 0x100);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16), 0x10);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(24), 0xffff800008200200);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(40), 0x3c5);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(64 + 0x208), 0x5a93800008010155);
        return data;
    }

    /// <summary>An ORC table input of three entries and no lookup blocks: every one of the four ips is found.</summary>
    public static byte[] OrcTable()
    {
        var table = new byte[16 + 3 * 4 + 3 * 6];
        BinaryPrimitives.WriteUInt32LittleEndian(table, 3);
        return table;
    }

    /// <summary>A module list with no module.</summary>
    public static byte[] EmptyModuleList()
    {
        var data = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(data, ModuleArea);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), ModuleArea);
        return data;
    }

    /// <summary>A module list of one module, "fat", as Debian's 6.1 amd64 kernel lays it out (placed by
    /// <see cref="FixtureTypes.Amd64"/>): its layout, three symbols (two text, one data) and two ORC entries.</summary>
    public static byte[] OneModuleList()
    {
        const int Size = 0x20000;
        var raw = new SparseKernelMemory(DataModel.LP64).Map(ModuleArea, Size);
        var memory = FixtureTypes.Placed(raw, FixtureTypes.Amd64);
        ulong Off<T>(string member) where T : struct, IKernelView<T> => T.OffsetOf(memory, member);
        const ulong module = ModuleArea + 0x1000, tables = ModuleArea + 0x3000, text = ModuleArea + 0x10000;
        var node = module + Off<module>("list");
        raw.U64(ModuleArea, node);
        raw.U64(ModuleArea + 8, node);
        raw.U64(node, ModuleArea);
        raw.U64(node + 8, ModuleArea);
        raw.U32(module + Off<module>("state"), 0);
        raw.Text(module + Off<module>("name"), "fat");
        var core = module + Off<module___pre_6_4>("core_layout");
        raw.U64(core + Off<module_layout>("base"), text);
        raw.U32(core + Off<module_layout>("size"), 0x3000);
        raw.U32(core + Off<module_layout>("text_size"), 0x1000);
        raw.U32(core + Off<module_layout>("ro_size"), 0x1800);
        var kallsyms = module + Off<module>("core_kallsyms");
        raw.U64(module + Off<module>("kallsyms"), kallsyms);
        (string Name, ulong Value, ushort Shndx, char Type)[] syms =
            [("", 0, 0, '?'), ("fat_fill_super", text, 1, 't'), ("fat_attach", text + 0x100, 1, 'T'), ("fat_cache", text + 0x1010, 3, 'd')];
        ulong strtab = tables + 0x800, typetab = tables + 0xc00;
        var strings = new StringBuilder("\0");
        for (var i = 0; i < syms.Length; i++)
        {
            var entry = tables + (ulong)i * 24;
            raw.U32(entry, syms[i].Name.Length == 0 ? 0u : (uint)strings.Length);
            if (syms[i].Name.Length > 0)
                strings.Append(syms[i].Name).Append('\0');
            raw.U8(entry + 4, 0x12);
            raw.U16(entry + 6, syms[i].Shndx);
            raw.U64(entry + 8, syms[i].Value);
            raw.U8(typetab + (ulong)i, (byte)syms[i].Type);
        }
        raw.Bytes(strtab, Encoding.ASCII.GetBytes(strings.ToString()));
        raw.U64(kallsyms + Off<mod_kallsyms>("symtab"), tables);
        raw.U32(kallsyms + Off<mod_kallsyms>("num_symtab"), (uint)syms.Length);
        raw.U64(kallsyms + Off<mod_kallsyms>("strtab"), strtab);
        raw.U64(kallsyms + Off<mod_kallsyms>("typetab"), typetab);
        var arch = module + Off<X86_64.module___x86_64>("arch");
        raw.U32(arch + Off<X86_64.mod_arch_specific>("num_orcs"), 2);
        raw.U64(arch + Off<X86_64.mod_arch_specific>("orc_unwind_ip"), text + 0x2000);
        raw.U64(arch + Off<X86_64.mod_arch_specific>("orc_unwind"), text + 0x2100);
        var bytes = new byte[Size];
        if (!raw.TryReadVirtual(ModuleArea, bytes, out var failure))
            throw new InvalidOperationException(failure);
        return bytes;
    }

    /// <summary>The note area (every PT_NOTE segment's bytes, one after the other) of an ELF core.</summary>
    public static byte[] NoteArea(string elfCore)
    {
        using var file = RandomAccessFile.Open(elfCore, writable: false);
        var image = ElfImage.Parse(file);
        var notes = new List<byte>();
        foreach (var seg in image.Segments)
        {
            if (seg.Type == ElfConstants.PtNote && seg.FileSize > 0 && seg.FileSize <= ElfNotes.MaxNoteSize)
                notes.AddRange(file.Unchecked((long)seg.Offset, (int)seg.FileSize).ToArray());
        }
        return [.. notes];
    }
}
