using System.Buffers.Binary;
using KvmTyped.IO;

namespace KvmTyped.Formats.Kdump;

/// <summary>makedumpfile's flattened stream (makedumpfile -F, QEMU's kdump-* output), read in place.</summary>
/// <remarks>
/// Layout (makedumpfile.h, struct makedumpfile_header and makedumpfile_data_header): a 4096-byte header
/// starting "makedumpfile" (NUL-padded to 16 bytes), type = 1 and version = 1 as big-endian 64-bit integers;
/// then records, each a big-endian 64-bit plain-file offset and size followed by that many bytes. Offset −1
/// ends the stream. Records come in any order and a later record overrides an earlier one where they overlap.
/// At open the records are indexed once into a table of non-overlapping segments sorted by plain offset, so
/// reads are random access; the file is never rewritten.
/// </remarks>
internal sealed class FlattenedKdumpStorage : KdumpStorage
{
    /// <summary>Size of the flattened header.</summary>
    public const int HeaderSize = 4096;

    private const int RecordHeaderSize = 16;

    // Segments sorted by plain offset, never overlapping: plain [PlainStart[i], PlainStart[i] + Size[i]) lives at
    // file offset FileStart[i].
    private readonly long[] _plainStart;
    private readonly long[] _fileStart;
    private readonly long[] _size;
    private readonly long _length;

    private FlattenedKdumpStorage(RandomAccessFile handle, long[] plainStart, long[] fileStart, long[] size, long length)
        : base(handle)
    {
        _plainStart = plainStart;
        _fileStart = fileStart;
        _size = size;
        _length = length;
        long backed = 0;
        foreach (var n in size)
            backed += n;
        BackedLength = backed;
    }

    public override long Length => _length;

    public override bool IsFlattened => true;

    public override long BackedLength { get; }

    /// <summary>Most records indexed; a real dump writes far fewer, each carrying many pages.</summary>
    public const int MaxRecords = 1 << 26;

    /// <summary>Whether <paramref name="first"/> begins with the flattened signature.</summary>
    public static bool HasSignature(ReadOnlySpan<byte> first)
    {
        ReadOnlySpan<byte> sig = "makedumpfile"u8;
        return first.Length >= 16 && first[..sig.Length].SequenceEqual(sig) && first[sig.Length..16].IndexOfAnyExcept((byte)0) < 0;
    }

    /// <summary>Indexes the records of an open flattened file.</summary>
    /// <exception cref="KvmFormatException">The header or a record is damaged.</exception>
    public static FlattenedKdumpStorage Create(RandomAccessFile handle)
    {
        var path = handle.Path;
        var fileLength = handle.Length;
        Span<byte> header = stackalloc byte[32];
        if (fileLength < HeaderSize || !handle.TryCopy(0, header))
            throw new KvmFormatException(path, 0, $"flattened header is truncated: need {HeaderSize} bytes, file has {fileLength}");
        if (!HasSignature(header))
            throw new KvmFormatException(path, 0, "no \"makedumpfile\" flattened signature");
        long type = BinaryPrimitives.ReadInt64BigEndian(header[16..]);
        long version = BinaryPrimitives.ReadInt64BigEndian(header[24..]);
        if (type != 1)
            throw new KvmFormatException(path, 16, $"flattened header type is {type}, expected 1");
        if (version != 1)
            throw new KvmFormatException(path, 24, $"flattened header version is {version}, expected 1");

        var plain = new List<long>();
        var file = new List<long>();
        var size = new List<long>();
        bool sortedDisjoint = true;
        long lastEnd = 0;
        long pos = HeaderSize;
        var window = new byte[1 << 20];
        long windowStart = 0;
        int windowLength = 0;
        Span<byte> rec = stackalloc byte[RecordHeaderSize];
        while (pos < fileLength)
        {
            if (fileLength - pos < RecordHeaderSize)
                throw new KvmFormatException(path, pos, $"flattened record header is truncated ({fileLength - pos} bytes left, need {RecordHeaderSize})");
            if (pos < windowStart || pos + RecordHeaderSize > windowStart + windowLength)
            {
                windowStart = pos;
                windowLength = (int)Math.Min(window.Length, fileLength - pos);
                windowLength = ReadFully(handle, window.AsSpan(0, windowLength), pos);
                if (windowLength < RecordHeaderSize)
                    throw new KvmFormatException(path, pos, "flattened record header could not be read");
            }
            window.AsSpan((int)(pos - windowStart), RecordHeaderSize).CopyTo(rec);
            long offset = BinaryPrimitives.ReadInt64BigEndian(rec);
            long length = BinaryPrimitives.ReadInt64BigEndian(rec[8..]);
            if (offset == -1)
                break; // the end mark; a stream cut short before it still holds what it wrote

            if (offset < 0)
                throw new KvmFormatException(path, pos, $"flattened record has negative plain offset {offset}");
            if (length < 0 || length > fileLength - pos - RecordHeaderSize)
                throw new KvmFormatException(path, pos, $"flattened record size {length} passes the end of the file ({fileLength - pos - RecordHeaderSize} bytes left)");
            if (offset > long.MaxValue - length)
                throw new KvmFormatException(path, pos, $"flattened record at plain offset {offset} with size {length} overflows");
            if (length > 0)
            {
                if (plain.Count >= MaxRecords)
                    throw new KvmFormatException(path, pos, $"more than {MaxRecords} flattened records");
                if (offset < lastEnd)
                    sortedDisjoint = false;
                lastEnd = Math.Max(lastEnd, offset + length);
                plain.Add(offset);
                file.Add(pos + RecordHeaderSize);
                size.Add(length);
            }
            pos += RecordHeaderSize + length;
        }

        long[] p, f, s;
        if (sortedDisjoint)
        {
            (p, f, s) = Coalesce(plain, file, size);
        }
        else
        {
            (p, f, s) = ResolveOverlaps(plain, file, size);
        }
        return new FlattenedKdumpStorage(handle, p, f, s, lastEnd);
    }

