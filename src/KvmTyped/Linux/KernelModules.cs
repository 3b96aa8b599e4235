using System.Globalization;
using System.Text;
using KvmTyped.Linux.Kernel;
using KvmTyped.Symbols;
using KvmTyped.Types;

namespace KvmTyped.Linux;

/// <summary>One part of a module's memory.</summary>
/// <param name="Kind">"text", "rodata", "data" (the core parts) or "init text", "init rodata", "init data" (freed once
/// the module is live), "ro_after_init" (6.4+).</param>
/// <param name="Base">Its first address.</param>
/// <param name="Size">Its size in bytes.</param>
public sealed record ModuleMemory(string Kind, ulong Base, ulong Size)
{
    /// <summary>Whether it holds code.</summary>
    public bool IsText => Kind is "text" or "init text";
}

/// <summary>A loaded module, as /proc/modules and <c>crash mod</c> show it, with its own symbols from its in-memory
/// kallsyms table (no .ko file needed).</summary>
/// <param name="Name">The module's name.</param>
/// <param name="Address">Its struct module.</param>
/// <param name="State">"Live", "Loading", "Unloading" (as /proc/modules says) or "Unformed".</param>
/// <param name="Base">Where its code starts (the core text).</param>
/// <param name="Size">Its core size, as /proc/modules gives it.</param>
/// <param name="Memory">Its parts, text first.</param>
/// <param name="Symbols">Its symbols, with running addresses and nm type letters.</param>
public sealed record KernelModule(string Name, ulong Address, string State, ulong Base, ulong Size, IReadOnlyList<ModuleMemory> Memory,
    IReadOnlyList<KernelSymbol> Symbols);

/// <summary>A module's ORC tables (x86-64): <c>mod-&gt;arch</c>.</summary>
/// <param name="Module">The module.</param>
/// <param name="IpTable">orc_unwind_ip: num_orcs ints, each a code address relative to itself.</param>
/// <param name="Entries">orc_unwind: num_orcs struct orc_entry.</param>
/// <param name="Count">num_orcs.</param>
internal sealed record ModuleOrcTables(KernelModule Module, ulong IpTable, ulong Entries, uint Count);

/// <summary>The kernel's loaded modules: the list whose head is the symbol <c>modules</c>, read through the views of
/// schemas/linux/module.h (core_layout/init_layout before 6.4, mem[] since), with each module's symbols read from its
/// in-memory kallsyms (<c>mod-&gt;kallsyms</c>, which points at <c>core_kallsyms</c> once the module is live).</summary>
/// <remarks>Read once, on first use, and kept. Every count from the image is bounded: a list longer than
/// <see cref="MaxModules"/> or looping, a symbol table larger than <see cref="MaxSymbols"/>, is refused.</remarks>
public sealed class KernelModules
{
    /// <summary>The most modules walked (a busy server loads a few hundred).</summary>
    public const int MaxModules = 1 << 13;

    /// <summary>The most symbols read for one module (the largest drivers have some tens of thousands).</summary>
    public const int MaxSymbols = 1 << 18;

    /// <summary>The most symbols read for all modules together.</summary>
    public const int MaxTotalSymbols = 1 << 20;

    /// <summary>The longest symbol name read (the kernel's KSYM_NAME_LEN).</summary>
    public const int MaxNameLength = 512;

    /// <summary>The most bytes of a module's string table read at once.</summary>
    public const int MaxStringTableBytes = 16 << 20;

    /// <summary>A module's memory parts are at most this large (the module area of x86-64 is 1 GiB).</summary>
    public const ulong MaxModuleBytes = 1UL << 30;

    private const ushort ShnUndef = 0;
    private const ushort ShnAbs = 0xfff1;

    private readonly IKernelMemory _memory;
    private readonly Func<string, ulong?> _symbol;
    private readonly KernelMachine _machine;
    private readonly Func<string, string> _missing;
    private readonly Lazy<(KernelModule[] Modules, ModuleOrcTables[] Orc)> _list;

