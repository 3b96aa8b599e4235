using System.Buffers.Binary;
using System.IO.Compression;

namespace KvmTyped.Tests.TestSupport;

/// <summary>Writes LiME files as LiME (format=lime: version 1, "EMiL") and AVML (--compress: version 2, "AVML", each
/// range a snappy framed stream followed by its length as a u64) write them.</summary>
internal sealed class LimeWriter
{
    /// <summary>The ranges: first physical address, bytes, and whether the range is compressed (version 2).</summary>
    public List<(ulong Start, byte[] Data, bool Compressed)> Ranges { get; } = [];

    /// <summary>Adds a range.</summary>
    public LimeWriter Add(ulong start, byte[] data, bool compressed = false)
    {
        Ranges.Add((start, data, compressed));
        return this;
    }

    /// <summary>The header of a range, as LiME's lime.h lays it out.</summary>
    public static byte[] Header(ulong start, ulong last, bool compressed, uint? magic = null, uint? version = null)
    {
        var h = new byte[32];
        BinaryPrimitives.WriteUInt32LittleEndian(h, magic ?? (compressed ? 0x4C4D_5641u : 0x4C69_4D45u));
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), version ?? (compressed ? 2u : 1u));
        BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(8), start);
        BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(16), last);
        return h;
    }

    /// <summary>The snappy framed stream of <paramref name="data"/>, written by Snappier's stream (the reader under test
    /// decodes the frames itself).</summary>
    public static byte[] Framed(byte[] data)
    {
        using var output = new MemoryStream();
        using (var snappy = new Snappier.SnappyStream(output, CompressionMode.Compress, leaveOpen: true))
            snappy.Write(data);
        return output.ToArray();
    }

    /// <summary>The file.</summary>
    public byte[] Build()
    {
        using var o = new MemoryStream();
        foreach (var (start, data, compressed) in Ranges)
        {
            o.Write(Header(start, start + (ulong)data.Length - 1, compressed));
            if (!compressed)
            {
                o.Write(data);
                continue;
            }
            var framed = Framed(data);
            o.Write(framed);
            var size = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(size, (ulong)framed.Length);
            o.Write(size);
        }
        return o.ToArray();
    }
}
