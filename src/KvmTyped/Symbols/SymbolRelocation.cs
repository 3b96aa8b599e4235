namespace KvmTyped.Symbols;

/// <summary>How a namelist's addresses become the running kernel's: KASLR moves the kernel image by one slide. The one
/// place this rule is written; the architecture layer finds the slide and where the image starts.</summary>
/// <param name="Slide">The KASLR offset: running address − namelist address of every kernel-image symbol.</param>
/// <param name="ImageBase">Where the kernel image's addresses begin (x86-64 __START_KERNEL_map, i386 PAGE_OFFSET):
/// symbols below it (x86-64 per-CPU symbols, linked from 0) do not move.</param>
/// <param name="Model">The kernel's data model: an ILP32 kernel's addresses wrap at 2^32.</param>
internal readonly record struct SymbolRelocation(ulong Slide, ulong ImageBase, DataModel Model)
{
    /// <summary>No slide: namelist addresses are running addresses (no KASLR, or symbols read from the running kernel).</summary>
    public static SymbolRelocation None(DataModel model) => new(0, 0, model);

    private ulong Wrap(ulong address) => Model == DataModel.ILP32 ? address & uint.MaxValue : address;

    /// <summary>The running address of a namelist address in the kernel image.</summary>
    public ulong ToRunning(ulong linkAddress) => Slide == 0 || linkAddress < ImageBase ? linkAddress : Wrap(unchecked(linkAddress + Slide));

    /// <summary>The running address of a symbol: absolute symbols (type A) and symbols below the image stay.</summary>
    public ulong ToRunning(KernelSymbol symbol) => symbol.Type is 'A' or 'a' ? symbol.Address : ToRunning(symbol.Address);

    /// <summary>The namelist address of a running address: addresses in the moved image lose the slide.</summary>
    public ulong ToLink(ulong runningAddress) =>
        Slide != 0 && runningAddress >= ImageBase && runningAddress - ImageBase >= Slide ? runningAddress - Slide : runningAddress;
}

/// <summary>A namelist as the running kernel sees it: symbols by name with their running addresses, and running
/// addresses by the nearest symbol.</summary>
internal sealed class KernelSymbols(ISymbolTable table, SymbolRelocation relocation)
{
    /// <summary>The namelist, with the addresses it records.</summary>
    public ISymbolTable Table { get; } = table;

    /// <summary>The slide applied to the namelist's addresses.</summary>
    public SymbolRelocation Relocation { get; } = relocation;

    /// <summary>A symbol with its running address.</summary>
    public bool TryLookup(string name, out KernelSymbol symbol)
    {
        if (Table.TryLookup(name, out var s))
        {
            symbol = s with { Address = Relocation.ToRunning(s) };
            return true;
        }
        symbol = default;
        return false;
    }

    /// <summary>The symbol at or below a running address (its running address given), and the offset from it.</summary>
    public bool TryFindNearest(ulong address, out KernelSymbol symbol, out ulong offset)
    {
        if (Table.TryFindNearest(Relocation.ToLink(address), out var s))
        {
            symbol = s with { Address = Relocation.ToRunning(s) };
            offset = unchecked(address - symbol.Address);
            return true;
        }
        symbol = default;
        offset = 0;
        return false;
    }

    /// <summary>The most absolute symbols passed over in one <see cref="TryFindNearestPlace"/>.</summary>
    private const int MaxAbsoluteSkips = 64;

    /// <summary>The symbol at or below a running address that names a place in the image, not a constant (absolute
    /// symbols, type A, which the kernel's kallsyms leaves out and KASLR does not move), and the offset from it.</summary>
    public bool TryFindNearestPlace(ulong address, out KernelSymbol symbol, out ulong offset)
    {
        var link = Relocation.ToLink(address);
        for (var i = 0; i < MaxAbsoluteSkips; i++)
        {
            if (!Table.TryFindNearest(link, out var s))
                break;
            if (s.Type is not ('A' or 'a'))
            {
                symbol = s with { Address = Relocation.ToRunning(s) };
                offset = address - symbol.Address;
                return symbol.Address <= address;
            }
            if (s.Address == 0)
                break;
            link = s.Address - 1;
        }
        symbol = default;
        offset = 0;
        return false;
    }

    /// <summary>The first non-absolute symbol above a running address (its running address given): where the symbol
    /// at or below the address ends.</summary>
    public bool TryFindNext(ulong address, out KernelSymbol symbol)
    {
        if (Table.TryFindNext(Relocation.ToLink(address), out var s))
        {
            symbol = s with { Address = Relocation.ToRunning(s) };
            return true;
        }
        symbol = default;
        return false;
    }
}
