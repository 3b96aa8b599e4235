using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using KvmTyped.Formats.Compression;
using KvmTyped.Formats.Kdump;
using KvmTyped.IO;

namespace KvmTyped.Formats.Lime;

/// <summary>Physical memory acquired from a live machine in the LiME format (LiME's <c>format=lime</c>, AVML's default
/// output), or AVML's compressed variant: a sequence of ranges, each a 32-byte header followed by the range's bytes.</summary>
/// <remarks>
/// <para>The header (LiME's lime.h, AVML's image.rs), little-endian: magic u32 (0x4C694D45, the bytes "EMiL", with
/// version 1; or 0x4C4D5641, the bytes "AVML", with version 2), version u32, first physical address u64, last physical
/// address u64 (inclusive), 8 reserved bytes (zero). Version 1 ranges carry their bytes as they are. Version 2 (AVML
/// <c>--compress</c>) carries them as a snappy framed stream (the framing format: a stream identifier chunk, then
/// chunks of at most 64 KiB of data, each compressed or stored, with a CRC-32C) followed by a u64 giving the stream's
/// length in bytes. AVML cuts compressed ranges into blocks of at most 16 MiB and leaves out blocks that are all zeros,
/// so the gaps of a compressed image read as "not in the image".</para>
/// <para>Reads are random access: the chunks of each compressed range are indexed at open (their 4-byte headers
/// only) and one chunk is decoded per read miss, kept in a small cache. Chunk CRCs are not checked: a damaged chunk
/// shows as a decode failure or wrong bytes, as in a kdump file, whose pages carry no checksum at all.</para>
/// <para>LiME's other formats are not self-describing: <c>format=padded</c> is a raw image (opened as one), and
/// <c>format=raw</c> (ranges back to back, no headers) cannot be placed without /proc/iomem of the machine.</para>
/// </remarks>
internal sealed class LimeMemory : IPhysicalMemory, IWriteCheck
{
    /// <summary>LiME's magic, the bytes "EMiL" read as a little-endian u32.</summary>
    public const uint LimeMagic = 0x4C69_4D45;

    /// <summary>AVML's magic for compressed ranges, the bytes "AVML" read as a little-endian u32.</summary>
    public const uint AvmlMagic = 0x4C4D_5641;

    /// <summary>Size of a range header.</summary>
    public const int HeaderSize = 32;

    /// <summary>Most ranges accepted (a machine's /proc/iomem lists tens of System RAM ranges; AVML's 16 MiB blocks make
    /// 65,536 of them for 1 TiB).</summary>
    public const int MaxRanges = 1 << 20;

    /// <summary>Most snappy chunks indexed over all compressed ranges (64 KiB each: 16 TiB).</summary>
    public const int MaxChunks = 1 << 28;

    /// <summary>One past the largest physical address a range may reach (52 address bits, the x86 limit).</summary>
    public const ulong MaxPhysical = 1UL << 52;

    /// <summary>Largest data of one snappy frame chunk (the framing format's limit).</summary>
    public const int MaxChunkData = 65536;

    /// <summary>Decoded chunks kept (64 KiB each).</summary>
    private const int CachedChunks = 64;

    private readonly RandomAccessFile _file;
    private readonly LimeRange[] _ranges;
    private readonly ulong[] _starts;
    private readonly PageCache _chunks = new(CachedChunks);

    private LimeMemory(RandomAccessFile file, LimeRange[] ranges)
    {
        _file = file;
        _ranges = ranges;
        _starts = [.. ranges.Select(r => r.Start)];
        var origin = Path.GetFileName(file.Path);
        Ranges = [.. ranges.Select(r => new PhysicalRange(r.Start, r.Length, origin))];
        IsCompressed = ranges.Any(r => r.Chunks is not null);
    }

    /// <summary>Whether any range is compressed (AVML version 2).</summary>
    public bool IsCompressed { get; }

    /// <inheritdoc />
    public string FormatName => IsCompressed ? "LiME (AVML, snappy)" : "LiME";

    /// <inheritdoc />
    public IReadOnlyList<PhysicalRange> Ranges { get; }

    /// <inheritdoc />
    public bool IsWritable => _file.IsWritable;

    /// <summary>Whether the first bytes are a LiME or AVML range header.</summary>
    public static bool IsLime(ReadOnlySpan<byte> head)
    {
        if (head.Length < 8)
            return false;
        var magic = BinaryPrimitives.ReadUInt32LittleEndian(head);
        var version = BinaryPrimitives.ReadUInt32LittleEndian(head[4..]);
        return (magic == LimeMagic && version == 1) || (magic == AvmlMagic && version == 2);
    }

