using System.Text;
using KvmTyped.Btf;
using KvmTyped.Linux;
using KvmTyped.Linux.Kernel;
using KvmTyped.Tests.Btf;
using KvmTyped.Types;
using X86_64 = KvmTyped.Linux.Kernel.X86_64;

namespace KvmTyped.Tests.Linux.Unwind;

/// <summary>The module list and each module's in-memory kallsyms, built in code: the 6.1 layout (real amd64 types),
/// the 6.4 layout (mem[]), a 32-bit kernel's Elf32 symbols, and damaged lists and tables.</summary>
public class KernelModulesSyntheticTests
{
    private const ulong Head = 0xffffffff82b292a0;
    private const ulong Structs = 0xffffffffc0100000;   // struct module of each module, 0x1000 apart
    private const ulong Tables = 0xffffffffc0200000;    // their symbol, string and type tables, 0x1000 apart
    private const ulong Code = 0xffffffffc0000000;      // their memory, 0x10000 apart

    private static SparseKernelMemory Raw(DataModel model = DataModel.LP64) =>
        new SparseKernelMemory(model).Map(Head, 0x10).Map(Structs, 0x4000).Map(Tables, 0x4000);

    private sealed record Sym(string Name, ulong Value, ushort Shndx, char Type);

    /// <summary>Writes an Elf64 symbol table, its strings and its type letters at <paramref name="at"/>.</summary>
    private static (ulong Symtab, ulong Strtab, ulong Typetab, uint Count) Elf64Symbols(SparseKernelMemory m, ulong at, IReadOnlyList<Sym> syms)
    {
        var strtab = at + 0x800;
        var typetab = at + 0xc00;
        var strings = new StringBuilder("\0");
        for (var i = 0; i < syms.Count; i++)
        {
            var s = syms[i];
            var entry = at + (ulong)i * 24;
            m.U32(entry, s.Name.Length == 0 ? 0u : (uint)strings.Length);
            if (s.Name.Length > 0)
                strings.Append(s.Name).Append('\0');
            m.U8(entry + 4, 0x12);
            m.U16(entry + 6, s.Shndx);
            m.U64(entry + 8, s.Value);
            m.U8(typetab + (ulong)i, (byte)s.Type);
        }
        m.Bytes(strtab, Encoding.ASCII.GetBytes(strings.ToString()));
        return (at, strtab, typetab, (uint)syms.Count);
    }

    private static Sym[] FatSymbols(ulong text) =>
    [
        new("", 0, 0, '?'),
        new("fat_fill_super", text, 1, 't'),
        new("fat_attach", text + 0x100, 1, 'T'),
        new("printk", 0, 0, 'U'),           // undefined: an import
        new("$x", text + 0x180, 1, 't'),    // a mapping symbol
        new("__crc_fat", 0x1234, 0xfff1, 'A'),
        new("fat_cache", text + 0x1010, 3, 'd'),
    ];

    /// <summary>The 6.1 amd64 kernel's layouts: module, module_layout, mod_kallsyms, mod_arch_specific.</summary>
    private sealed class Kernel61
    {
        public SparseKernelMemory Raw { get; } = KernelModulesSyntheticTests.Raw();

        public ViewMemory Memory { get; }

        public Kernel61() => Memory = FixtureTypes.Placed(Raw, FixtureTypes.Amd64);

        private ulong Off<T>(string member) where T : struct, IKernelView<T> => T.OffsetOf(Memory, member);

        /// <summary>Links the modules at <paramref name="modules"/> on the list in order.</summary>
        public void Link(params ulong[] modules)
        {
            var nodes = modules.Select(m => m + Off<module>("list")).Prepend(Head).ToArray();
            for (var i = 0; i < nodes.Length; i++)
            {
                Raw.U64(nodes[i], nodes[(i + 1) % nodes.Length]);
                Raw.U64(nodes[i] + 8, nodes[(i + nodes.Length - 1) % nodes.Length]);
            }
        }

