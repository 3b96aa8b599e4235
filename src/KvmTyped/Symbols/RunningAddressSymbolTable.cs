namespace KvmTyped.Symbols;

/// <summary>A namelist that records running addresses — /proc/kallsyms, which shows each symbol where the KASLR'd
/// kernel has it — presented at link addresses, as every other namelist is, so that the layout's relocation
/// (<see cref="SymbolRelocation"/>, the one place the slide is applied) gives the running addresses back unchanged.</summary>
/// <remarks>Image symbols lose the slide through <see cref="SymbolRelocation.ToLink"/>; absolute symbols and those below
/// the image (x86-64 per-CPU offsets) are left as they are, as <see cref="SymbolRelocation.ToRunning(KernelSymbol)"/>
/// leaves them, so a lookup through <see cref="KernelSymbols"/> returns exactly the address the file shows.</remarks>
internal sealed class RunningAddressSymbolTable : ISymbolTable
{
    private readonly ISymbolTable _inner;
    private readonly SymbolRelocation _relocation;

    /// <summary>Wraps <paramref name="inner"/> (owned: disposed with this) whose addresses are running ones.</summary>
    /// <param name="inner">The namelist at running addresses.</param>
    /// <param name="relocation">The kernel's slide, as the core gives it (e.g. VMCOREINFO KERNELOFFSET).</param>
    public RunningAddressSymbolTable(ISymbolTable inner, SymbolRelocation relocation)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
        _relocation = relocation;
    }

    /// <inheritdoc />
    public string Source => _inner.Source;

    /// <inheritdoc />
    public string Kind => _inner.Kind;

    /// <inheritdoc />
    public DataModel? DataModel => _inner.DataModel;

    /// <inheritdoc />
    public KernelMachine Machine => _inner.Machine;

    /// <inheritdoc />
    public int Count => _inner.Count;

    private KernelSymbol ToLink(KernelSymbol s) => s.Type is 'A' or 'a' ? s : s with { Address = _relocation.ToLink(s.Address) };

    /// <inheritdoc />
    public bool TryLookup(string name, out KernelSymbol symbol)
    {
        var found = _inner.TryLookup(name, out symbol);
        if (found)
            symbol = ToLink(symbol);
        return found;
    }

    /// <inheritdoc />
    public bool TryFindNearest(ulong address, out KernelSymbol symbol)
    {
        var found = _inner.TryFindNearest(_relocation.ToRunning(address), out symbol);
        if (found)
            symbol = ToLink(symbol);
        return found;
    }

    /// <inheritdoc />
    public bool TryFindNext(ulong address, out KernelSymbol symbol)
    {
        var found = _inner.TryFindNext(_relocation.ToRunning(address), out symbol);
        if (found)
            symbol = ToLink(symbol);
        return found;
    }

    /// <inheritdoc />
    public void Dispose() => _inner.Dispose();
}
