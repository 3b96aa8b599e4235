using System.Globalization;
using KvmTyped.Symbols;

namespace KvmTyped.Tests.Translation;

/// <summary>TEST HELPER ONLY: a System.map as an <see cref="ISymbolTable"/>, read eagerly. The library's own namelist
/// readers live in src/KvmTyped/Symbols.</summary>
internal sealed class TestSystemMap : ISymbolTable
{
    private readonly Dictionary<string, KernelSymbol> _byName = new(StringComparer.Ordinal);
    private readonly KernelSymbol[] _byAddress;

    public TestSystemMap(string path)
    {
        Source = path;
        var all = new List<KernelSymbol>();
        var width = 0;
        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 3 || !ulong.TryParse(parts[0], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var address))
                continue;
            width = Math.Max(width, parts[0].Length);
            var symbol = new KernelSymbol(parts[2], address, parts[1][0]);
            all.Add(symbol);
            _byName.TryAdd(symbol.Name, symbol);
        }
        _byAddress = [.. all.OrderBy(s => s.Address)];
        DataModel = width > 8 ? KvmTyped.DataModel.LP64 : KvmTyped.DataModel.ILP32;
    }

    /// <summary>Drops symbols, to test what the layout does without them.</summary>
    public TestSystemMap Without(params string[] names)
    {
        foreach (var n in names)
            _byName.Remove(n);
        return this;
    }

    public string Source { get; }

    public string Kind => "System.map";

    public DataModel? DataModel { get; }

    public KernelMachine Machine => DataModel == KvmTyped.DataModel.LP64 ? KernelMachine.X86_64 : KernelMachine.X86;

    public int Count => _byAddress.Length;

    public bool TryLookup(string name, out KernelSymbol symbol) => _byName.TryGetValue(name, out symbol);

    public bool TryFindNearest(ulong address, out KernelSymbol symbol)
    {
        var i = Array.FindLastIndex(_byAddress, s => s.Address <= address);
        symbol = i >= 0 ? _byAddress[i] : default;
        return i >= 0;
    }

    public bool TryFindNext(ulong address, out KernelSymbol symbol)
    {
        var i = Array.FindIndex(_byAddress, s => s.Address > address && s.Type is not ('A' or 'a'));
        symbol = i >= 0 ? _byAddress[i] : default;
        return i >= 0;
    }

    public void Dispose()
    {
    }
}
