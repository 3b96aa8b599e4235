namespace KvmTyped.Symbols;

/// <summary>A range of addresses whose symbols name what lies in it: a part of the kernel image (text, rodata, data,
/// init, bss) or a part of a module (its text, its other core memory).</summary>
/// <param name="Name">What the range is ("text", "rodata", "core", …).</param>
/// <param name="Start">First address.</param>
/// <param name="End">One past the last.</param>
/// <param name="IsText">Whether it holds code.</param>
internal readonly record struct SymbolRegion(string Name, ulong Start, ulong End, bool IsText)
{
    /// <summary>Whether <paramref name="address"/> lies in the region.</summary>
    public bool Contains(ulong address) => address >= Start && address < End;
}

/// <summary>A module's own symbols (its in-memory kallsyms), with running addresses, and the memory they name.</summary>
internal sealed class ModuleSymbolTable
{
    private readonly SymbolIndex _index;

    /// <param name="name">The module's name.</param>
    /// <param name="regions">Its memory: text first, then its other core parts (and init parts while it loads).</param>
    /// <param name="symbols">Its symbols; those outside every region are left out.</param>
    public ModuleSymbolTable(string name, IReadOnlyList<SymbolRegion> regions, IEnumerable<KernelSymbol> symbols)
    {
        Name = name;
        Regions = regions;
        var inside = symbols.Where(s => regions.Any(r => r.Contains(s.Address))).ToList();
        Symbols = inside;
        _index = new SymbolIndex(inside, i => char.IsAsciiLetterUpper(inside[i].Type));
    }

    /// <summary>The module's name.</summary>
    public string Name { get; }

    /// <summary>The memory its symbols name.</summary>
    public IReadOnlyList<SymbolRegion> Regions { get; }

    /// <summary>Its symbols, in its table's order.</summary>
    public IReadOnlyList<KernelSymbol> Symbols { get; }

    /// <summary>A symbol by name.</summary>
    public bool TryLookup(string name, out KernelSymbol symbol) => _index.TryLookup(name, out symbol);

    /// <summary>The symbol at or below an address, and the next one above it.</summary>
    public bool TryFind(ulong address, out KernelSymbol symbol, out ulong next)
    {
        next = _index.TryFindNext(address, out var n) ? n.Address : 0;
        return _index.TryFindNearest(address, out symbol);
    }
}

/// <summary>Names addresses as the kernel's kallsyms does (<c>%pS</c>, and <c>%pB</c> for return addresses), from the
/// namelist and the modules' own symbols, and only inside the memory those symbols describe: the kernel image's
/// sections (from the namelist's section markers: <c>_stext</c>..<c>_etext</c>, <c>_sinittext</c>..<c>_einittext</c>,
/// <c>__start_rodata</c>..<c>__end_rodata</c>, <c>_sdata</c>..<c>_edata</c>, <c>__init_begin</c>..<c>__init_end</c>,
/// <c>__bss_start</c>..<c>__bss_stop</c>, <c>__brk_base</c>..<c>_end</c>) and each module's memory. Anything else is
/// reported as outside: no offset is ever taken from a symbol above the address or in another region, so none wraps.</summary>
internal sealed class Symbolizer
{
    private static readonly (string Name, string[] Start, string End, bool Text)[] Sections =
    [
        ("text", ["_stext", "_text"], "_etext", true),
        ("init text", ["_sinittext"], "_einittext", true),
        ("rodata", ["__start_rodata"], "__end_rodata", false),
        ("data", ["_sdata"], "_edata", false),
        ("init", ["__init_begin"], "__init_end", false),
        ("bss", ["__bss_start"], "__bss_stop", false),
        ("brk", ["__brk_base", "__bss_stop"], "_end", false),
    ];

    private readonly KernelSymbols _kernel;
    private readonly SymbolRegion[] _kernelRegions;
    private readonly (SymbolRegion Region, ModuleSymbolTable Module)[] _moduleRegions;

    /// <summary>Symbolization over the namelist <paramref name="kernel"/> and the <paramref name="modules"/>' tables.</summary>
    /// <param name="kernel">The namelist with its running addresses.</param>
    /// <param name="modules">The loaded modules' symbols.</param>
    /// <param name="modulesUnknown">Why the modules could not be read, when they could not: named for addresses
    /// outside the kernel image.</param>
    public Symbolizer(KernelSymbols kernel, IReadOnlyList<ModuleSymbolTable> modules, string? modulesUnknown = null)
    {
        _kernel = kernel ?? throw new ArgumentNullException(nameof(kernel));
        ArgumentNullException.ThrowIfNull(modules);
        Modules = modules;
        ModulesUnknown = modulesUnknown;
        var regions = new List<SymbolRegion>();
        foreach (var (name, starts, end, text) in Sections)
        {
            ulong? start = null;
            foreach (var s in starts)
            {
                if (kernel.TryLookup(s, out var sym))
                {
                    start = sym.Address;
                    break;
                }
            }
            if (start is { } a && kernel.TryLookup(end, out var e) && e.Address > a)
                regions.Add(new SymbolRegion(name, a, e.Address, text));
        }
        _kernelRegions = [.. regions];
        _moduleRegions = [.. modules.SelectMany(m => m.Regions.Select(r => (r, m))).OrderBy(x => x.r.Start)];
    }

