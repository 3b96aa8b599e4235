using KvmTyped.Arch.X86;
using KvmTyped.Btf;
using KvmTyped.Linux;
using KvmTyped.Linux.Unwind;
using KvmTyped.Tests.Btf;
using KvmTyped.Types;

namespace KvmTyped.Tests.Linux.Unwind;

/// <summary>The ORC tables as the kernel keeps them in memory, built in code: the fast lookup table over _stext.._etext,
/// the whole-table search for init text, a module's own tables, and each entry layout (6.1, 6.3, 6.4).</summary>
public class OrcTablesTests
{
    private const ulong Text = 0xffffffff81000000, Etext = Text + 0x800, Init = 0xffffffff82000000;
    private const ulong IpTable = 0xffffffff82100000, Entries = 0xffffffff82200000, Lookup = 0xffffffff82300000, Blocks = 0xffffffff82300100;
    private const ulong Module = 0xffffffffc0000000, ModuleIp = 0xffffffffc0002000, ModuleEntries = 0xffffffffc0003000;

    /// <summary>An entry as stored: sp_reg, bp_reg, type and the version's flag bits packed into the u16 at offset 4.</summary>
    private readonly record struct Raw(ulong Ip, short Sp, short Bp, ushort Flags);

    private static ushort V1(int spReg, int bpReg = 0, int type = 0, int end = 0) => (ushort)(spReg | bpReg << 4 | type << 8 | end << 10);

    private static ushort V2(int spReg, int bpReg = 0, int type = 0, int signal = 0, int end = 0) => (ushort)(spReg | bpReg << 4 | type << 8 | signal << 10 | end << 11);

    private static ushort V3(int spReg, int bpReg = 0, int type = 0, int signal = 0) => (ushort)(spReg | bpReg << 4 | type << 8 | signal << 11);

    private sealed class Image
    {
        public SparseKernelMemory Memory { get; } = new SparseKernelMemory(DataModel.LP64)
            .Map(IpTable, 0x1000).Map(Entries, 0x1000).Map(Lookup, 0x200).Map(Module, 0x1000).Map(ModuleIp, 0x100).Map(ModuleEntries, 0x100);

        public Dictionary<string, ulong> Symbols { get; } = [];

        public List<ModuleOrcTables> Modules { get; } = [];

        public void Table(ulong ipTable, ulong entries, IReadOnlyList<Raw> rows)
        {
            for (var i = 0; i < rows.Count; i++)
            {
                var at = ipTable + (ulong)i * 4;
                Memory.U32(at, unchecked((uint)(int)(long)(rows[i].Ip - at)));
                Memory.U16(entries + (ulong)i * 6, (ushort)rows[i].Sp);
                Memory.U16(entries + (ulong)i * 6 + 2, (ushort)rows[i].Bp);
                Memory.U16(entries + (ulong)i * 6 + 4, rows[i].Flags);
            }
        }

        /// <summary>vmlinux's tables and the lookup table unwind_init() fills: per 256-byte block the index of the entry
        /// covering its first byte, then the one covering _etext.</summary>
        public void Vmlinux(IReadOnlyList<Raw> rows)
        {
            Table(IpTable, Entries, rows);
            Symbols["_stext"] = Text;
            Symbols["_etext"] = Etext;
            Symbols["_sinittext"] = Init;
            Symbols["_einittext"] = Init + 0x100;
            Symbols["__start_orc_unwind_ip"] = IpTable;
            Symbols["__stop_orc_unwind_ip"] = IpTable + (ulong)rows.Count * 4;
            Symbols["__start_orc_unwind"] = Entries;
            Symbols["__stop_orc_unwind"] = Entries + (ulong)rows.Count * 6;
            var blocks = (Etext - Text) / 256 + 1;
            for (ulong b = 0; b < blocks; b++)
            {
                var ip = Text + b * 256;
                var index = rows.Select((r, i) => (r, i)).Last(x => x.r.Ip <= ip).i;
                Memory.U32(Lookup + b * 4, (uint)index);
            }
            Symbols["orc_lookup"] = Lookup;
            Symbols["orc_lookup_end"] = Lookup + blocks * 4;
            Symbols["lookup_num_blocks"] = Blocks;
            Memory.U32(Blocks, (uint)blocks);
        }

        public OrcTables Open(BtfTypes types) =>
            OrcTables.Open(FixtureTypes.Placed(Memory, types), n => Symbols.TryGetValue(n, out var a) ? a : null, () => Modules);
    }

    private static readonly Raw[] V1Rows =
    [
        new(Text, 8, 0, V1(5)),
        new(Text + 0x100, 16, -16, V1(5, 1)),
        new(Text + 0x200, 0, 0, V1(5, 0, 1)),
        new(Text + 0x300, 0, 0, V1(0)),
        new(Text + 0x400, 0, 0, V1(0, 0, 0, 1)),
        new(Text + 0x500, 8, 0, V1(5, 0, 2)),
        new(Etext, 0, 0, V1(0)),
        new(Init, 24, 0, V1(5)),
        new(Init + 0x100, 0, 0, V1(0)),
    ];