    /// <summary>Reads the range headers (and indexes the chunks of compressed ranges); takes ownership of the file.</summary>
    /// <exception cref="KvmFormatException">A header, range or chunk does not fit the file or the format's limits.</exception>
    public static LimeMemory Open(RandomAccessFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var ranges = new List<LimeRange>();
        long offset = 0;
        var chunkCount = 0;
        var chunkBase = 0UL;
        while (offset < file.Length)
        {
            if (ranges.Count >= MaxRanges)
                throw new KvmFormatException(file.Path, offset, $"more than {MaxRanges} LiME ranges");
            var h = file.Span(offset, HeaderSize, "LiME range header");
            var magic = BinaryPrimitives.ReadUInt32LittleEndian(h);
            var version = BinaryPrimitives.ReadUInt32LittleEndian(h[4..]);
            var start = BinaryPrimitives.ReadUInt64LittleEndian(h[8..]);
            var last = BinaryPrimitives.ReadUInt64LittleEndian(h[16..]);
            if (!IsLime(h))
                throw new KvmFormatException(file.Path, offset, $"expected a LiME range header (magic 0x{LimeMagic:x8} version 1, or 0x{AvmlMagic:x8} version 2), found magic 0x{magic:x8} version {version}");
            if (last < start || last >= MaxPhysical)
                throw new KvmFormatException(file.Path, offset + 8, $"LiME range 0x{start:x}-0x{last:x} is empty, reversed or beyond 2^52");
            if (ranges.Count > 0 && start <= ranges[^1].Start + ranges[^1].Length - 1)
                throw new KvmFormatException(file.Path, offset + 8, $"LiME range 0x{start:x}-0x{last:x} does not follow the previous range (which ends at 0x{ranges[^1].Start + ranges[^1].Length - 1:x})");
            var length = last - start + 1;
            var data = offset + HeaderSize;
            if (version == 1)
            {
                if (length > long.MaxValue || !file.Contains(data, (long)length))
                    throw new KvmFormatException(file.Path, offset, $"LiME range 0x{start:x}-0x{last:x} ({length} bytes) extends past the end of the file (size {file.Length})");
                ranges.Add(new LimeRange(start, length, data, null, 0));
                offset = data + (long)length;
                continue;
            }
            var chunks = IndexChunks(file, data, length, ref chunkCount, out var streamEnd);
            var trailer = BinaryPrimitives.ReadUInt64LittleEndian(file.Span(streamEnd, 8, "AVML compressed-size trailer"));
            if (trailer != (ulong)(streamEnd - data))
                throw new KvmFormatException(file.Path, streamEnd, $"AVML range 0x{start:x}-0x{last:x}: the trailer says the compressed stream has {trailer} bytes, but its chunks take {streamEnd - data}");
            ranges.Add(new LimeRange(start, length, data, chunks, chunkBase));
            chunkBase += (ulong)chunks.Length;
            offset = streamEnd + 8;
        }
        if (ranges.Count == 0)
            throw new KvmFormatException(file.Path, 0, "a LiME file with no range");
        return new LimeMemory(file, [.. ranges]);
    }

    /// <summary>Indexes the chunks of one snappy framed stream that must decode to exactly <paramref name="length"/> bytes.</summary>
    private static Chunk[] IndexChunks(RandomAccessFile file, long data, ulong length, ref int total, out long end)
    {
        var chunks = new List<Chunk>();
        var at = data;
        ulong produced = 0;
        var sawIdentifier = false;
        while (produced < length)
        {
            var head = file.Span(at, 4, "snappy frame chunk header");
            var type = head[0];
            var size = head[1] | (head[2] << 8) | (head[3] << 16);
            var body = at + 4;
            if (!file.Contains(body, size))
                throw new KvmFormatException(file.Path, at, $"snappy chunk of {size} bytes extends past the end of the file (size {file.Length})");
            switch (type)
            {
                case 0xff:
                    if (size != 6 || !file.Span(body, 6, "snappy stream identifier").SequenceEqual("sNaPpY"u8))
                        throw new KvmFormatException(file.Path, at, "bad snappy stream identifier (expected \"sNaPpY\")");
                    sawIdentifier = true;
                    break;
                case 0x00 or 0x01:
                    {
                        if (!sawIdentifier)
                            throw new KvmFormatException(file.Path, at, "snappy data chunk before the stream identifier");
                        if (size < 4)
                            throw new KvmFormatException(file.Path, at, $"snappy data chunk of {size} bytes has no room for its checksum");
                        var payload = file.Span(body + 4, size - 4, "snappy chunk data");
                        int n;
                        if (type == 0x01)
                            n = payload.Length;
                        else
                        {
                            try
                            {
                                n = Snappier.Snappy.GetUncompressedLength(payload);
                            }
                            catch (Exception e) when (e is InvalidDataException or ArgumentException or IndexOutOfRangeException)
                            {
                                throw new KvmFormatException(file.Path, body + 4, $"snappy chunk does not start with a length: {e.Message}");
                            }
                        }
                        if (n is <= 0 or > MaxChunkData)
                            throw new KvmFormatException(file.Path, at, $"snappy chunk decodes to {n} bytes, not 1 to {MaxChunkData}");
                        if ((ulong)n > length - produced)
                            throw new KvmFormatException(file.Path, at, $"snappy chunk of {n} bytes runs past the range's {length} bytes");
                        if (++total > MaxChunks)
                            throw new KvmFormatException(file.Path, at, $"more than {MaxChunks} snappy chunks");
                        chunks.Add(new Chunk(produced, n, body + 4, size - 4, type == 0x00));
                        produced += (ulong)n;
                        break;
                    }
                case >= 0x02 and <= 0x7f:
                    throw new KvmFormatException(file.Path, at, $"reserved unskippable snappy chunk type 0x{type:x2}");
                default:
                    break;
            }
            at = body + size;
        }
        end = at;
        return [.. chunks];
    }

