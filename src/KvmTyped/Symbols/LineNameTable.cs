using System.Buffers.Binary;

namespace KvmTyped.Symbols;

/// <summary>Where the names of a namelist text are, filled while its lines are checked: a 16-bit tag of each line's
/// name, and the offset of every 32nd line. A lookup searches the tags (a vectorized pass over two bytes a line, where
/// a search of the text reads forty), finds the lines whose tag matches from the nearest offset before them, compares
/// their names, and answers as a <see cref="SymbolIndex"/> would: the first global line with the name, else the first
/// line.</summary>
/// <remarks>Both arrays are written in line order, never at random (a hash table over 94,000 names misses the cache
/// at nearly every insertion), and are small: fresh memory costs a page fault a page, which is most of what filling
/// them costs. Tags that collide (by chance or on purpose) only mean more lines compared: a lookup walks each line at
/// most once, so even a text whose names all share one tag costs a lookup one pass over it.</remarks>
internal sealed class LineNameTable
{
    /// <summary>One line in this many has its offset kept.</summary>
    private const int Stride = 32;

    private ushort[] _tags;
    private int[] _lineStarts;
    private int _count;
    private LineNameTable? _next;

    /// <param name="textLength">The length of the text: sizes the arrays for its expected number of lines (a
    /// System.map line is 25 to 40 bytes); they grow if there are more.</param>
    public LineNameTable(int textLength)
    {
        var capacity = Math.Max(Stride, textLength / 24 / Stride * Stride);
        _tags = new ushort[capacity];
        _lineStarts = new int[capacity / Stride];
    }

    /// <summary>How many lines the table holds, with those of the tables appended to it.</summary>
    public int Count => _count + (_next?.Count ?? 0);

    /// <summary>Appends the table of the lines that follow this table's last line in the text (a part of the text
    /// checked apart); lookups then answer over both, this table's lines first.</summary>
    public void Append(LineNameTable next)
    {
        var last = this;
        while (last._next is not null)
            last = last._next;
        last._next = next;
    }

    /// <summary>A name field: from <paramref name="at"/> to the first tab, space or line end, without a carriage
    /// return before that end (as a namelist line's name is read); <paramref name="end"/> is where the field stops (the
    /// separator's offset, or the text's length).</summary>
    public static ReadOnlySpan<byte> NameAt(ReadOnlySpan<byte> text, int at, out int end)
    {
        var stop = text[at..].IndexOfAny((byte)'\t', (byte)' ', (byte)'\n');
        end = stop < 0 ? text.Length : at + stop;
        var name = text[at..end];
        return name.Length > 0 && name[^1] == (byte)'\r' ? name[..^1] : name;
    }

    /// <summary>A name's tag: its length and first and last eight bytes, mixed into the top bits of a product.</summary>
    private static ushort Tag(ReadOnlySpan<byte> name)
    {
        ulong head, tail;
        if (name.Length >= 8)
        {
            head = BinaryPrimitives.ReadUInt64LittleEndian(name);
            tail = BinaryPrimitives.ReadUInt64LittleEndian(name[^8..]);
        }
        else
        {
            head = 0;
            foreach (var b in name)
                head = head << 8 | b;
            tail = ~head;
        }
        var h = (head * 0x9E3779B97F4A7C15UL ^ tail * 0xC2B2AE3D27D4EB4FUL ^ (ulong)name.Length) * 0x165667B19E3779F9UL;
        return (ushort)(h >> 48);
    }

    /// <summary>Adds a line that starts at offset <paramref name="lineStart"/> of the text and whose name field is
    /// <paramref name="name"/> (as <see cref="NameAt"/> reads it). Every non-empty line is added, in text order.</summary>
    public void Add(int lineStart, ReadOnlySpan<byte> name)
    {
        if (_count == _tags.Length)
        {
            Array.Resize(ref _tags, _count * 2);
            Array.Resize(ref _lineStarts, _count * 2 / Stride);
        }
        if (_count % Stride == 0)
            _lineStarts[_count / Stride] = lineStart;
        _tags[_count++] = Tag(name);
    }

    /// <summary>The offset of the name field of the <paramref name="ordinal"/>th non-empty line (from 0), walking
    /// forward from the line a lookup reached last (<paramref name="reached"/>, <paramref name="reachedAt"/>) when it
    /// is in the same stride and not past it, else from the nearest line whose offset is kept: the lines a lookup
    /// matches come in order, so it walks each line at most once. Lines are "ADDRESS T NAME", as checked when added.</summary>
    private int NameOffset(ReadOnlySpan<byte> text, int ordinal, ref int reached, ref int reachedAt)
    {
        int from, at;
        if (reached >= 0 && reached <= ordinal && reached / Stride == ordinal / Stride)
            (from, at) = (reached, reachedAt);
        else
            (from, at) = (ordinal / Stride * Stride, _lineStarts[ordinal / Stride]);
        for (; from < ordinal; from++)
        {
            at += text[at..].IndexOf((byte)'\n') + 1;
            while (text[at] == (byte)'\n')
                at++;
        }
        (reached, reachedAt) = (ordinal, at);
        return NameFieldAt(text, at);
    }

    /// <summary>Where the name field of the checked line ("ADDRESS T NAME") that starts at <paramref name="lineStart"/>
    /// begins; its type letter is two bytes before.</summary>
    public static int NameFieldAt(ReadOnlySpan<byte> text, int lineStart) => lineStart + text[lineStart..].IndexOf((byte)' ') + 3;

    /// <summary>The offset of the name field of the line a name lookup answers with (the first global line with the
    /// name, else the first line), or -1 when no line has the name.</summary>
    public int Find(ReadOnlySpan<byte> text, ReadOnlySpan<byte> name)
    {
        var tag = Tag(name);
        var first = -1;
        for (var part = this; part is not null; part = part._next)
        {
            var tags = part._tags.AsSpan(0, part._count);
            var (reached, reachedAt) = (-1, 0);
            for (var i = tags.IndexOf(tag); i >= 0;)
            {
                var at = part.NameOffset(text, i, ref reached, ref reachedAt);
                if (NameAt(text, at, out _).SequenceEqual(name))
                {
                    if (IsGlobal(text, at))
                        return at;
                    if (first < 0)
                        first = at;
                }
                var next = tags[(i + 1)..].IndexOf(tag);
                i = next < 0 ? -1 : i + 1 + next;
            }
        }
        return first;
    }

    /// <summary>Whether the line whose name field starts at <paramref name="at"/> ("ADDRESS T NAME") is a global
    /// symbol's: its type letter is upper case.</summary>
    private static bool IsGlobal(ReadOnlySpan<byte> text, int at) => char.IsAsciiLetterUpper((char)text[at - 2]);
}
