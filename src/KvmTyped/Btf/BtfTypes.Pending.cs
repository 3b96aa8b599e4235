using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace KvmTyped.Btf;

internal sealed partial class BtfTypes
{
    /// <summary>How many bytes of the type section, and of the string section, a blob read from memory reads at a time.</summary>
    internal const int PendingChunkBytes = 16 << 10;

    /// <summary>Reads a BTF blob of <paramref name="length"/> bytes at <paramref name="address"/> through
    /// <paramref name="read"/> as its types are used: the header and the first piece of each section now, the rest
    /// <see cref="PendingChunkBytes"/> at a time when a query needs it. A kernel's BTF is several MiB (on a compressed
    /// dump, over a thousand pages to inflate), while the structs a tool reads are defined among its first types:
    /// looking one up by name reads the types up to the first that has the name, and only the strings compared on the
    /// way. Whatever needs every type (<see cref="Count"/>, <see cref="LastId"/>, a name no type has) reads the rest,
    /// and the whole blob is then checked as <see cref="Parse(ReadOnlySpan{byte}, BtfTypes?, string?, int?)"/> checks it.
    /// Until then, a reference to an id past the end is refused when it is followed.</summary>
    /// <param name="read">Reads kernel memory.</param>
    /// <param name="address">Where the blob starts.</param>
    /// <param name="length">The blob's length in bytes.</param>
    /// <param name="source">What to call the blob in messages.</param>
    /// <param name="pointerSize">The kernel's pointer size, when known (else taken from the blob's <c>long</c>).</param>
    /// <param name="failure">Which of the first reads failed, when the result is null.</param>
    /// <param name="chunkBytes">How much of each section one read asks for: <see cref="PendingChunkBytes"/>, less to
    /// test the reading on (a positive multiple of 4).</param>
    /// <returns>The types, or null with <paramref name="failure"/> saying which of the first reads failed.</returns>
    /// <exception cref="KvmFormatException">The blob is damaged or hostile (now, or when a later piece is read).</exception>
    /// <exception cref="KvmReadException">A later piece cannot be read (thrown by the query that needed it).</exception>
    internal static BtfTypes? Read(ReadMemory read, ulong address, long length, string source, int? pointerSize, out string? failure,
        int chunkBytes = PendingChunkBytes)
    {
        ArgumentNullException.ThrowIfNull(read);
        if (chunkBytes <= 0 || chunkBytes % 4 != 0)
            throw new ArgumentOutOfRangeException(nameof(chunkBytes), chunkBytes, "a positive multiple of 4");
        Span<byte> head = stackalloc byte[MinHeaderLength];
        head = head[..(int)Math.Min(length, MinHeaderLength)];
        if (!read(address, head, out failure))
            return null;
        var layout = CheckHeader(head, length, null, source, 0, pointerSize);
        // Not zeroed: only what is read is ever looked at, and the untouched rest of a kernel's several MiB costs no page.
        var words = GC.AllocateUninitializedArray<uint>((int)(layout.TypeLen / 4));
        var strings = GC.AllocateUninitializedArray<byte>((int)layout.StrLen);
        var pending = new PendingBlob(read, address + (ulong)layout.TypeStart, address + (ulong)layout.StrStart, strings.Length, chunkBytes);
        // In the blob's order (types, then strings), so a read that fails names the first address a whole read would.
        if (!pending.TryReadWords(words, layout.BigEndian, rest: false, out failure)
            || strings.Length > 0 && !pending.TryReadStrings(strings, 0, 1, out failure)
            || strings.Length > 0 && !pending.TryReadStrings(strings, (strings.Length - 1) / chunkBytes, 1, out failure))
            return null;
        CheckStrings(strings, layout, null, source, 0);
        var types = new BtfTypes(source, null, layout.BigEndian, words, GC.AllocateUninitializedArray<int>(words.Length / 3 + 1), 0, strings,
            layout.TypeStart, pointerSize, pending);
        lock (pending)
            types.ParseRead();
        if (pointerSize is null)
            types.PointerSize = types.LongSize;
        return types;
    }