        public void Module(ulong at, string name, ulong text, uint size, uint textSize, uint roSize, IReadOnlyList<Sym> syms, ulong tables, uint orcs = 0)
        {
            Raw.U32(at + Off<module>("state"), 0);
            Raw.Text(at + Off<module>("name"), name);
            var core = at + Off<module___pre_6_4>("core_layout");
            Raw.U64(core + Off<module_layout>("base"), text);
            Raw.U32(core + Off<module_layout>("size"), size);
            Raw.U32(core + Off<module_layout>("text_size"), textSize);
            Raw.U32(core + Off<module_layout>("ro_size"), roSize);
            var kallsyms = at + Off<module>("core_kallsyms");
            Raw.U64(at + Off<module>("kallsyms"), kallsyms);
            var (symtab, strtab, typetab, count) = Elf64Symbols(Raw, tables, syms);
            Raw.U64(kallsyms + Off<mod_kallsyms>("symtab"), symtab);
            Raw.U32(kallsyms + Off<mod_kallsyms>("num_symtab"), count);
            Raw.U64(kallsyms + Off<mod_kallsyms>("strtab"), strtab);
            Raw.U64(kallsyms + Off<mod_kallsyms>("typetab"), typetab);
            var arch = at + Off<X86_64.module___x86_64>("arch");
            Raw.U32(arch + Off<X86_64.mod_arch_specific>("num_orcs"), orcs);
            Raw.U64(arch + Off<X86_64.mod_arch_specific>("orc_unwind_ip"), orcs == 0 ? 0 : text + 0x8000);
            Raw.U64(arch + Off<X86_64.mod_arch_specific>("orc_unwind"), orcs == 0 ? 0 : text + 0x9000);
        }

        public KernelModules Modules() => new(Memory, n => n == "modules" ? Head : null, KernelMachine.X86_64);
    }

    [Fact]
    public void The_6_1_list_gives_each_module_s_memory_and_own_symbols()
    {
        var k = new Kernel61();
        const ulong fat = Structs, vfat = Structs + 0x1000;
        k.Module(fat, "fat", Code, 0x3000, 0x1000, 0x1800, FatSymbols(Code), Tables, orcs: 12);
        k.Module(vfat, "vfat", Code + 0x10000, 0x2000, 0x800, 0x1000, [new("", 0, 0, '?'), new("vfat_lookup", Code + 0x10040, 1, 't')], Tables + 0x1000);
        k.Link(vfat, fat);
        var modules = k.Modules();
        var list = modules.List();
        Assert.Equal(["vfat", "fat"], list.Select(m => m.Name));
        var f = list[1];
        Assert.Equal((fat, "Live", Code, 0x3000UL), (f.Address, f.State, f.Base, f.Size));
        Assert.Equal([new ModuleMemory("text", Code, 0x1000), new ModuleMemory("rodata", Code + 0x1000, 0x800), new ModuleMemory("data", Code + 0x1800, 0x1800)], f.Memory);
        // Undefined, absolute, unnamed and mapping symbols are left out, as kallsyms leaves them out.
        Assert.Equal([("fat_fill_super", Code, 't'), ("fat_attach", Code + 0x100, 'T'), ("fat_cache", Code + 0x1010, 'd')],
            f.Symbols.Select(s => (s.Name, s.Address, s.Type)));
        Assert.Same(f, modules.Find(Code + 0x2fff));
        Assert.Null(modules.Find(Code + 0x3000));
        var orc = Assert.Single(modules.OrcTables);
        Assert.Equal((f, Code + 0x8000, Code + 0x9000, 12u), (orc.Module, orc.IpTable, orc.Entries, orc.Count));
        var tables = modules.SymbolTables();
        Assert.Equal(["vfat", "fat"], tables.Select(t => t.Name));
        Assert.True(tables[1].Regions[0].IsText);
    }

