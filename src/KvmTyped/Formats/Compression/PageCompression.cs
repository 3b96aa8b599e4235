using System.IO.Compression;
using ZstdSharp;

namespace KvmTyped.Formats.Compression;

/// <summary>How one page of a dump is stored.</summary>
internal enum PageCodec
{
    /// <summary>Stored as is.</summary>
    Raw = 0,

    /// <summary>zlib stream (RFC 1950), as compress2 writes it.</summary>
    Zlib = 1,

    /// <summary>LZO1X.</summary>
    Lzo = 2,

    /// <summary>Snappy raw block format (not the framed stream).</summary>
    Snappy = 3,

    /// <summary>Zstandard frame.</summary>
    Zstd = 4,
}

/// <summary>Decodes one compressed page into a buffer of exactly the page's size.</summary>
internal static class PageCompression
{
    [ThreadStatic]
    private static Decompressor? t_zstd;

    /// <summary>Decodes <paramref name="source"/> into all of <paramref name="page"/>; false with the reason
    /// when the data is damaged or does not decode to exactly <paramref name="page"/>.Length bytes.</summary>
    public static bool TryDecode(PageCodec codec, ReadOnlySpan<byte> source, Span<byte> page, out string? error)
    {
        error = null;
        try
        {
            switch (codec)
            {
                case PageCodec.Raw:
                    if (source.Length != page.Length)
                        return Fail($"raw page holds {source.Length} bytes, not {page.Length}", out error);
                    source.CopyTo(page);
                    return true;
                case PageCodec.Lzo:
                    if (!Lzo1x.TryDecompress(source, page, out var lzoWritten, out var lzoError))
                        return Fail(lzoError!, out error);
                    return lzoWritten == page.Length || Fail($"LZO1X data decodes to {lzoWritten} bytes, not {page.Length}", out error);
                case PageCodec.Zlib:
                    return DecodeZlib(source, page, out error);
                case PageCodec.Snappy:
                    {
                        var n = Snappier.Snappy.GetUncompressedLength(source);
                        if (n != page.Length)
                            return Fail($"snappy data declares {n} bytes, not {page.Length}", out error);
                        var written = Snappier.Snappy.Decompress(source, page);
                        return written == page.Length || Fail($"snappy data decodes to {written} bytes, not {page.Length}", out error);
                    }
                case PageCodec.Zstd:
                    {
                        var zstd = t_zstd ??= new Decompressor();
                        if (!zstd.TryUnwrap(source, page, out var written))
                            return Fail($"zstd data decodes to more than {page.Length} bytes", out error);
                        return written == page.Length || Fail($"zstd data decodes to {written} bytes, not {page.Length}", out error);
                    }
                default:
                    return Fail($"unknown codec {codec}", out error);
            }
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ZstdException or ArgumentException or IndexOutOfRangeException or InvalidOperationException)
        {
            return Fail($"{codec} data damaged: {e.Message}", out error);
        }
    }

    private static bool DecodeZlib(ReadOnlySpan<byte> source, Span<byte> page, out string? error) =>
        ZlibPageDecoder.TryDecode(source, page, out error) ?? DecodeZlibStream(source, page, out error);

    /// <summary>The managed way to decode a zlib page, where <see cref="ZlibPageDecoder"/> cannot be used.</summary>
    internal static unsafe bool DecodeZlibStream(ReadOnlySpan<byte> source, Span<byte> page, out string? error)
    {
        fixed (byte* p = source)
        {
            using var input = new UnmanagedMemoryStream(p, source.Length);
            using var z = new ZLibStream(input, CompressionMode.Decompress);
            int total = 0;
            while (total < page.Length)
            {
                int n = z.Read(page[total..]);
                if (n == 0)
                    return Fail($"zlib data decodes to {total} bytes, not {page.Length}", out error);
                total += n;
            }
            Span<byte> probe = stackalloc byte[1];
            if (z.Read(probe) != 0)
                return Fail($"zlib data decodes to more than {page.Length} bytes", out error);
        }
        error = null;
        return true;
    }

    private static bool Fail(string what, out string? error)
    {
        error = what;
        return false;
    }
}
