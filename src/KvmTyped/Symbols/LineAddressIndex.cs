using System.Text;

namespace KvmTyped.Symbols;

/// <summary>A namelist text's symbols by address, for the address lookups a backtrace makes: each line's address and
/// where the line starts, in the order a <see cref="SymbolIndex"/> gives (ascending addresses; of several symbols at
/// one address, the one the kernel's kallsyms prints first). A symbol is read from its line when an answer needs it.</summary>
/// <remarks>A Debian System.map has about 94,000 lines: this takes 12 bytes a line, where decoding every line into a symbol
/// with its name (as <see cref="SymbolIndex"/> holds them) took half of <c>bt</c>'s time and 12 MiB.</remarks>
internal sealed class LineAddressIndex
{
    private readonly ulong[] _addresses;
    private readonly int[] _lineStarts;

    /// <param name="text">The namelist text, every line checked ("ADDRESS T NAME").</param>
    /// <param name="addresses">Each symbol line's address, in text order (taken as the sorted keys).</param>
    /// <param name="lineStarts">Where each of those lines starts in <paramref name="text"/>.</param>
    public LineAddressIndex(ReadOnlySpan<byte> text, ulong[] addresses, int[] lineStarts)
    {
        var count = addresses.Length;
        var order = new int[count];
        for (var i = 0; i < count; i++)
            order[i] = i;
        Array.Sort(addresses, order);
        // Within one address, the name the kernel's kallsyms prints first (scripts/kallsyms.c compare_symbols): strong
        // before weak, then names a linker script does not provide, then fewer leading underscores, then text order —
        // as SymbolIndex orders them, each line's place in that order packed into one key.
        long[]? keys = null;
        for (var i0 = 0; i0 < count;)
        {
            var j = i0 + 1;
            while (j < count && addresses[j] == addresses[i0])
                j++;
            if (j - i0 > 1)
            {
                keys ??= new long[count];
                for (var k = i0; k < j; k++)
                    keys[k] = AliasKey(text, lineStarts[order[k]], order[k]);
                Array.Sort(keys, order, i0, j - i0);
            }
            i0 = j;
        }
        _addresses = addresses;
        _lineStarts = new int[count];
        for (var i = 0; i < count; i++)
            _lineStarts[i] = lineStarts[order[i]];
    }

    /// <summary>The symbol at or below <paramref name="address"/> (the first of those at its address).</summary>
    public bool TryFindNearest(ReadOnlySpan<byte> text, ulong address, out KernelSymbol symbol)
    {
        var i = SymbolIndex.Nearest(_addresses, address);
        symbol = i < 0 ? default : Read(text, i);
        return i >= 0;
    }

    /// <summary>The first symbol above <paramref name="address"/> that is not absolute (type A or a), as
    /// <see cref="SymbolIndex.TryFindNext"/> answers.</summary>
    public bool TryFindNext(ReadOnlySpan<byte> text, ulong address, out KernelSymbol symbol)
    {
        for (var i = SymbolIndex.FirstAbove(_addresses, address); i < _addresses.Length; i++)
        {
            Fields(text, _lineStarts[i], out var type, out _);
            if (type is not ('A' or 'a'))
            {
                symbol = Read(text, i);
                return true;
            }
        }
        symbol = default;
        return false;
    }

    private KernelSymbol Read(ReadOnlySpan<byte> text, int i)
    {
        Fields(text, _lineStarts[i], out var type, out var name);
        return new KernelSymbol(Encoding.UTF8.GetString(name), _addresses[i], type);
    }

    /// <summary>The type letter and name of the checked line that starts at <paramref name="lineStart"/>.</summary>
    private static void Fields(ReadOnlySpan<byte> text, int lineStart, out char type, out ReadOnlySpan<byte> name)
    {
        var nameAt = LineNameTable.NameFieldAt(text, lineStart);
        type = (char)text[nameAt - 2];
        name = LineNameTable.NameAt(text, nameAt, out _);
    }

    /// <summary>The line's place among the symbols at its address, as one key: weak (1 bit), provided by a linker
    /// script (1 bit), leading underscores, text order.</summary>
    private static long AliasKey(ReadOnlySpan<byte> text, int lineStart, int ordinal)
    {
        Fields(text, lineStart, out var type, out var name);
        // Names decoded as SymbolIndex decodes and compares them (only the few lines that share an address get here).
        var decoded = Encoding.UTF8.GetString(name);
        var weak = type is 'w' or 'W';
        var linker = SymbolIndex.IsLinkerProvided(decoded);
        var underscores = SymbolIndex.LeadingUnderscores(decoded);
        return (weak ? 1L << 62 : 0) | (linker ? 1L << 61 : 0) | (long)underscores << 32 | (uint)ordinal;
    }
}