    private static int ReadFully(RandomAccessFile handle, Span<byte> buffer, long offset) =>
        handle.TryCopy(offset, buffer) ? buffer.Length : 0;

    // Sorted, disjoint records: merge neighbours that are contiguous in both the plain and the flattened file
    // (never the case for consecutive records, whose headers sit between them, but cheap to do).
    private static (long[], long[], long[]) Coalesce(List<long> plain, List<long> file, List<long> size)
    {
        var p = new List<long>(plain.Count);
        var f = new List<long>(plain.Count);
        var s = new List<long>(plain.Count);
        for (int i = 0; i < plain.Count; i++)
        {
            int last = p.Count - 1;
            if (last >= 0 && p[last] + s[last] == plain[i] && f[last] + s[last] == file[i])
            {
                s[last] += size[i];
                continue;
            }
            p.Add(plain[i]);
            f.Add(file[i]);
            s.Add(size[i]);
        }
        return (p.ToArray(), f.ToArray(), s.ToArray());
    }

    // General case: at each plain offset the record written last wins. Sweep the record boundaries in order
    // keeping the live records in a set ordered by sequence number; the highest is the winner of each piece.
    private static (long[], long[], long[]) ResolveOverlaps(List<long> plain, List<long> file, List<long> size)
    {
        int n = plain.Count;
        var events = new (long Pos, int Seq, bool Start)[2 * n];
        for (int i = 0; i < n; i++)
        {
            events[2 * i] = (plain[i], i, true);
            events[2 * i + 1] = (plain[i] + size[i], i, false);
        }
        Array.Sort(events, (a, b) => a.Pos != b.Pos ? a.Pos.CompareTo(b.Pos) : a.Start.CompareTo(b.Start));
        var live = new SortedSet<int>();
        var p = new List<long>();
        var f = new List<long>();
        var s = new List<long>();
        long prev = 0;
        int e = 0;
        while (e < events.Length)
        {
            long at = events[e].Pos;
            if (live.Count > 0 && at > prev)
            {
                int w = live.Max;
                long fileAt = file[w] + (prev - plain[w]);
                long len = at - prev;
                int last = p.Count - 1;
                if (last >= 0 && p[last] + s[last] == prev && f[last] + s[last] == fileAt)
                    s[last] += len;
                else
                {
                    p.Add(prev);
                    f.Add(fileAt);
                    s.Add(len);
                }
            }
            while (e < events.Length && events[e].Pos == at)
            {
                if (events[e].Start)
                    live.Add(events[e].Seq);
                else
                    live.Remove(events[e].Seq);
                e++;
            }
            prev = at;
        }
        return (p.ToArray(), f.ToArray(), s.ToArray());
    }

    private int FindSegment(long offset)
    {
        int lo = 0, hi = _plainStart.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_plainStart[mid] <= offset)
            {
                found = mid;
                lo = mid + 1;
            }
            else
                hi = mid - 1;
        }
        return found;
    }

    public override bool TryRead(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > _length - destination.Length)
            return false;
        while (destination.Length > 0)
        {
            int i = FindSegment(offset);
            if (i < 0)
                return false;
            long within = offset - _plainStart[i];
            if (within >= _size[i])
                return false;
            int n = (int)Math.Min(destination.Length, _size[i] - within);
            if (!ReadFileExact(_fileStart[i] + within, destination[..n]))
                return false;
            destination = destination[n..];
            offset += n;
        }
        return true;
    }

    public override bool TryWrite(long offset, ReadOnlySpan<byte> source)
    {
        if (offset < 0 || offset > _length - source.Length)
            return false;
        // Check the whole span is backed before writing any of it.
        long o = offset;
        int left = source.Length;
        while (left > 0)
        {
            int i = FindSegment(o);
            if (i < 0 || o - _plainStart[i] >= _size[i])
                return false;
            int n = (int)Math.Min(left, _size[i] - (o - _plainStart[i]));
            o += n;
            left -= n;
        }
        while (source.Length > 0)
        {
            int i = FindSegment(offset);
            long within = offset - _plainStart[i];
            int n = (int)Math.Min(source.Length, _size[i] - within);
            WriteFile(_fileStart[i] + within, source[..n]);
            source = source[n..];
            offset += n;
        }
        return true;
    }
}