    /// <summary>What of a blob read from memory is read so far, and how to read the rest. Its lock guards the reads.
    /// Each read asks for as much as was read before it (at least a chunk), so a lookup that must go on to the end, as
    /// one for a name no type has does, costs a few reads, not one per chunk.</summary>
    private sealed class PendingBlob(ReadMemory read, ulong types, ulong strings, int stringLength, int chunkBytes)
    {
        private readonly bool[] _stringChunks = new bool[(stringLength + chunkBytes - 1) / chunkBytes];
        private int _stringChunksRead;

        /// <summary>How many bytes one read asks for.</summary>
        public int ChunkBytes => chunkBytes;

        /// <summary>Words of the type section read (a prefix).</summary>
        public int WordsRead;

        /// <summary>Where the first record not yet parsed starts.</summary>
        public int Parsed;

        /// <summary>Whether every record is parsed and the whole blob checked.</summary>
        public volatile bool Complete;

        /// <summary>Reads the next piece of the type section into <paramref name="words"/>, in host byte order: a chunk,
        /// or as much as is read already, or with <paramref name="rest"/> everything left.</summary>
        public bool TryReadWords(uint[] words, bool bigEndian, bool rest, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure)
        {
            int from = WordsRead, left = words.Length - from;
            int count = rest ? left : Math.Min(Math.Max(chunkBytes / 4, from), left);
            var piece = words.AsSpan(from, count);
            if (!read(types + 4UL * (ulong)from, MemoryMarshal.AsBytes(piece), out failure))
                return false;
            if (bigEndian == BitConverter.IsLittleEndian)
                BinaryPrimitives.ReverseEndianness(piece, piece);
            WordsRead = from + count;
            return true;
        }

        /// <summary>Whether string chunk <paramref name="chunk"/> is read (without taking the lock).</summary>
        public bool HasStrings(int chunk) => Volatile.Read(ref _stringChunks[chunk]);

        /// <summary>Reads string chunk <paramref name="chunk"/> into <paramref name="into"/>, with the unread chunks
        /// after it up to as many as are read already (<paramref name="most"/> at most).</summary>
        public bool TryReadStrings(byte[] into, int chunk, int most, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure)
        {
            failure = null;
            if (HasStrings(chunk))
                return true;
            int n = 1, limit = Math.Min(most, Math.Max(1, _stringChunksRead));
            while (n < limit && chunk + n < _stringChunks.Length && !_stringChunks[chunk + n])
                n++;
            int from = chunk * chunkBytes;
            int length = (int)Math.Min((long)n * chunkBytes, into.Length - from);
            if (!read(strings + (ulong)from, into.AsSpan(from, length), out failure))
                return false;
            for (int c = chunk; c < chunk + n; c++)
                Volatile.Write(ref _stringChunks[c], true);
            _stringChunksRead += n;
            return true;
        }

        /// <summary>Reads every string chunk not read yet, each run of them in one read.</summary>
        public bool TryReadAllStrings(byte[] into, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure)
        {
            failure = null;
            for (int c = 0; c < _stringChunks.Length; c++)
            {
                if (!HasStrings(c) && !TryReadStrings(into, c, int.MaxValue, out failure))
                    return false;
            }
            return true;
        }

        /// <summary>The address of type word <paramref name="word"/>.</summary>
        public ulong TypesAt(int word) => types + 4UL * (ulong)word;

        /// <summary>The address of string byte <paramref name="offset"/>.</summary>
        public ulong StringsAt(int offset) => strings + (ulong)offset;
    }