    /// <summary>The kernel image's regions found in the namelist.</summary>
    public IReadOnlyList<SymbolRegion> KernelRegions => _kernelRegions;

    /// <summary>The modules whose symbols are known.</summary>
    public IReadOnlyList<ModuleSymbolTable> Modules { get; }

    /// <summary>Why the modules are not known, or null.</summary>
    public string? ModulesUnknown { get; }

    /// <summary>Names <paramref name="address"/>. A <paramref name="returnAddress"/> is looked up at address − 1 (the
    /// kernel's <c>%pB</c>): a call as the last instruction of a function returns to the next function's first byte,
    /// and still names its caller, with an offset equal to the caller's length.</summary>
    public SymbolizedAddress Symbolize(ulong address, bool returnAddress = false)
    {
        var at = returnAddress && address > 0 ? address - 1 : address;
        var found = Find(at);
        return found.Name is null ? found with { Address = address } : found with { Address = address, Offset = address - found.SymbolAddress };
    }

    /// <summary>Whether <paramref name="address"/> is kernel or module code (the unwinders' test of a return address).</summary>
    public bool IsText(ulong address)
    {
        foreach (var r in _kernelRegions)
        {
            if (r.IsText && r.Contains(address))
                return true;
        }
        return ModuleRegion(address) is { Region.IsText: true };
    }

    /// <summary>A symbol by name: the namelist's first, then each module's, in module list order.</summary>
    public bool TryLookup(string name, out KernelSymbol symbol, out string? module)
    {
        module = null;
        if (_kernel.TryLookup(name, out symbol))
            return true;
        foreach (var m in Modules)
        {
            if (m.TryLookup(name, out symbol))
            {
                module = m.Name;
                return true;
            }
        }
        return false;
    }

    private SymbolizedAddress Find(ulong address)
    {
        if (_kernelRegions.Length == 0)
            return Unbounded(address);
        ulong cap = 0;
        var inKernel = false;
        foreach (var r in _kernelRegions)
        {
            if (r.Contains(address))
            {
                cap = inKernel ? Math.Min(cap, r.End) : r.End;
                inKernel = true;
            }
        }
        if (inKernel)
        {
            if (!_kernel.TryFindNearestPlace(address, out var symbol, out var offset))
                return Missing(address, "in the kernel image, below its first symbol");
            var end = _kernel.TryFindNext(address, out var next) ? Math.Min(next.Address, cap) : cap;
            return new SymbolizedAddress(address, symbol.Name, offset, end - symbol.Address, null, null);
        }
        if (ModuleRegion(address) is { } hit)
        {
            var (region, module) = hit;
            if (!module.TryFind(address, out var symbol, out var next) || symbol.Address > address || !region.Contains(symbol.Address))
                return Missing(address, $"in module {module.Name}'s {region.Name}, below its first symbol there");
            var end = next > address && next < region.End ? next : region.End;
            return new SymbolizedAddress(address, symbol.Name, address - symbol.Address, end - symbol.Address, module.Name, null);
        }
        return Missing(address, ModulesUnknown is null
            ? "outside the kernel image and every module"
            : $"outside the kernel image; modules unknown: {ModulesUnknown}");
    }

    /// <summary>A namelist without section markers: the nearest symbol at or below, its length to the next symbol.</summary>
    private SymbolizedAddress Unbounded(ulong address)
    {
        if (!_kernel.TryFindNearestPlace(address, out var symbol, out var offset))
            return Missing(address, "below every symbol");
        var size = _kernel.TryFindNext(address, out var next) && next.Address > symbol.Address ? next.Address - symbol.Address : 0;
        return new SymbolizedAddress(address, symbol.Name, offset, size, null, null);
    }

    private (SymbolRegion Region, ModuleSymbolTable Module)? ModuleRegion(ulong address)
    {
        int lo = 0, hi = _moduleRegions.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_moduleRegions[mid].Region.Start <= address)
                lo = mid + 1;
            else
                hi = mid;
        }
        // Regions of different modules never overlap; within one module text and core may nest, so look back a little.
        for (var i = lo - 1; i >= 0 && i >= lo - 8; i--)
        {
            if (_moduleRegions[i].Region.Contains(address))
                return _moduleRegions[i];
        }
        return null;
    }

    private static SymbolizedAddress Missing(ulong address, string why) => new(address, null, 0, 0, null, why);
}
