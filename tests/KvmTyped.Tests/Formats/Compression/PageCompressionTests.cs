using System.IO.Compression;
using KvmTyped.Formats.Compression;

namespace KvmTyped.Tests.Formats.Compression;

public class PageCompressionTests
{
    internal static byte[] Compress(PageCodec codec, byte[] page) => codec switch
    {
        PageCodec.Raw => page,
        PageCodec.Zlib => Zlib(page),
        PageCodec.Snappy => Snappier.Snappy.CompressToArray(page),
        PageCodec.Zstd => new ZstdSharp.Compressor(3).Wrap(page).ToArray(),
        PageCodec.Lzo => Lzop.CompressPage(page) ?? throw new InvalidOperationException("lzop stored the page"),
        _ => throw new ArgumentOutOfRangeException(nameof(codec)),
    };

    private static byte[] Zlib(byte[] page)
    {
        var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Optimal, leaveOpen: true))
            z.Write(page);
        return ms.ToArray();
    }

    [RequiresToolFact("lzop")]
    public void Round_trips_a_page_lzo() => Round_trips_a_page((int)PageCodec.Lzo);

    [Theory]
    [InlineData((int)(PageCodec.Zlib))]
    [InlineData((int)(PageCodec.Snappy))]
    [InlineData((int)(PageCodec.Zstd))]
    public void Round_trips_a_page(int codecValue)
    {
        var codec = (PageCodec)codecValue;
        var page = Lzo1xTests.Sample(7, 4096);
        var c = Compress(codec, page);
        Assert.True(c.Length < page.Length);
        var output = new byte[4096];
        Assert.True(PageCompression.TryDecode(codec, c, output, out var error), error);
        Assert.Equal(page, output);
    }

    [RequiresToolFact("lzop")]
    public void Output_must_be_exactly_one_page_lzo() => Output_must_be_exactly_one_page((int)PageCodec.Lzo);

    [Theory]
    [InlineData((int)(PageCodec.Zlib))]
    [InlineData((int)(PageCodec.Snappy))]
    [InlineData((int)(PageCodec.Zstd))]
    public void Output_must_be_exactly_one_page(int codecValue)
    {
        var codec = (PageCodec)codecValue;
        var half = Lzo1xTests.Sample(8, 2048);
        var output = new byte[4096];
        Assert.False(PageCompression.TryDecode(codec, Compress(codec, half), output, out var shortError));
        Assert.Contains("2048", shortError, StringComparison.Ordinal);
        var big = Lzo1xTests.Sample(8, 8192);
        Assert.False(PageCompression.TryDecode(codec, Compress(codec, big), output, out var longError));
        Assert.NotNull(longError);
    }

    [RequiresToolFact("lzop")]
    public void Damaged_data_fails_with_a_reason_lzo() => Damaged_data_fails_with_a_reason((int)PageCodec.Lzo);

    [Theory]
    [InlineData((int)(PageCodec.Zlib))]
    [InlineData((int)(PageCodec.Snappy))]
    [InlineData((int)(PageCodec.Zstd))]
    public void Damaged_data_fails_with_a_reason(int codecValue)
    {
        var codec = (PageCodec)codecValue;
        var page = Lzo1xTests.Sample(10, 4096);
        var c = Compress(codec, page);
        var output = new byte[4096];
        var rnd = new Random(1);
        int refused = 0;
        for (int i = 0; i < 200; i++)
        {
            var bad = (byte[])c.Clone();
            for (int j = 0; j < 4; j++)
                bad[rnd.Next(bad.Length)] ^= (byte)rnd.Next(1, 256);
            if (!PageCompression.TryDecode(codec, bad, output, out var error))
            {
                Assert.False(string.IsNullOrEmpty(error));
                refused++;
            }
        }
        // Truncated data is always refused.
        Assert.False(PageCompression.TryDecode(codec, c.AsSpan(0, c.Length / 2), output, out _));
        Assert.True(refused > 0);
    }

    [Fact]
    public void Raw_page_must_be_page_sized()
    {
        Assert.False(PageCompression.TryDecode(PageCodec.Raw, new byte[100], new byte[4096], out var error));
        Assert.Contains("100", error, StringComparison.Ordinal);
    }

    [Fact]
    public void The_reused_native_zlib_stream_and_a_zlib_stream_a_page_give_the_same_pages_and_refusals()
    {
        // The native decoder keeps one stream per thread and resets it between pages: pages that decode, fail, then
        // decode again must each give what a fresh ZLibStream gives (and the same page bytes).
        var rnd = new Random(3);
        var good = Enumerable.Range(0, 20).Select(i => Compress(PageCodec.Zlib, Lzo1xTests.Sample(20 + i, 4096))).ToArray();
        var inputs = new List<byte[]>();
        foreach (var g in good)
        {
            inputs.Add(g);
            var bad = (byte[])g.Clone();
            bad[rnd.Next(2, bad.Length)] ^= (byte)rnd.Next(1, 256);
            inputs.Add(bad);
            inputs.Add(g[..(g.Length / 2)]);
        }
        inputs.Add(Compress(PageCodec.Zlib, Lzo1xTests.Sample(8, 2048)));
        inputs.Add(Compress(PageCodec.Zlib, Lzo1xTests.Sample(8, 8192)));
        inputs.Add([]);
        int decoded = 0;
        foreach (var input in inputs)
        {
            var (native, managed) = (new byte[4096], new byte[4096]);
            var byNative = ZlibPageDecoder.TryDecode(input, native, out var nativeError);
            Assert.NotNull(byNative); // the test host runs on the shared framework, which has the native library
            var byStream = Managed(input, managed, out var streamError);
            Assert.Equal(byStream, byNative.Value);
            if (byStream)
            {
                Assert.Equal(managed, native);
                decoded++;
            }
            else
            {
                Assert.False(string.IsNullOrEmpty(nativeError));
                if (streamError!.Contains("decodes to", StringComparison.Ordinal))
                    Assert.Equal(streamError, nativeError);
            }
        }
        Assert.True(decoded >= 20, $"{decoded} pages decoded");
    }

    [Fact]
    public void A_zlib_page_cut_inside_its_checksum_is_refused_as_truncated()
    {
        // compress2 ends a stream with a 4-byte Adler-32: a page whose data ends inside it decoded all its bytes but
        // cannot be checked, which makedumpfile's and libkdumpfile's uncompress() refuse too.
        var page = Lzo1xTests.Sample(30, 4096);
        var packed = Compress(PageCodec.Zlib, page);
        for (var cut = 1; cut <= 4; cut++)
        {
            Assert.False(PageCompression.TryDecode(PageCodec.Zlib, packed.AsSpan(0, packed.Length - cut), new byte[4096], out var error));
            Assert.Contains("truncated before its checksum", error, StringComparison.Ordinal);
        }
        var more = packed.Concat(new byte[] { 1, 2, 3 }).ToArray();   // bytes after the stream's end are not read
        Assert.True(PageCompression.TryDecode(PageCodec.Zlib, more, new byte[4096], out _));
    }

    /// <summary>The ZLibStream path as TryDecode calls it (which turns its exceptions into a refusal).</summary>
    private static bool Managed(byte[] input, byte[] output, out string? error)
    {
        try
        {
            return PageCompression.DecodeZlibStream(input, output, out error);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException)
        {
            error = e.Message;
            return false;
        }
    }

    [Fact]
    public void Threads_decode_zlib_pages_each_with_their_own_stream()
    {
        var pages = Enumerable.Range(0, 16).Select(i => Lzo1xTests.Sample(40 + i, 4096)).ToArray();
        var packed = pages.Select(p => Compress(PageCodec.Zlib, p)).ToArray();
        Parallel.For(0, 4_000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var output = new byte[4096];
            Assert.True(PageCompression.TryDecode(PageCodec.Zlib, packed[i % 16], output, out var error), error);
            Assert.Equal(pages[i % 16], output);
        });
    }
}