    [Fact]
    public void The_6_1_tables_are_found_through_the_lookup_table()
    {
        var image = new Image();
        image.Vmlinux(V1Rows);
        var orc = image.Open(FixtureTypes.Amd64);
        Assert.Equal(OrcVersion.Linux4_14, orc.Version);
        Assert.True(orc.HasLookupTable);
        Assert.Equal((uint)V1Rows.Length, orc.Count);
        Assert.Equal(new OrcEntry(8, 0, OrcRegister.Sp, OrcRegister.Undefined, OrcType.Call, false, 0), orc.Find(Text + 0x50, out _));
        Assert.Equal(new OrcEntry(16, -16, OrcRegister.Sp, OrcRegister.PrevSp, OrcType.Call, false, 0), orc.Find(Text + 0x1ff, out _));
        // 6.1's REGS types imply that the ip they give is exact.
        Assert.Equal((OrcType.Regs, true), Pick(orc.Find(Text + 0x250, out _)));
        Assert.Equal((OrcType.Undefined, false), Pick(orc.Find(Text + 0x300, out _)));
        Assert.Equal((OrcType.EndOfStack, false), Pick(orc.Find(Text + 0x4ff, out _)));
        Assert.Equal((OrcType.RegsPartial, true), Pick(orc.Find(Text + 0x7ff, out _)));
        Assert.Equal(OrcEntry.NullIp, orc.Find(0, out _));
        // Init text: the whole table is searched.
        Assert.Equal(24, orc.Find(Init + 0x10, out _)!.Value.SpOffset);
        Assert.Null(orc.Find(Etext + 0x10, out var why));
        Assert.Equal("not in vmlinux's text or any module", why);
    }

    private static (OrcType, bool) Pick(OrcEntry? e) => (e!.Value.Type, e.Value.Signal);

    [Fact]
    public void Module_code_is_found_in_the_module_s_own_tables()
    {
        var image = new Image();
        image.Vmlinux(V1Rows);
        image.Table(ModuleIp, ModuleEntries, [new(Module, 8, 0, V1(5)), new(Module + 0x80, 0, 0, V1(5, 0, 1))]);
        var fat = new KernelModule("fat", 0xffffffffc0010000, "Live", Module, 0x2000, [new ModuleMemory("text", Module, 0x1000), new ModuleMemory("data", Module + 0x1000, 0x1000)], []);
        image.Modules.Add(new ModuleOrcTables(fat, ModuleIp, ModuleEntries, 2));
        var orc = image.Open(FixtureTypes.Amd64);
        Assert.Equal((OrcType.Regs, true), Pick(orc.Find(Module + 0x90, out _)));
        Assert.Equal((OrcType.Call, false), Pick(orc.Find(Module + 0x10, out _)));
        Assert.Null(orc.Find(Module + 0x2010, out var why));
        Assert.Equal("not in vmlinux's text or any module", why);
    }