    /// <summary>Parses the records wholly read so far and checks them; once the last is parsed, checks the whole blob
    /// with its last id. Called under the pending blob's lock.</summary>
    private void ParseRead()
    {
        var p = _pending!;
        int count = _count, at = p.Parsed;
        while (at < p.WordsRead)
        {
            long recordOffset = _typeSectionFileOffset + 4L * at;
            int id = FirstId + count;
            if (at + 3 > _words.Length)
                throw new KvmFormatException(SourceName, recordOffset, $"BTF type id {id}: record truncated by the end of the type section");
            if (at + 3 > p.WordsRead)
                break;
            int length = RecordLength(_words[at + 1], id, _words.Length - at, SourceName, recordOffset);
            if (at + length > p.WordsRead)
                break;
            _start[count++] = at;
            at += length;
        }
        // References are checked against the last id once it is known; until then Get refuses one past the end.
        var longSize = Validate(_count, count, uint.MaxValue);
        _longSize ??= longSize;
        p.Parsed = at;
        Volatile.Write(ref _count, count);
        if (at == _words.Length)
        {
            Validate(0, count, (uint)(FirstId + count - 1));
            p.Complete = true;
        }
    }

    /// <summary>Reads and parses the next piece of the type section, or with <paramref name="rest"/> all of it. Called
    /// under the pending blob's lock.</summary>
    private void ReadMoreTypes(bool rest = false)
    {
        var p = _pending!;
        if (!p.TryReadWords(_words, IsBigEndian, rest, out var failure))
            throw new KvmReadException(p.TypesAt(p.WordsRead), $"{SourceName}: reading its types: {failure}");
        ParseRead();
    }

    /// <summary>Reads on until record <paramref name="local"/> is parsed or there are no more records.</summary>
    /// <returns>Whether the record exists.</returns>
    private bool TryReadRecord(int local)
    {
        if (_pending is not { } p)
            return false;
        lock (p)
        {
            while (local >= _count && !p.Complete)
                ReadMoreTypes();
            return local < _count;
        }
    }

    /// <summary>Reads every record not read yet (a blob parsed whole has none), the rest of the types in one read.</summary>
    private BtfTypes ReadAll()
    {
        if (_pending is { Complete: false } p)
        {
            lock (p)
            {
                while (!p.Complete)
                    ReadMoreTypes(rest: true);
            }
        }
        return this;
    }

    /// <summary>Reads every string not read yet: before a pass over all the names.</summary>
    private void ReadAllStrings()
    {
        if (_pending is not { } p)
            return;
        lock (p)
        {
            if (!p.TryReadAllStrings(_strings, out var failure))
                throw new KvmReadException(p.StringsAt(0), $"{SourceName}: reading its strings: {failure}");
        }
    }

    /// <summary>Reads records until one names <c>long</c> or there are no more.</summary>
    private void ReadUntilLong()
    {
        var p = _pending!;
        lock (p)
        {
            while (_longSize is null && !p.Complete)
                ReadMoreTypes();
        }
    }

    /// <summary>The string at <paramref name="local"/> of a blob read from memory, reading its chunks as needed.</summary>
    private ReadOnlySpan<byte> PendingString(int local)
    {
        var p = _pending!;
        int from = local, size = p.ChunkBytes;
        for (int chunk = local / size; ; chunk++)
        {
            if (!p.HasStrings(chunk))
            {
                lock (p)
                {
                    if (!p.TryReadStrings(_strings, chunk, int.MaxValue, out var failure))
                        throw new KvmReadException(p.StringsAt(chunk * size), $"{SourceName}: reading its strings: {failure}");
                }
            }
            // The section ends with a NUL (checked when it was read), so the search ends.
            int end = (int)Math.Min((chunk + 1L) * size, _strings.Length);
            int nul = _strings.AsSpan(from, end - from).IndexOf((byte)0);
            if (nul >= 0)
                return _strings.AsSpan(local, from - local + nul);
            from = end;
        }
    }

    /// <summary>The error for a type id that is not defined: a caller's mistake for a blob parsed whole, a reference past
    /// the end for one read as it is used (its ids are only known to exist once followed).</summary>
    private Exception OutOfRange(int id) => _pending is null || id <= 0
        ? new ArgumentOutOfRangeException(nameof(id), id, $"type id out of range 1..{LastId}")
        : new KvmFormatException(SourceName, null, $"BTF type id {id} is referenced, but the types end at id {LastId}");
}
