namespace KvmTyped.Symbols;

/// <summary>A kernel symbol: name, address (as the namelist gives it, before any KASLR slide) and type letter.</summary>
/// <param name="Name">Symbol name.</param>
/// <param name="Address">Address as recorded in the namelist.</param>
/// <param name="Type">nm-style type letter ('T', 'D', 'A', …), or '?' when not known.</param>
public readonly record struct KernelSymbol(string Name, ulong Address, char Type);

/// <summary>A namelist: the kernel's symbols, by name and by address.</summary>
internal interface ISymbolTable : IDisposable
{
    /// <summary>Where the symbols came from (a path, or "/proc/kallsyms").</summary>
    string Source { get; }

    /// <summary>The kind of namelist: "ELF", "System.map" or "kallsyms".</summary>
    string Kind { get; }

    /// <summary>The data model the namelist implies (ELF class and machine; address width for text maps),
    /// or null where it cannot tell.</summary>
    DataModel? DataModel { get; }

    /// <summary>The machine, where the namelist says (ELF e_machine).</summary>
    KernelMachine Machine { get; }

    /// <summary>How many symbols there are.</summary>
    int Count { get; }

    /// <summary>Looks a symbol up by exact name.</summary>
    bool TryLookup(string name, out KernelSymbol symbol);

    /// <summary>The symbol with the greatest address not above <paramref name="address"/>; of several at that address,
    /// the one the kernel's kallsyms would print (strong before weak, not linker-provided, fewest leading underscores,
    /// then the first in the namelist's order).</summary>
    bool TryFindNearest(ulong address, out KernelSymbol symbol);

    /// <summary>The first symbol whose address is above <paramref name="address"/>, absolute symbols (type A) left out:
    /// where the symbol at or below an address ends. False when there is none.</summary>
    bool TryFindNext(ulong address, out KernelSymbol symbol);
}
