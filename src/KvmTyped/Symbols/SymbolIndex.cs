namespace KvmTyped.Symbols;

/// <summary>Symbols indexed by name (hash) and by address (sorted), built once, then read-only.</summary>
internal sealed class SymbolIndex
{
    private readonly KernelSymbol[] _symbols;
    private readonly Dictionary<string, int> _byName;
    private readonly ulong[] _sortedAddresses;
    private readonly int[] _sortedIndex;

    /// <param name="symbols">Symbols in namelist order.</param>
    /// <param name="isGlobal">Optional: whether a symbol is global; a global name wins over a local one of the same name.</param>
    public SymbolIndex(List<KernelSymbol> symbols, Func<int, bool>? isGlobal = null)
    {
        _symbols = [.. symbols];
        _byName = new Dictionary<string, int>(_symbols.Length, StringComparer.Ordinal);
        for (var i = 0; i < _symbols.Length; i++)
        {
            if (!_byName.TryGetValue(_symbols[i].Name, out var prev))
                _byName[_symbols[i].Name] = i;
            else if (isGlobal is not null && !isGlobal(prev) && isGlobal(i))
                _byName[_symbols[i].Name] = i;
        }
        _sortedIndex = new int[_symbols.Length];
        _sortedAddresses = new ulong[_symbols.Length];
        for (var i = 0; i < _symbols.Length; i++)
        {
            _sortedIndex[i] = i;
            _sortedAddresses[i] = _symbols[i].Address;
        }
        // Stable by namelist order within one address: sort (address, index) pairs.
        Array.Sort(_sortedAddresses, _sortedIndex);
        var i0 = 0;
        while (i0 < _sortedAddresses.Length)
        {
            var j = i0 + 1;
            while (j < _sortedAddresses.Length && _sortedAddresses[j] == _sortedAddresses[i0])
                j++;
            if (j - i0 > 1)
                Array.Sort(_sortedIndex, i0, j - i0);
            i0 = j;
        }
    }

    public int Count => _symbols.Length;

    public bool TryLookup(string name, out KernelSymbol symbol)
    {
        if (_byName.TryGetValue(name, out var i))
        {
            symbol = _symbols[i];
            return true;
        }
        symbol = default;
        return false;
    }

    public bool TryFindNearest(ulong address, out KernelSymbol symbol)
    {
        // First index whose address is above the one asked for; the run before it holds the answer.
        int lo = 0, hi = _sortedAddresses.Length;
        while (lo < hi)
        {
            var mid = (int)(((uint)lo + (uint)hi) >> 1);
            if (_sortedAddresses[mid] <= address)
                lo = mid + 1;
            else
                hi = mid;
        }
        var i = lo - 1;
        if (i < 0)
        {
            symbol = default;
            return false;
        }
        while (i > 0 && _sortedAddresses[i - 1] == _sortedAddresses[i])
            i--;
        symbol = _symbols[_sortedIndex[i]];
        return true;
    }
}
