using KvmTyped.Symbols;

namespace KvmTyped.Tests.Translation;

/// <summary>TEST HELPER ONLY: a namelist given in code.</summary>
internal sealed class TestSymbols(DataModel model, params (string Name, ulong Address)[] symbols) : ISymbolTable
{
    private readonly Dictionary<string, KernelSymbol> _byName =
        symbols.ToDictionary(s => s.Name, s => new KernelSymbol(s.Name, s.Address, 'D'), StringComparer.Ordinal);

    public string Source => "test.map";

    public string Kind => "System.map";

    public DataModel? DataModel => model;

    public KernelMachine Machine => model == KvmTyped.DataModel.LP64 ? KernelMachine.X86_64 : KernelMachine.X86;

    public int Count => _byName.Count;

    public bool TryLookup(string name, out KernelSymbol symbol) => _byName.TryGetValue(name, out symbol);

    public bool TryFindNearest(ulong address, out KernelSymbol symbol)
    {
        var best = _byName.Values.Where(s => s.Address <= address).OrderByDescending(s => s.Address).ToList();
        symbol = best.Count > 0 ? best[0] : default;
        return best.Count > 0;
    }

    public bool TryFindNext(ulong address, out KernelSymbol symbol)
    {
        var next = _byName.Values.Where(s => s.Address > address).OrderBy(s => s.Address).ToList();
        symbol = next.Count > 0 ? next[0] : default;
        return next.Count > 0;
    }

    public void Dispose()
    {
    }
}