    /// <summary>Modules of an opened image.</summary>
    public KernelModules(Kvm kvm)
        : this(kvm ?? throw new ArgumentNullException(nameof(kvm)), name => kvm.TryGetSymbol(name, out var a) ? a : null, kvm.Machine, kvm.MissingSymbol)
    {
    }

    /// <summary>Modules over any kernel memory that places relocated structs (tests, fuzzing); <paramref name="missing"/>
    /// says why a symbol is not there and what would supply it.</summary>
    internal KernelModules(IKernelMemory memory, Func<string, ulong?> symbol, KernelMachine machine, Func<string, string>? missing = null)
    {
        _memory = memory;
        _symbol = symbol;
        _machine = machine;
        _missing = missing ?? (name => $"the namelist has no symbol \"{name}\"");
        _list = new(Read, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Modules of <paramref name="kvm"/>.</summary>
    public static KernelModules For(Kvm kvm) => new(kvm);

    /// <summary>The loaded modules, in list order (the most recently loaded first).</summary>
    /// <exception cref="KvmException">The kernel's types lack struct module, the list is damaged, or memory cannot be read.</exception>
    public IReadOnlyList<KernelModule> List() => _list.Value.Modules;

    /// <summary>The module whose memory holds <paramref name="address"/>, or null.</summary>
    public KernelModule? Find(ulong address) =>
        List().FirstOrDefault(m => m.Memory.Any(p => address >= p.Base && address - p.Base < p.Size));

    /// <summary>The modules' ORC tables (x86-64 kernels with the ORC unwinder).</summary>
    internal IReadOnlyList<ModuleOrcTables> OrcTables => _list.Value.Orc;

    /// <summary>The modules' symbols for <see cref="Symbolizer"/>.</summary>
    internal IReadOnlyList<ModuleSymbolTable> SymbolTables() =>
        [.. List().Select(m => new ModuleSymbolTable(m.Name, Regions(m), m.Symbols))];

    /// <summary>A module's parts as symbol regions, text first, core before init.</summary>
    private static SymbolRegion[] Regions(KernelModule m) =>
        [.. m.Memory.Where(p => p.Size > 0).Select(p => new SymbolRegion(p.Kind, p.Base, p.Base + p.Size, p.IsText))];

    private (KernelModule[], ModuleOrcTables[]) Read()
    {
        var head = _symbol("modules") ?? throw new KvmException($"{_missing("modules")}: the module list cannot be found");
        var modules = new List<KernelModule>();
        var orc = new List<ModuleOrcTables>();
        var symbols = 0;
        var visited = new HashSet<ulong> { head };
        var link = list_head.At(_memory, head).next;
        while (link.Address != head)
        {
            if (link.IsNull)
                throw new KvmException($"modules list: NULL link after {modules.Count} modules");
            if (!visited.Add(link.Address))
                throw new KvmException($"modules list: loops back to 0x{link.Address:x} without reaching its head");
            if (visited.Count > MaxModules)
                throw new KvmException($"modules list: more than {MaxModules} modules");
            var node = link.Value;
            var module = node.ContainerOf<module>(m => m.list);
            var (read, tables) = ReadModule(module);
            symbols += read.Symbols.Count;
            if (symbols > MaxTotalSymbols)
                throw new KvmException($"modules list: more than {MaxTotalSymbols} symbols in {modules.Count + 1} modules");
            modules.Add(read);
            if (tables is not null)
                orc.Add(tables);
            link = node.next;
        }
        return ([.. modules], [.. orc]);
    }

    private (KernelModule, ModuleOrcTables?) ReadModule(module m)
    {
        var name = ReadName(m);
        var state = m.state switch
        {
            module_state.MODULE_STATE_LIVE => "Live",
            module_state.MODULE_STATE_COMING => "Loading",
            module_state.MODULE_STATE_GOING => "Unloading",
            module_state.MODULE_STATE_UNFORMED => "Unformed",
            var other => "state " + ((int)other).ToString(CultureInfo.InvariantCulture),
        };
        var (memory, @base, size) = ReadMemory(m, name);
        var symbols = m.kallsyms.IsNull ? [] : ReadSymbols(m.kallsyms.Value, name);
        var module = new KernelModule(name, m.Address, state, @base, size, memory, symbols);
        ModuleOrcTables? orc = null;
        if (_machine == KernelMachine.X86_64)
        {
            var arch = Kernel.X86_64.module___x86_64.At(_memory, m.Address);
            if (arch.Has_arch && arch.arch is var tables && tables.Has_num_orcs && tables.Has_orc_unwind_ip && tables.Has_orc_unwind
                && tables.num_orcs > 0 && tables.orc_unwind_ip != 0 && !tables.orc_unwind.IsNull)
            {
                orc = new ModuleOrcTables(module, tables.orc_unwind_ip, tables.orc_unwind.Address, tables.num_orcs);
            }
        }
        return (module, orc);
    }

    /// <summary>module.name: MODULE_NAME_LEN (64 − sizeof(unsigned long)) bytes.</summary>
    private string ReadName(module m)
    {
        var length = 64 - _memory.DataModel.PointerSize();
        return KernelReader.ReadCString(_memory, m.name.Address, length);
    }

    private (List<ModuleMemory> Parts, ulong Base, ulong Size) ReadMemory(module m, string name)
    {
        var parts = new List<ModuleMemory>();
        var layouts = module___pre_6_4.At(_memory, m.Address);
        if (layouts.Has_core_layout)
        {
            var core = layouts.core_layout;
            AddLayout(parts, core, "", name);
            var init = layouts.init_layout;
            if (init.@base != 0)
                AddLayout(parts, init, "init ", name);
            return (parts, core.@base, core.size);
        }
        var since64 = module___6_4.At(_memory, m.Address);
        if (!since64.Has_mem)
            throw new KvmException($"module {name}: struct module has neither core_layout nor mem[] in this kernel's types");
        string[] kinds = ["text", "data", "rodata", "ro_after_init", "init text", "init data", "init rodata"];
        ulong coreSize = 0;
        for (var i = 0; i < kinds.Length; i++)
        {
            var part = since64.mem[i];
            var size = (ulong)part.size;
            if (part.@base == 0 || size == 0)
                continue;
            Check(part.@base, size, name, kinds[i]);
            parts.Add(new ModuleMemory(kinds[i], part.@base, size));
            if (i < (int)mod_mem_type.MOD_INIT_TEXT)
                coreSize += size;
        }
        var ordered = parts.OrderBy(p => p.Kind.StartsWith("init", StringComparison.Ordinal)).ThenBy(p => !p.IsText).ToList();
        var text = ordered.FirstOrDefault(p => p.Kind == "text");
        return (ordered, text?.Base ?? 0, coreSize);
    }

    /// <summary>A module_layout (before 6.4): text, then read-only data up to ro_size, then the rest up to size.</summary>
    private static void AddLayout(List<ModuleMemory> parts, module_layout layout, string prefix, string name)
    {
        ulong start = layout.@base, size = layout.size, text = layout.text_size, ro = layout.ro_size;
        if (start == 0 || size == 0)
            return;
        Check(start, size, name, prefix + "layout");
        if (text > size || ro > size || text > ro)
            throw new KvmException($"module {name}: {prefix}layout text_size {text}, ro_size {ro} and size {size} do not nest");
        if (text > 0)
            parts.Add(new ModuleMemory(prefix + "text", start, text));
        if (ro > text)
            parts.Add(new ModuleMemory(prefix + "rodata", start + text, ro - text));
        if (size > ro)
            parts.Add(new ModuleMemory(prefix + "data", start + ro, size - ro));
    }

    private static void Check(ulong start, ulong size, string name, string what)
    {
        if (size > MaxModuleBytes || start + size < start)
            throw new KvmException($"module {name}: its {what} at 0x{start:x} claims {size} bytes");
    }

    private List<KernelSymbol> ReadSymbols(mod_kallsyms kallsyms, string name)
    {
        var count = kallsyms.num_symtab;
        var symtab = kallsyms.symtab;
        var strtab = kallsyms.strtab;
        if (count == 0 || symtab == 0 || strtab == 0)
            return [];
        if (count > MaxSymbols)
            throw new KvmException($"module {name}: kallsyms claims {count} symbols (more than {MaxSymbols})");
        var typetab = kallsyms.Has_typetab ? kallsyms.typetab : 0;
        var lp64 = _memory.DataModel == DataModel.LP64;
        var entrySize = lp64 ? elf64_sym.SizeOf(_memory) : elf32_sym.SizeOf(_memory);
        // One read of the whole table (and of the type letters), then views served from it.
        var view = new ViewMemory(_memory);
        var table = new byte[checked((int)(count * entrySize))];
        KernelReader.Read(_memory, symtab, table);
        view.Add(symtab, table);
        byte[]? types = null;
        if (typetab != 0)
        {
            types = new byte[count];
            if (!_memory.TryReadVirtual(typetab, types, out _))
                types = null;
        }
        var raw = new List<(uint Name, ulong Value, byte Info)>((int)count);
        uint maxName = 0;
        for (uint i = 0; i < count; i++)
        {
            var at = symtab + i * entrySize;
            uint nameOffset;
            ulong value;
            ushort shndx;
            byte info;
            if (lp64)
            {
                var s = elf64_sym.At(view, at);
                (nameOffset, value, shndx, info) = (s.st_name, s.st_value, s.st_shndx, s.st_info);
            }
            else
            {
                var s = elf32_sym.At(view, at);
                (nameOffset, value, shndx, info) = (s.st_name, s.st_value, s.st_shndx, s.st_info);
            }
            if (shndx == ShnUndef || shndx == ShnAbs || nameOffset == 0)
            {
                raw.Add((0, 0, 0));
                continue;
            }
            raw.Add((nameOffset, value, info));
            maxName = Math.Max(maxName, nameOffset);
        }
        var strings = ReadStrings(strtab, maxName, count);
        var result = new List<KernelSymbol>();
        for (var i = 0; i < raw.Count; i++)
        {
            var (nameOffset, value, info) = raw[i];
            if (nameOffset == 0)
                continue;
            var symbolName = NameAt(strings, strtab, nameOffset);
            if (symbolName.Length == 0 || IsMappingSymbol(symbolName))
                continue;
            var type = types is not null && char.IsAsciiLetter((char)types[i]) ? (char)types[i] : TypeFromInfo(info);
            result.Add(new KernelSymbol(symbolName, value, type));
        }
        return result;
    }

    /// <summary>The string table up to the last name's end, read once when it is readable in one piece (null: each
    /// name is read on its own).</summary>
    private byte[]? ReadStrings(ulong strtab, uint maxName, uint count)
    {
        // No table of count names is longer than count names of the longest length.
        var length = Math.Min(Math.Min((long)maxName + MaxNameLength, (long)count * (MaxNameLength + 1)), MaxStringTableBytes);
        var bytes = new byte[length];
        return _memory.TryReadVirtual(strtab, bytes, out _) ? bytes : null;
    }

    private string NameAt(byte[]? strings, ulong strtab, uint offset)
    {
        if (strings is not null && offset < strings.Length)
        {
            var rest = strings.AsSpan((int)offset, Math.Min(strings.Length - (int)offset, MaxNameLength));
            var nul = rest.IndexOf((byte)0);
            return Encoding.UTF8.GetString(nul >= 0 ? rest[..nul] : rest);
        }
        return CStringReader.TryRead(_memory.TryReadVirtual, strtab + offset, MaxNameLength, out var bytes, out _) ? Encoding.UTF8.GetString(bytes) : "";
    }

    /// <summary>Symbols kallsyms leaves out: ARM-style mapping symbols and local labels.</summary>
    private static bool IsMappingSymbol(string name) =>
        name[0] == '$' || name.StartsWith(".L", StringComparison.Ordinal) || name.StartsWith("L0", StringComparison.Ordinal);

    /// <summary>An nm letter from st_info where the kernel keeps no type table (before 5.2).</summary>
    private static char TypeFromInfo(byte info)
    {
        var bind = info >> 4;
        var type = info & 0xf;
        var letter = type switch { 2 => 't', 1 => 'd', _ => '?' };
        return bind == 1 && letter != '?' ? char.ToUpperInvariant(letter) : letter;
    }
}
