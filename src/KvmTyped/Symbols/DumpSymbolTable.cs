using KvmTyped.Formats;

namespace KvmTyped.Symbols;

/// <summary>The namelist of a dump opened without one: the kernel's own kallsyms decoded from the dump's memory, plus
/// the symbols VMCOREINFO names (<c>SYMBOL(…)</c>) that kallsyms lacks — on kernels built without
/// CONFIG_KALLSYMS_ALL kallsyms holds text symbols only, and VMCOREINFO still names the page tables, utsname and the
/// log.</summary>
/// <remarks>Both sources give running addresses. This table records them as a namelist does, at the addresses the
/// kernel was linked for (the running address less the KASLR slide the dump states), so the open applies KASLR to it
/// exactly as to a System.map, in the one place it is applied (<see cref="SymbolRelocation"/>). Per-CPU symbols
/// below the kernel image and absolute symbols keep their values.</remarks>
internal sealed class DumpSymbolTable : ISymbolTable
{
    /// <summary>The value of <see cref="Kind"/>.</summary>
    public const string KindName = "kallsyms in the dump";

    private readonly List<KernelSymbol> _symbols;
    private readonly SymbolIndex _index;

    /// <summary>Joins the decoded kallsyms and VMCOREINFO's symbols, both taken back to link addresses.</summary>
    /// <param name="kallsyms">The kernel's kallsyms, decoded from the dump (running addresses).</param>
    /// <param name="info">The dump's VMCOREINFO.</param>
    /// <param name="relocation">The KASLR slide the dump states and where the kernel image begins.</param>
    public DumpSymbolTable(KallsymsSymbolTable kallsyms, VmcoreInfo info, SymbolRelocation relocation)
    {
        ArgumentNullException.ThrowIfNull(kallsyms);
        ArgumentNullException.ThrowIfNull(info);
        Source = kallsyms.Source;
        DataModel = kallsyms.DataModel;
        Machine = kallsyms.Machine;
        KallsymsCount = kallsyms.Count;
        _symbols = new List<KernelSymbol>(kallsyms.Count + 16);
        foreach (var s in kallsyms.Symbols)
            _symbols.Add(s.Type is 'A' or 'a' ? s : s with { Address = relocation.ToLink(s.Address) });
        foreach (var (key, _) in info.Entries)
        {
            if (!key.StartsWith("SYMBOL(", StringComparison.Ordinal) || !key.EndsWith(')'))
                continue;
            var name = key["SYMBOL(".Length..^1];
            if (name.Length == 0 || kallsyms.TryLookup(name, out _) || info.Symbol(name) is not { } running)
                continue;
            _symbols.Add(new KernelSymbol(name, relocation.ToLink(running), 'D'));
            FromVmcoreInfo++;
        }
        _index = new SymbolIndex(_symbols, i => char.IsAsciiLetterUpper(_symbols[i].Type), kallsymsOrder: true);
    }

    /// <summary>The dump the symbols were read from.</summary>
    public string Source { get; }

    /// <summary>Always <see cref="KindName"/>.</summary>
    public string Kind => KindName;

    /// <summary>The kernel's data model.</summary>
    public DataModel? DataModel { get; }

    /// <summary>The kernel's machine.</summary>
    public KernelMachine Machine { get; }

    /// <summary>How many symbols kallsyms gave.</summary>
    public int KallsymsCount { get; }

    /// <summary>How many symbols only VMCOREINFO gave.</summary>
    public int FromVmcoreInfo { get; }

    /// <summary>All symbols: kallsyms' and VMCOREINFO's.</summary>
    public int Count => _symbols.Count;

    /// <inheritdoc/>
    public bool TryLookup(string name, out KernelSymbol symbol) => _index.TryLookup(name, out symbol);

    /// <inheritdoc/>
    public bool TryFindNearest(ulong address, out KernelSymbol symbol) => _index.TryFindNearest(address, out symbol);

    /// <inheritdoc/>
    public bool TryFindNext(ulong address, out KernelSymbol symbol) => _index.TryFindNext(address, out symbol);

    /// <summary>Nothing to release: the symbols were copied out of the dump.</summary>
    public void Dispose()
    {
    }
}
