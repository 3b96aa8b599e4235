using KvmTyped.Physical.Compression;

namespace KvmTyped.Tests.Physical.Compression;

public class Lzo1xTests
{
    /// <summary>Inputs that exercise every instruction: long literal runs, short and far matches, long
    /// matches (extended lengths), overlapping copies (runs), and incompressible stretches.</summary>
    internal static byte[] Sample(int seed, int length)
    {
        var rnd = new Random(seed);
        var data = new byte[length];
        int at = 0;
        while (at < length)
        {
            int kind = rnd.Next(6);
            int n = Math.Min(length - at, kind switch { 0 => rnd.Next(1, 40), 1 => rnd.Next(1, 2000), 2 => rnd.Next(1, 600), _ => rnd.Next(1, 100) });
            switch (kind)
            {
                case 0: // noise
                case 5:
                    rnd.NextBytes(data.AsSpan(at, n));
                    break;
                case 1: // a run of one byte (overlapping match of distance 1)
                    data.AsSpan(at, n).Fill((byte)rnd.Next(256));
                    break;
                default: // repeat something earlier, near or far
                    if (at == 0)
                        goto case 0;
                    int dist = kind == 2 ? rnd.Next(1, Math.Min(at, 49151) + 1) : rnd.Next(1, Math.Min(at, 64) + 1);
                    for (int i = 0; i < n; i++)
                        data[at + i] = data[at - dist + i];
                    break;
            }
            at += n;
        }
        return data;
    }

    public static TheoryData<int, int> LzopCases()
    {
        var d = new TheoryData<int, int>();
        foreach (var level in new[] { 1, 3, 7, 9 })
        foreach (var seed in new[] { 1, 2, 3 })
            d.Add(level, seed);
        return d;
    }

    [RequiresToolTheory("lzop")]
    [MemberData(nameof(LzopCases))]
    public void Decodes_real_lzop_output(int level, int seed)
    {
        var data = Sample(seed, 600_000);
        var blocks = Lzop.Blocks(Lzop.Run(data, level));
        Assert.True(blocks.Count >= 3); // lzop's blocks are 256 KiB
        int at = 0;
        int compressed = 0;
        foreach (var b in blocks)
        {
            var output = new byte[b.UncompressedSize];
            if (b.Stored)
                b.Data.CopyTo(output, 0);
            else
            {
                compressed++;
                Assert.Equal(b.UncompressedSize, Lzo1x.Decompress(b.Data, output));
            }
            Assert.True(data.AsSpan(at, b.UncompressedSize).SequenceEqual(output), $"block at {at} differs");
            at += b.UncompressedSize;
        }
        Assert.Equal(data.Length, at);
        Assert.True(compressed > 0);
    }

    [RequiresToolFact("lzop")]
    public void Decodes_text_and_zero_pages_from_lzop()
    {
        var text = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 400).Select(i => $"line {i % 37} of the kernel log\n")))[..4096];
        foreach (var page in new[] { text, new byte[4096], Sample(9, 4096) })
        {
            var c = Lzop.CompressPage(page);
            if (c is null)
                continue;
            var output = new byte[4096];
            Assert.Equal(4096, Lzo1x.Decompress(c, output));
            Assert.Equal(page, output);
        }
    }

    [RequiresToolFact("lzop")]
    public void Every_truncation_fails_cleanly()
    {
        var page = Sample(4, 4096);
        var c = Lzop.CompressPage(page)!;
        Assert.NotNull(c);
        var output = new byte[4096];
        for (int cut = 0; cut < c.Length; cut++)
            Assert.False(Lzo1x.TryDecompress(c.AsSpan(0, cut), output, out _, out var error), $"cut {cut} accepted");
        // Too small an output buffer is refused, not overrun.
        Assert.False(Lzo1x.TryDecompress(c, new byte[4095], out _, out var small));
        Assert.Contains("output exceeds", small, StringComparison.Ordinal);
        // Bytes after the end marker are refused.
        Assert.False(Lzo1x.TryDecompress([.. c, 0], output, out _, out var trailing));
        Assert.Contains("follow the end-of-stream marker", trailing, StringComparison.Ordinal);
    }

    [Fact]
    public void Match_before_the_output_start_is_refused()
    {
        // Literal run of 4 ("abcd"), then an M3 match (t = 32 | 1 → length 3) with distance 0x100 + 1: before the start.
        byte[] stream = [17 + 4, (byte)'a', (byte)'b', (byte)'c', (byte)'d', 33, 0x00, 0x04, 0x11, 0, 0];
        var ex = Assert.Throws<InvalidDataException>(() => Lzo1x.Decompress(stream, new byte[64]));
        Assert.Contains("refers 257 bytes back", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hand_built_stream_with_overlapping_match_decodes()
    {
        // "abcd" then M2 (t >= 64): length (t >> 5) + 1, distance ((t >> 2) & 7) + (next << 3) + 1.
        // t = 0b111_000_00 = 0xe0: length 8, distance 1 → eight 'd's. Then the end marker.
        byte[] stream = [17 + 4, (byte)'a', (byte)'b', (byte)'c', (byte)'d', 0xe0, 0x00, 0x11, 0, 0];
        var output = new byte[12];
        Assert.Equal(12, Lzo1x.Decompress(stream, output));
        Assert.Equal("abcddddddddd", System.Text.Encoding.ASCII.GetString(output));
    }

    [Fact]
    public void Random_garbage_never_throws_anything_else_and_never_overruns()
    {
        var rnd = new Random(42);
        var output = new byte[4096];
        for (int i = 0; i < 20000; i++)
        {
            var input = new byte[rnd.Next(0, 300)];
            rnd.NextBytes(input);
            Lzo1x.TryDecompress(input, output, out var written, out _);
            Assert.InRange(written, 0, output.Length);
        }
    }

    [Fact]
    public void Extended_length_of_many_zero_bytes_is_bounded_by_the_input()
    {
        // A literal run whose length field is 100000 zero bytes: absurd but finite; must fail, not allocate or hang.
        var input = new byte[100_002];
        input[^1] = 1;
        Assert.False(Lzo1x.TryDecompress(input, new byte[4096], out _, out var error));
        Assert.NotNull(error);
    }
}
