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
}
