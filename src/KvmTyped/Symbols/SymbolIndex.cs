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
    /// <param name="kallsymsOrder">The namelist is the kernel's own kallsyms table (decoded from memory, or
    /// /proc/kallsyms), already in the order the kernel picks aliases from: of several symbols at one address the first
    /// in that order is the answer, as the kernel's lookup takes it. Otherwise (System.map, an ELF symtab) the order
    /// scripts/kallsyms.c gives them is applied.</param>
    public SymbolIndex(List<KernelSymbol> symbols, Func<int, bool>? isGlobal = null, bool kallsymsOrder = false)
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
        // Within one address, the name the kernel's kallsyms prints first (scripts/kallsyms.c compare_symbols): strong
        // before weak, then names a linker script does not provide (__start_*, __stop_*, __end_*, __*_start, __*_end),
        // then fewer leading underscores, then namelist order.
        Array.Sort(_sortedAddresses, _sortedIndex);
        var i0 = 0;
        while (i0 < _sortedAddresses.Length)
        {
            var j = i0 + 1;
            while (j < _sortedAddresses.Length && _sortedAddresses[j] == _sortedAddresses[i0])
                j++;
            if (j - i0 > 1)
                Array.Sort(_sortedIndex, i0, j - i0, kallsymsOrder ? Comparer<int>.Default : Comparer<int>.Create(CompareAliases));
            i0 = j;
        }
    }

    private int CompareAliases(int a, int b)
    {
        var (sa, sb) = (_symbols[a], _symbols[b]);
        var c = IsWeak(sa).CompareTo(IsWeak(sb));
        if (c == 0)
            c = IsLinkerProvided(sa.Name).CompareTo(IsLinkerProvided(sb.Name));
        if (c == 0)
            c = LeadingUnderscores(sa.Name).CompareTo(LeadingUnderscores(sb.Name));
        return c != 0 ? c : a.CompareTo(b);
    }

    private static bool IsWeak(KernelSymbol s) => s.Type is 'w' or 'W';

    internal static int LeadingUnderscores(string name)
    {
        var n = 0;
        while (n < name.Length && name[n] == '_')
            n++;
        return n;
    }

    internal static bool IsLinkerProvided(string name) =>
        name.Length >= 8 && name.StartsWith("__", StringComparison.Ordinal)
        && (name.AsSpan(2).StartsWith("start_") || name.AsSpan(2).StartsWith("stop_") || name.AsSpan(2).StartsWith("end_")
            || name.EndsWith("_start", StringComparison.Ordinal) || name.EndsWith("_end", StringComparison.Ordinal));

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

    /// <summary>The first symbol above <paramref name="address"/> that is not absolute (type A or a): absolute symbols
    /// name constants, not places in the image, so they end no symbol (the kernel's kallsyms leaves them out too).</summary>
    public bool TryFindNext(ulong address, out KernelSymbol symbol)
    {
        for (var i = SymbolIndex.FirstAbove(_sortedAddresses, address); i < _sortedAddresses.Length; i++)
        {
            var s = _symbols[_sortedIndex[i]];
            if (s.Type is not ('A' or 'a'))
            {
                symbol = s;
                return true;
            }
        }
        symbol = default;
        return false;
    }

    public bool TryFindNearest(ulong address, out KernelSymbol symbol)
    {
        var i = Nearest(_sortedAddresses, address);
        symbol = i < 0 ? default : _symbols[_sortedIndex[i]];
        return i >= 0;
    }

    /// <summary>Where the nearest symbol at or below <paramref name="address"/> is in ascending <paramref name="sorted"/>
    /// addresses: the first of those at its address (the one its order puts first), or -1 when none is.</summary>
    internal static int Nearest(ReadOnlySpan<ulong> sorted, ulong address)
    {
        var i = FirstAbove(sorted, address) - 1;
        while (i > 0 && sorted[i - 1] == sorted[i])
            i--;
        return i;
    }

    /// <summary>The index of the first address above <paramref name="address"/> in ascending <paramref name="sorted"/>
    /// addresses (its length when none is): the run before it holds the nearest symbol, the entries from it the next.</summary>
    internal static int FirstAbove(ReadOnlySpan<ulong> sorted, ulong address)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            var mid = (int)(((uint)lo + (uint)hi) >> 1);
            if (sorted[mid] <= address)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }
}