    [Fact]
    public void A_damaged_lookup_table_or_table_size_is_reported()
    {
        var image = new Image();
        image.Vmlinux(V1Rows);
        image.Memory.U32(Lookup + 3 * 4, 100);
        var orc = image.Open(FixtureTypes.Amd64);
        Assert.Null(orc.Find(Text + 0x350, out var why));
        Assert.Equal($"ORC lookup block 3 holds entries 100..5 of {V1Rows.Length}", why);
        image.Symbols["__stop_orc_unwind"] += 6;
        var e = Assert.Throws<KvmException>(() => image.Open(FixtureTypes.Amd64));
        Assert.Contains("the ORC tables do not fit", e.Message, StringComparison.Ordinal);
        image.Symbols.Remove("__start_orc_unwind");
        Assert.Contains("no symbol \"__start_orc_unwind\"", Assert.Throws<KvmException>(() => image.Open(FixtureTypes.Amd64)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_lookup_table_the_whole_table_is_searched()
    {
        var image = new Image();
        image.Vmlinux(V1Rows);
        image.Symbols.Remove("orc_lookup");
        var orc = image.Open(FixtureTypes.Amd64);
        Assert.False(orc.HasLookupTable);
        Assert.Equal((OrcType.Regs, true), Pick(orc.Find(Text + 0x2a0, out _)));
    }

    /// <summary>struct orc_entry of 6.3 (type:2 signal:1 end:1) or 6.4+ (type:3 signal:1), as BTF describes it.</summary>
    private static BtfTypes OrcTypes(bool v64)
    {
        var b = new BtfBuilder();
        var s16 = b.Int("short int", 2, encoding: 1);
        var u32 = b.Int("unsigned int", 4);
        if (v64)
            b.Struct("orc_entry", 6, ("sp_offset", s16, 0, 0), ("bp_offset", s16, 16, 0), ("sp_reg", u32, 32, 4), ("bp_reg", u32, 36, 4), ("type", u32, 40, 3), ("signal", u32, 43, 1));
        else
            b.Struct("orc_entry", 6, ("sp_offset", s16, 0, 0), ("bp_offset", s16, 16, 0), ("sp_reg", u32, 32, 4), ("bp_reg", u32, 36, 4), ("type", u32, 40, 2), ("signal", u32, 42, 1), ("end", u32, 43, 1));
        return BtfTypes.Parse(b.Build(), sourceName: "test BTF", pointerSize: 8);
    }

    [Fact]
    public void The_6_4_layout_numbers_its_types_itself_and_carries_the_signal_bit()
    {
        var image = new Image();
        image.Vmlinux(
        [
            new(Text, 8, 0, V3(5, 0, 2)),
            new(Text + 0x100, 0, 0, V3(5, 0, 3, 1)),
            new(Text + 0x200, 0, 0, V3(0, 0, 1)),
            new(Text + 0x300, 0, 0, V3(0, 0, 0)),
            new(Text + 0x400, 8, 0, V3(5, 0, 2, 1)),
            new(Text + 0x500, 8, 0, V3(5, 0, 7)),
            new(Etext, 0, 0, V3(0)),
        ]);
        var orc = image.Open(OrcTypes(v64: true));
        Assert.Equal(OrcVersion.Linux6_4, orc.Version);
        Assert.Equal((OrcType.Call, false), Pick(orc.Find(Text + 0x10, out _)));
        Assert.Equal((OrcType.Regs, true), Pick(orc.Find(Text + 0x110, out _)));
        Assert.Equal((OrcType.EndOfStack, false), Pick(orc.Find(Text + 0x210, out _)));
        Assert.Equal((OrcType.Undefined, false), Pick(orc.Find(Text + 0x310, out _)));
        Assert.Equal((OrcType.Call, true), Pick(orc.Find(Text + 0x410, out _)));
        var unknown = orc.Find(Text + 0x510, out _)!.Value;
        Assert.Equal(7u, unknown.RawType);
        Assert.False(Enum.IsDefined(unknown.Type));
    }

    [Fact]
    public void The_6_3_layout_keeps_end_and_adds_the_signal_bit()
    {
        var image = new Image();
        image.Vmlinux(
        [
            new(Text, 8, 0, V2(5, 0, 0, 1)),
            new(Text + 0x100, 0, 0, V2(0, 0, 0, 0, 1)),
            new(Text + 0x200, 0, 0, V2(5, 0, 1, 1)),
            new(Etext, 0, 0, V2(0)),
        ]);
        var orc = image.Open(OrcTypes(v64: false));
        Assert.Equal(OrcVersion.Linux6_3, orc.Version);
        Assert.Equal((OrcType.Call, true), Pick(orc.Find(Text + 0x10, out _)));
        Assert.Equal((OrcType.EndOfStack, false), Pick(orc.Find(Text + 0x110, out _)));
        Assert.Equal((OrcType.Regs, true), Pick(orc.Find(Text + 0x210, out _)));
    }

    [Fact]
    public void An_unwinder_over_the_in_memory_tables_walks_a_module_frame_into_vmlinux()
    {
        var image = new Image();
        image.Vmlinux(V1Rows);
        image.Table(ModuleIp, ModuleEntries, [new(Module, 16, 0, V1(5)), new(Module + 0x1000, 0, 0, V1(0))]);
        var fat = new KernelModule("fat", 0xffffffffc0010000, "Live", Module, 0x1000, [new ModuleMemory("text", Module, 0x1000)], []);
        image.Modules.Add(new ModuleOrcTables(fat, ModuleIp, ModuleEntries, 2));
        const ulong stack = 0xffffc90000010000;
        image.Memory.Map(stack, 0x4000);
        image.Memory.U64(stack + 0x3f08, Text + 0x410); // the module function returns into vmlinux's end-of-stack code
        var memory = FixtureTypes.Placed(image.Memory, FixtureTypes.Amd64);
        var tables = OrcTables.Open(memory, n => image.Symbols.TryGetValue(n, out var a) ? a : null, () => image.Modules);
        var unwinder = new OrcUnwinder(memory, tables, a => (a >= Text && a < Etext) || (a >= Module && a < Module + 0x1000), 0, _ => null);
        var start = new Registers([new("ip", Module + 0x20), new("sp", stack + 0x3f00), new("cs", 0x10)], full: true);
        var r = unwinder.FromRegisters(start, new StackSet([new StackRange(StackKind.Task, "task", stack, stack + 0x4000)]));
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal([Module + 0x20, Text + 0x410], r.Frames.Select(f => f.Ip));
    }
}
