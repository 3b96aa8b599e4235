using System.Buffers.Binary;
using System.Numerics;

namespace KvmTyped.Formats.Kdump;

/// <summary>One of a kdump file's two page bitmaps (bit <c>pfn % 8</c> of byte <c>pfn / 8</c>), read lazily in
/// 4 KiB chunks and kept once read; optionally with a rank table for "set bits before pfn".</summary>
/// <remarks>The rank table holds one count per 4096 bits (8 bytes per 16 MiB of 4 KiB pages), built at open by
/// streaming the bitmap once; the chunks themselves are read again only when a lookup needs them.</remarks>
internal sealed class KdumpBitmap
{
    private const int ChunkBytes = 4096;
    private const int ChunkWords = ChunkBytes / 8;
    private const int ChunkShift = 15;          // bits per chunk = 2^15
    private const int RankShift = 12;           // bits per rank block = 2^12 (64 words)

    private readonly KdumpStorage _storage;
    private readonly long _offset;
    private readonly ulong _bits;
    private readonly ulong[]?[] _chunks;
    private readonly ulong[]? _rank;

    /// <summary>Creates a view of <paramref name="bits"/> bits at plain offset <paramref name="offset"/>.</summary>
    public KdumpBitmap(KdumpStorage storage, long offset, ulong bits, bool withRank, string name)
    {
        _storage = storage;
        _offset = offset;
        _bits = bits;
        Name = name;
        ulong chunks = (bits + (1UL << ChunkShift) - 1) >> ChunkShift;
        _chunks = new ulong[]?[checked((int)chunks)];
        if (withRank)
            _rank = BuildRank();
    }

    /// <summary>"RAM bitmap" or "dump bitmap", for messages.</summary>
    public string Name { get; }

    /// <summary>Number of bits this bitmap describes (max_mapnr).</summary>
    public ulong Bits => _bits;

    /// <summary>Set bits in the whole bitmap (only with a rank table).</summary>
    public ulong TotalSet { get; private set; }

    /// <summary>Whether bit <paramref name="pfn"/> is set; bits at or past <see cref="Bits"/> read as clear.</summary>
    public bool Test(ulong pfn)
    {
        if (pfn >= _bits)
            return false;
        var chunk = Chunk((int)(pfn >> ChunkShift));
        return (chunk[(int)(pfn >> 6) & (ChunkWords - 1)] & (1UL << (int)(pfn & 63))) != 0;
    }

    /// <summary>Set bits strictly before <paramref name="pfn"/> (needs the rank table).</summary>
    public ulong Rank(ulong pfn)
    {
        if (_rank is null)
            throw new InvalidOperationException("bitmap has no rank table");
        if (pfn >= _bits)
            return TotalSet;
        ulong count = _rank[pfn >> RankShift];
        var chunk = Chunk((int)(pfn >> ChunkShift));
        int firstWord = (int)((pfn >> 6) & (ChunkWords - 1)) & ~63;
        int word = (int)(pfn >> 6) & (ChunkWords - 1);
        for (int w = firstWord; w < word; w++)
            count += (ulong)BitOperations.PopCount(chunk[w]);
        int bit = (int)(pfn & 63);
        if (bit != 0)
            count += (ulong)BitOperations.PopCount(chunk[word] & ((1UL << bit) - 1));
        return count;
    }

