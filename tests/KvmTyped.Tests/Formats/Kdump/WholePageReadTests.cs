using KvmTyped.Formats.Kdump;
using KvmTyped.TestSupport;

namespace KvmTyped.Tests.Formats.Kdump;

/// <summary>A read that covers whole pages not in the cache decodes them straight into the caller's buffer; it must
/// read what the cached path reads, and fail (or zero-fill) as it does.</summary>
public class WholePageReadTests
{
    [Theory]
    [InlineData("amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump")]
    [InlineData("i386/pae-kdump-kaslr/vmcore.mdf-zlib-d31.kdump")]
    public void Whole_pages_read_as_the_page_cache_reads_them(string dump)
    {
        var path = Fixtures.Get(dump);
        using var whole = KdumpFile.Open(path);
        using var small = KdumpFile.Open(path);
        // Up to 64 dumped pages in a row from the first page above 1 MiB that holds data, read in one call, beside
        // 512-byte reads.
        var probe = new byte[4096];
        ulong start = 0x100000;
        while (!whole.TryRead(start, probe, out _) || !probe.AsSpan().ContainsAnyExcept((byte)0))
            start += 4096;
        var pages = 0;
        while (pages < 64 && whole.TryRead(start + (ulong)pages * 4096, probe, out _))
            pages++;
        Assert.True(pages >= 8, $"{pages} dumped pages in a row at 0x{start:x}");
        whole.ClearCache();
        var big = new byte[(pages - 1) * 4096]; // from 96 bytes into the first page to 96 bytes into the last
        Assert.True(whole.TryRead(start + 96, big, out var failure), failure); // unaligned: a partial page at each end
        var expected = new byte[big.Length];
        for (var at = 0; at < expected.Length; at += 512)
            Assert.True(small.TryRead(start + 96 + (ulong)at, expected.AsSpan(at, Math.Min(512, expected.Length - at)), out failure), failure);
        Assert.Equal(expected, big);
        Assert.Contains(big, b => b != 0);
    }

    [Fact]
    public void An_excluded_page_fails_or_reads_as_zeros_whole_as_in_part()
    {
        var path = Fixtures.Get("amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump");
        using var k = KdumpFile.Open(path);
        var excluded = RealKdumpTests.FirstExcluded(k);
        var page = new byte[4096];
        Assert.False(k.TryRead(excluded * 4096, page, out var whole));
        Assert.False(k.TryRead(excluded * 4096, page.AsSpan(0, 8), out var part));
        Assert.Equal(part, whole);

        using var z = KdumpFile.Open(path, options: new KdumpOptions { ZeroFillExcluded = true });
        page.AsSpan().Fill(0xff);
        Assert.True(z.TryRead(excluded * 4096, page, out var f), f);
        Assert.All(page, b => Assert.Equal(0, b));
    }
}