    [Theory]
    [InlineData("loop", "modules list: loops back to")]
    [InlineData("null", "modules list: NULL link after 2 modules")]
    [InlineData("symbols", "module fat: kallsyms claims 262145 symbols (more than 262144)")]
    [InlineData("layout", "module fat: layout text_size 8192, ro_size 6144 and size 12288 do not nest")]
    [InlineData("size", "module fat: its layout at 0xffffffffc0000000 claims 4294967295 bytes")]
    [InlineData("nolist", "the namelist has no symbol \"modules\"")]
    public void A_damaged_list_or_table_is_refused(string damage, string message)
    {
        var k = new Kernel61();
        const ulong fat = Structs, vfat = Structs + 0x1000;
        k.Module(fat, "fat", Code, 0x3000, 0x1000, 0x1800, FatSymbols(Code), Tables);
        k.Module(vfat, "vfat", Code + 0x10000, 0x2000, 0x800, 0x1000, [], Tables + 0x1000);
        k.Link(fat, vfat);
        var list = KernelTypes.OffsetOf<module>(k.Memory, "list");
        var core = KernelTypes.OffsetOf<module___pre_6_4>(k.Memory, "core_layout");
        switch (damage)
        {
            case "loop":
                k.Raw.U64(vfat + list, fat + list);
                break;
            case "null":
                k.Raw.U64(vfat + list, 0);
                break;
            case "symbols":
                k.Raw.U32(fat + KernelTypes.OffsetOf<module>(k.Memory, "core_kallsyms") + KernelTypes.OffsetOf<mod_kallsyms>(k.Memory, "num_symtab"), KernelModules.MaxSymbols + 1);
                break;
            case "layout":
                k.Raw.U32(fat + core + KernelTypes.OffsetOf<module_layout>(k.Memory, "text_size"), 0x2000);
                break;
            case "size":
                k.Raw.U32(fat + core + KernelTypes.OffsetOf<module_layout>(k.Memory, "size"), uint.MaxValue);
                break;
        }
        var modules = damage == "nolist" ? new KernelModules(k.Memory, _ => null, KernelMachine.X86_64) : k.Modules();
        var e = Assert.Throws<KvmException>(() => modules.List());
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    /// <summary>A 6.4+ kernel's struct module: mem[] instead of core_layout, as BTF describes it.</summary>
    private static BtfTypes Types64()
    {
        var b = new BtfBuilder();
        var u32 = b.Int("unsigned int", 4);                                                     // 1
        var ch = b.Int("char", 1, encoding: 2);                                                 // 2
        var u64 = b.Int("long unsigned int", 8);                                                // 3
        b.Struct("list_head", 16, ("next", 5, 0, 0), ("prev", 5, 64, 0));                        // 4
        b.Ptr(4);                                                                               // 5
        var state = b.Enum("module_state", 4, false, ("MODULE_STATE_LIVE", 0), ("MODULE_STATE_COMING", 1));
        var name = b.Array(ch, u32, 56);
        var ptrU64 = b.Ptr(u64);
        var ptrChar = b.Ptr(ch);
        var kallsyms = b.Struct("mod_kallsyms", 32, ("symtab", ptrU64, 0, 0), ("num_symtab", u32, 64, 0), ("strtab", ptrChar, 128, 0), ("typetab", ptrChar, 192, 0));
        var memory = b.Struct("module_memory", 16, ("base", ptrU64, 0, 0), ("size", u32, 64, 0));
        var mem = b.Array(memory, u32, 7);
        var ptrKallsyms = b.Ptr(kallsyms);
        b.Struct("module", 0x100, ("state", state, 0, 0), ("list", 4, 64, 0), ("name", name, 192, 0), ("kallsyms", ptrKallsyms, 640, 0),
            ("core_kallsyms", kallsyms, 704, 0), ("mem", mem, 960, 0));
        return BtfTypes.Parse(b.Build(), sourceName: "test BTF", pointerSize: 8);
    }

    [Fact]
    public void The_6_4_layout_reads_each_part_from_mem()
    {
        var raw = Raw();
        var memory = FixtureTypes.Placed(raw, Types64());
        const ulong m = Structs;
        raw.U64(Head, m + 8);
        raw.U64(m + 8, Head);
        raw.Text(m + 24, "fat");
        raw.U64(m + 80, m + 88);
        var (symtab, strtab, typetab, count) = Elf64Symbols(raw, Tables, FatSymbols(Code));
        raw.U64(m + 88, symtab);
        raw.U32(m + 96, count);
        raw.U64(m + 104, strtab);
        raw.U64(m + 112, typetab);
        void Part(int index, ulong @base, uint size)
        {
            raw.U64(m + 120 + (ulong)index * 16, @base);
            raw.U32(m + 128 + (ulong)index * 16, size);
        }
        Part((int)mod_mem_type.MOD_TEXT, Code, 0x1000);
        Part((int)mod_mem_type.MOD_DATA, Code + 0x1000, 0x2000);
        Part((int)mod_mem_type.MOD_RODATA, Code + 0x4000, 0x800);
        Part((int)mod_mem_type.MOD_INIT_TEXT, Code + 0x8000, 0x400);
        var f = Assert.Single(new KernelModules(memory, n => n == "modules" ? Head : null, KernelMachine.X86_64).List());
        Assert.Equal(("fat", Code, 0x3800UL), (f.Name, f.Base, f.Size));
        Assert.Equal(["text", "data", "rodata", "init text"], f.Memory.Select(p => p.Kind));
        Assert.Equal(3, f.Symbols.Count);
    }

    [Fact]
    public void A_32_bit_kernel_s_modules_have_elf32_symbols()
    {
        const ulong head = 0xc1ce38c4, mods = 0xd87f6000, tables = 0xd8800000, code = 0xd87f3000;
        var raw = new SparseKernelMemory(DataModel.ILP32).Map(head, 8).Map(mods, 0x1000).Map(tables, 0x1000);
        var memory = FixtureTypes.Placed(raw, FixtureTypes.I386);
        ulong Off<T>(string member) where T : struct, IKernelView<T> => T.OffsetOf(memory, member);
        var list = mods + Off<module>("list");
        raw.U32(head, (uint)list);
        raw.U32(head + 4, (uint)list);
        raw.U32(list, (uint)head);
        raw.U32(list + 4, (uint)head);
        raw.Text(mods + Off<module>("name"), "qemu_fw_cfg");
        var core = mods + Off<module___pre_6_4>("core_layout");
        raw.U32(core + Off<module_layout>("base"), (uint)code);
        raw.U32(core + Off<module_layout>("size"), 0x5000);
        raw.U32(core + Off<module_layout>("text_size"), 0x1000);
        raw.U32(core + Off<module_layout>("ro_size"), 0x2000);
        var kallsyms = mods + Off<module>("core_kallsyms");
        raw.U32(mods + Off<module>("kallsyms"), (uint)kallsyms);
        raw.U32(kallsyms + Off<mod_kallsyms>("symtab"), (uint)tables);
        raw.U32(kallsyms + Off<mod_kallsyms>("num_symtab"), 2);
        raw.U32(kallsyms + Off<mod_kallsyms>("strtab"), (uint)tables + 0x100);
        // Elf32_Sym: st_name, st_value, st_size, st_info, st_other, st_shndx.
        raw.U32(tables + 16, 1);
        raw.U32(tables + 20, (uint)code + 0x40);
        raw.U8(tables + 28, 0x02);
        raw.U16(tables + 30, 2);
        raw.Bytes(tables + 0x100, "\0fw_cfg_probe\0"u8);
        var m = Assert.Single(new KernelModules(memory, n => n == "modules" ? head : null, KernelMachine.X86).List());
        Assert.Equal(("qemu_fw_cfg", code, 0x5000UL), (m.Name, m.Base, m.Size));
        // Without a type table the letter comes from st_info: a local function.
        Assert.Equal([("fw_cfg_probe", code + 0x40, 't')], m.Symbols.Select(s => (s.Name, s.Address, s.Type)));
    }
}