    /// <summary>Calls <paramref name="onRun"/> for each maximal run [start, end) of set bits in [from, to).</summary>
    public void ForEachRun(ulong from, ulong to, Action<ulong, ulong> onRun)
    {
        to = Math.Min(to, _bits);
        ulong runStart = 0;
        bool inRun = false;
        ulong pfn = from;
        while (pfn < to)
        {
            var chunk = Chunk((int)(pfn >> ChunkShift));
            ulong word = chunk[(int)(pfn >> 6) & (ChunkWords - 1)] >> (int)(pfn & 63);
            int span = (int)Math.Min((ulong)(64 - (int)(pfn & 63)), to - pfn);
            if (span < 64)
                word &= (1UL << span) - 1;
            // Fast paths for all-clear and all-set words.
            if (!inRun && word == 0)
            {
                pfn += (ulong)span;
                continue;
            }
            ulong full = span == 64 ? ulong.MaxValue : (1UL << span) - 1;
            if (inRun && word == full)
            {
                pfn += (ulong)span;
                continue;
            }
            for (int i = 0; i < span; i++, pfn++)
            {
                bool set = ((word >> i) & 1) != 0;
                if (set && !inRun)
                {
                    runStart = pfn;
                    inRun = true;
                }
                else if (!set && inRun)
                {
                    onRun(runStart, pfn);
                    inRun = false;
                }
            }
        }
        if (inRun)
            onRun(runStart, to);
    }

    private ulong[] BuildRank()
    {
        var rank = new ulong[(_bits >> RankShift) + 1];
        var buffer = new byte[ChunkBytes * 16];
        ulong count = 0;
        ulong totalBytes = (_bits + 7) / 8;
        ulong done = 0;
        ulong blockCount = 0;
        while (done < totalBytes)
        {
            int n = (int)Math.Min((ulong)buffer.Length, totalBytes - done);
            _storage.ReadOrThrow(_offset + (long)done, buffer.AsSpan(0, n), Name);
            // Every rank block of 4096 bits is 512 bytes; buffer holds a whole number of blocks except at the end.
            for (int at = 0; at < n; at += 8)
            {
                ulong bitIndex = (done + (ulong)at) * 8;
                if ((bitIndex & ((1UL << RankShift) - 1)) == 0)
                    rank[blockCount++] = count;
                ulong w = ReadWord(buffer.AsSpan(0, n), at);
                ulong remaining = _bits - bitIndex;
                if (remaining < 64)
                    w &= (1UL << (int)remaining) - 1;
                count += (ulong)BitOperations.PopCount(w);
            }
            done += (ulong)n;
        }
        while (blockCount < (ulong)rank.Length)
            rank[blockCount++] = count;
        TotalSet = count;
        return rank;
    }

    private static ulong ReadWord(ReadOnlySpan<byte> buffer, int at)
    {
        if (buffer.Length - at >= 8)
            return BinaryPrimitives.ReadUInt64LittleEndian(buffer[at..]);
        ulong w = 0;
        for (int i = 0; at + i < buffer.Length; i++)
            w |= (ulong)buffer[at + i] << (8 * i);
        return w;
    }

    private ulong[] Chunk(int index)
    {
        var chunk = Volatile.Read(ref _chunks[index]);
        return chunk ?? LoadChunk(index);
    }

    private ulong[] LoadChunk(int index)
    {
        ulong byteStart = (ulong)index * ChunkBytes;
        ulong totalBytes = (_bits + 7) / 8;
        int n = (int)Math.Min(ChunkBytes, totalBytes - byteStart);
        Span<byte> bytes = stackalloc byte[ChunkBytes];
        bytes.Clear();
        _storage.ReadOrThrow(_offset + (long)byteStart, bytes[..n], Name);
        var words = new ulong[ChunkWords];
        for (int w = 0; w < ChunkWords; w++)
            words[w] = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(w * 8)..]);
        // Clear bits past the end so Test and Rank never see them.
        ulong lastBit = _bits - byteStart * 8;
        if (lastBit < (ulong)ChunkBytes * 8)
        {
            for (int w = 0; w < ChunkWords; w++)
            {
                ulong first = (ulong)w * 64;
                if (first >= lastBit)
                    words[w] = 0;
                else if (lastBit - first < 64)
                    words[w] &= (1UL << (int)(lastBit - first)) - 1;
            }
        }
        return Interlocked.CompareExchange(ref _chunks[index], words, null) ?? words;
    }
}
