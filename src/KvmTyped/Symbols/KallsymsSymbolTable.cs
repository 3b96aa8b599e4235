namespace KvmTyped.Symbols;

/// <summary>The kernel's own symbol table, decoded from a dump's memory by <see cref="KallsymsImage.Decode"/>.</summary>
/// <remarks>Unlike a System.map or vmlinux, every address here is a <b>running</b> address: KASLR is already
/// applied, because the kernel relocates its kallsyms base (or its address array) at boot. A Kvm opened with this
/// namelist must therefore use a KASLR slide of 0. Per-CPU symbols of x86-64 kernels with
/// CONFIG_KALLSYMS_ABSOLUTE_PERCPU keep their small zero-based offsets and carry type 'A', as /proc/kallsyms shows
/// them.</remarks>
internal sealed class KallsymsSymbolTable : ISymbolTable
{
    private readonly List<KernelSymbol> _symbols;
    private readonly SymbolIndex _index;

    /// <summary>Wraps decoded symbols (see <see cref="KallsymsImage.Decode"/>).</summary>
    /// <param name="source">The dump the symbols were read from.</param>
    /// <param name="model">The kernel's data model.</param>
    /// <param name="machine">The kernel's machine, or <see cref="KernelMachine.Unknown"/>.</param>
    /// <param name="mode">How the table stored its addresses.</param>
    /// <param name="symbols">The symbols in the kernel's order, running addresses; kept, not copied.</param>
    internal KallsymsSymbolTable(string source, DataModel model, KernelMachine machine, KallsymsAddressMode mode, List<KernelSymbol> symbols)
    {
        Source = source;
        DataModel = model;
        Machine = machine;
        Mode = mode;
        _symbols = symbols;
        _index = new SymbolIndex(symbols, i => char.IsAsciiLetterUpper(_symbols[i].Type), kallsymsOrder: true);
    }

    /// <summary>The value of <see cref="Kind"/>.</summary>
    public const string KindName = "kallsyms (dump)";

    /// <inheritdoc />
    public string Source { get; }

    /// <summary>"kallsyms (dump)".</summary>
    public string Kind => KindName;

    /// <inheritdoc />
    public DataModel? DataModel { get; }

    /// <inheritdoc />
    public KernelMachine Machine { get; }

    /// <summary>How the table stored its addresses.</summary>
    public KallsymsAddressMode Mode { get; }

    /// <inheritdoc />
    public int Count => _symbols.Count;

    /// <summary>Every symbol in the kernel's order (ascending address), running addresses.</summary>
    public IReadOnlyList<KernelSymbol> Symbols => _symbols;

    /// <summary>Looks a symbol up by exact name; a global (upper-case type) wins over locals of the same name.
    /// The address is a running address.</summary>
    public bool TryLookup(string name, out KernelSymbol symbol) => _index.TryLookup(name, out symbol);

    /// <summary>The symbol with the greatest running address not above <paramref name="address"/> (a running address).</summary>
    public bool TryFindNearest(ulong address, out KernelSymbol symbol) => _index.TryFindNearest(address, out symbol);

    /// <inheritdoc />
    public bool TryFindNext(ulong address, out KernelSymbol symbol) => _index.TryFindNext(address, out symbol);

    /// <summary>Nothing to release: the table holds no file.</summary>
    public void Dispose()
    {
    }
}
