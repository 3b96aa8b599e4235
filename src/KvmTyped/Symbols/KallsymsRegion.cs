namespace KvmTyped.Symbols;

/// <summary>One kallsyms table copied out of kernel memory from its start, on demand and in growing chunks
/// (64 KiB, doubling up to 4 MiB after each read that succeeds), never past a cap. Where a whole chunk cannot be
/// read (the table ends just before memory the dump lacks), only the 4 KiB pieces needed now are read, and later
/// chunks halve after each failure, so a table that ends at the edge of the dumped memory still decodes in a
/// few dozen reads at most.</summary>
internal sealed class KallsymsRegion
{
    /// <summary>The first read's size.</summary>
    internal const int FirstChunk = 64 * 1024;

    /// <summary>The largest single read.</summary>
    internal const int MaxChunk = 4 * 1024 * 1024;

    /// <summary>The read size after a chunk failed: the smallest page size of the kernels read here.</summary>
    internal const int FallbackPiece = 4096;

    private readonly ReadVirtualMemory _read;
    private readonly string _source;
    private byte[] _buffer = [];
    private int _length;
    private int _chunk = FirstChunk;
    private bool _grow = true;

    /// <summary>Describes the table; nothing is read until <see cref="TryEnsure"/>.</summary>
    /// <param name="read">Reads kernel memory.</param>
    /// <param name="table">The table's kernel name, for messages (e.g. "kallsyms_names").</param>
    /// <param name="start">The table's running address.</param>
    /// <param name="cap">The most bytes this table may hold (1 byte to 2 GiB).</param>
    /// <param name="addressLimit">The highest address of the kernel's address space (2^32 − 1 for ILP32).</param>
    /// <param name="source">The dump, for messages.</param>
    public KallsymsRegion(ReadVirtualMemory read, string table, ulong start, int cap, ulong addressLimit, string source)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(cap, 1);
        _read = read;
        _source = source;
        Table = table;
        Start = start;
        if (start > addressLimit)
            throw new KvmFormatException(source, null, $"{table} at 0x{start:x}: outside the {(addressLimit == uint.MaxValue ? "32" : "64")}-bit address space");
        Cap = addressLimit - start >= (ulong)cap - 1 ? cap : (int)(addressLimit - start + 1);
    }

    /// <summary>The table's kernel name.</summary>
    public string Table { get; }

    /// <summary>The table's running address.</summary>
    public ulong Start { get; }

    /// <summary>The most bytes the table may hold here: the cap, or less where the address space ends first.</summary>
    public int Cap { get; }

    /// <summary>How many calls to the reader were made.</summary>
    public int Reads { get; private set; }

    /// <summary>The bytes read so far, from the table's start.</summary>
    public ReadOnlySpan<byte> Bytes => _buffer.AsSpan(0, _length);

    /// <summary>How many bytes have been read so far.</summary>
    public int Length => _length;

    /// <summary>Makes the first <paramref name="end"/> bytes available in <see cref="Bytes"/>.</summary>
    /// <returns>False when <paramref name="end"/> lies past <see cref="Cap"/> (nothing more is read then).</returns>
    /// <exception cref="KvmReadException">Memory the table needs could not be read.</exception>
    public bool TryEnsure(long end)
    {
        if (end <= _length)
            return true;
        if (end > Cap)
            return false;
        var target = (int)Math.Min(Cap, Math.Max(end, (long)_length + _chunk));
        if (_buffer.Length < target)
            Array.Resize(ref _buffer, (int)Math.Min(Cap, Math.Max(target, 2L * _buffer.Length)));
        Reads++;
        var attempted = target - _length;
        if (_read(Start + (ulong)_length, _buffer.AsSpan(_length, attempted), out _))
        {
            _length = target;
            if (_grow)
                _chunk = Math.Min(_chunk * 2, MaxChunk);
            return true;
        }
        // Unreadable memory lies within the chunk: read only what is needed now, and from then on try chunks half
        // as large after each failure, never larger again, so the edge is found in a logarithmic number of reads.
        _grow = false;
        _chunk = Math.Max(FallbackPiece, attempted / 2);
        while (_length < end)
        {
            var address = Start + (ulong)_length;
            var piece = (int)Math.Min(target - _length, FallbackPiece - (long)(address % FallbackPiece));
            Reads++;
            if (!_read(address, _buffer.AsSpan(_length, piece), out var failure))
            {
                // The readable memory ends inside the piece (a reader that is not page-granular): the bytes needed
                // now must be there; then bisect for the rest of what is readable, so later requests cost no reads.
                var needed = (int)(end - _length);
                Reads++;
                if (needed >= piece || !_read(address, _buffer.AsSpan(_length, needed), out failure))
                    throw new KvmReadException(address, $"{_source}: cannot read {Table} at 0x{address:x} (byte {_length} of the table at 0x{Start:x}): {failure}");
                int readable = needed, unreadable = piece;
                while (unreadable - readable > 1)
                {
                    var mid = readable + ((unreadable - readable) / 2);
                    Reads++;
                    if (_read(address, _buffer.AsSpan(_length, mid), out _))
                        readable = mid;
                    else
                        unreadable = mid;
                }
                piece = readable;
            }
            _length += piece;
        }
        return true;
    }
}