    private int Find(ulong address)
    {
        var i = Array.BinarySearch(_starts, address);
        if (i < 0)
            i = ~i - 1;
        return i >= 0 && address - _ranges[i].Start < _ranges[i].Length ? i : -1;
    }

    /// <inheritdoc />
    public bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        while (!destination.IsEmpty)
        {
            var i = Find(address);
            if (i < 0)
            {
                failure = $"physical address 0x{address:x} is not in {_file.Path} (no LiME range holds it)";
                return false;
            }
            var r = _ranges[i];
            var delta = address - r.Start;
            var n = (int)Math.Min((ulong)destination.Length, r.Length - delta);
            if (r.Chunks is null)
            {
                if (!_file.TryCopy(r.DataOffset + (long)delta, destination[..n]))
                {
                    failure = $"{_file.Path} is closed";
                    return false;
                }
            }
            else if (!TryReadCompressed(r, delta, destination[..n], out failure))
                return false;
            destination = destination[n..];
            address += (ulong)n;
        }
        failure = null;
        return true;
    }

    private bool TryReadCompressed(LimeRange r, ulong delta, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        var chunks = r.Chunks!;
        while (!destination.IsEmpty)
        {
            int lo = 0, hi = chunks.Length - 1;
            while (lo < hi)
            {
                var mid = (lo + hi + 1) >> 1;
                if (chunks[mid].Start <= delta)
                    lo = mid;
                else
                    hi = mid - 1;
            }
            var c = chunks[lo];
            var key = r.ChunkBase + (ulong)lo;
            var decoded = _chunks.TryGet(key);
            if (decoded is null)
            {
                var generation = _chunks.Generation;
                decoded = new byte[c.Length];
                var source = _file.Span(c.FileOffset, c.StoredLength, "snappy chunk data");
                if (!c.Compressed)
                    source.CopyTo(decoded);
                else if (!PageCompression.TryDecode(PageCodec.Snappy, source, decoded, out var error))
                {
                    failure = $"{_file.Path}: at offset 0x{c.FileOffset:x}: the snappy chunk holding physical address 0x{r.Start + delta:x} does not decode: {error}";
                    return false;
                }
                _chunks.Add(key, decoded, generation);
            }
            var within = (int)(delta - c.Start);
            var n = Math.Min(destination.Length, c.Length - within);
            decoded.AsSpan(within, n).CopyTo(destination);
            destination = destination[n..];
            delta += (ulong)n;
        }
        failure = null;
        return true;
    }

    /// <inheritdoc />
    string? IWriteCheck.WriteFailure(ulong address, ulong length)
    {
        var (a, left) = (address, length);
        while (left > 0)
        {
            var i = Find(a);
            if (i < 0)
                return $"physical address 0x{a:x} is not in {_file.Path}";
            if (_ranges[i].Chunks is not null)
                return $"physical address 0x{a:x} lies in a compressed AVML range of {_file.Path}: it cannot be written in place";
            var n = Math.Min(left, _ranges[i].Length - (a - _ranges[i].Start));
            a += n;
            left -= n;
        }
        return null;
    }

    /// <inheritdoc />
    public void Write(ulong address, ReadOnlySpan<byte> source)
    {
        if (!IsWritable)
            throw new KvmWriteException(address, $"{_file.Path} is open read-only");
        if (((IWriteCheck)this).WriteFailure(address, (ulong)source.Length) is { } why)
            throw new KvmWriteException(address, why);
        while (!source.IsEmpty)
        {
            var r = _ranges[Find(address)];
            var n = (int)Math.Min((ulong)source.Length, r.Length - (address - r.Start));
            _file.Write(r.DataOffset + (long)(address - r.Start), source[..n]);
            source = source[n..];
            address += (ulong)n;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _chunks.Clear();
        _file.Dispose();
    }

    /// <summary>One range: its physical start and length, where its data begins, and for a compressed range its chunks
    /// and the number of its first chunk among all (the chunk cache's key).</summary>
    private sealed record LimeRange(ulong Start, ulong Length, long DataOffset, Chunk[]? Chunks, ulong ChunkBase);

    /// <summary>A snappy frame chunk: where its data starts in the range, how many bytes it decodes to, where its stored
    /// bytes are and how many, and whether they are compressed.</summary>
    private readonly record struct Chunk(ulong Start, int Length, long FileOffset, int StoredLength, bool Compressed);
}
