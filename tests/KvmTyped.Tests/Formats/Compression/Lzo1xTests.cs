using KvmTyped.Formats.Compression;

namespace KvmTyped.Tests.Formats.Compression;

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

    /// <summary>An LZO1X stream that stores <paramref name="data"/> as one literal run, as the format allows:
    /// a first byte of 17 + n for short runs, else a zero-length literal instruction whose length continues in
    /// extension bytes (each zero adds 255), then the end-of-stream marker.</summary>
    internal static byte[] StoreOnly(ReadOnlySpan<byte> data)
    {
        var s = new List<byte>();
        int n = data.Length;
        if (n is > 0 and <= 238)
            s.Add((byte)(17 + n));
        else if (n >= 4 && n <= 18)
            s.Add((byte)(n - 3));
        else if (n > 18)
        {
            int r = n - 18;
            int zeros = (r - 1) / 255;
            s.Add(0);
            s.AddRange(Enumerable.Repeat((byte)0, zeros));
            s.Add((byte)(r - 255 * zeros));
        }
        s.AddRange(data.ToArray());
        s.AddRange([0x11, 0, 0]);
        return s.ToArray();
    }

    /// <summary>A small LZO1X encoder that finds only runs (matches of distance 1), for tests that need LZO data
    /// without lzop: literal runs (first-byte form, short form, extended form, or 1–3 literals carried in the
    /// previous match), and M3 matches with extended lengths.</summary>
    internal static byte[] RunLengthEncode(ReadOnlySpan<byte> data)
    {
        var s = new List<byte>();
        int pos = 0, litStart = 0;
        int lastMatchDistanceAt = -1; // index in s of the previous match's low distance byte
        void EmitLiterals(ReadOnlySpan<byte> lit)
        {
            int n = lit.Length;
            if (n == 0)
                return;
            if (lastMatchDistanceAt < 0 && s.Count == 0)
            {
                if (n <= 238)
                    s.Add((byte)(17 + n));
                else
                    ExtendedLiteral(n);
            }
            else if (n <= 3)
                s[lastMatchDistanceAt] |= (byte)n;
            else if (n <= 18)
                s.Add((byte)(n - 3));
            else
                ExtendedLiteral(n);
            s.AddRange(lit.ToArray());
        }
        void ExtendedLiteral(int n)
        {
            int r = n - 18;
            int zeros = (r - 1) / 255;
            s.Add(0);
            s.AddRange(Enumerable.Repeat((byte)0, zeros));
            s.Add((byte)(r - 255 * zeros));
        }
        while (pos < data.Length)
        {
            int run = 0;
            if (pos > 0)
                while (pos + run < data.Length && data[pos + run] == data[pos - 1])
                    run++;
            // A match needs at least 3 bytes, and literals before it (a stream cannot start with a match).
            if (run >= 3 && pos > 0)
            {
                EmitLiterals(data[litStart..pos]);
                int m = run;
                if (m <= 33)
                    s.Add((byte)(32 | (m - 2)));
                else
                {
                    s.Add(32);
                    int r = m - 33;
                    int zeros = (r - 1) / 255;
                    s.AddRange(Enumerable.Repeat((byte)0, zeros));
                    s.Add((byte)(r - 255 * zeros));
                }
                lastMatchDistanceAt = s.Count;
                s.AddRange([0, 0]); // distance 1: (1 - 1) << 2, literals to follow in the low bits
                pos += run;
                litStart = pos;
            }
            else
                pos++;
        }
        EmitLiterals(data[litStart..]);
        s.AddRange([0x11, 0, 0]);
        return s.ToArray();
    }

    internal static byte[] Runs(int seed, int length)
    {
        var rnd = new Random(seed);
        var data = new byte[length];
        int at = 0;
        while (at < length)
        {
            int n = Math.Min(length - at, rnd.Next(1, rnd.Next(2) == 0 ? 6 : 700));
            if (rnd.Next(3) == 0)
                rnd.NextBytes(data.AsSpan(at, n));
            else
                data.AsSpan(at, n).Fill((byte)rnd.Next(256));
            at += n;
        }
        return data;
    }

    [Theory]
    [InlineData(1, 4096)]
    [InlineData(2, 4096)]
    [InlineData(3, 65536)]
    [InlineData(4, 17)]
    [InlineData(5, 300)]
    public void Run_length_streams_decode(int seed, int length)
    {
        var data = Runs(seed, length);
        var output = new byte[length];
        Assert.Equal(length, Lzo1x.Decompress(RunLengthEncode(data), output));
        Assert.Equal(data, output);
        var zeros = new byte[length];
        zeros[0] = 7;
        Assert.Equal(length, Lzo1x.Decompress(RunLengthEncode(zeros), output));
        Assert.Equal(zeros, output);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(238)]
    [InlineData(239)]
    [InlineData(273)]
    [InlineData(274)]
    [InlineData(4096)]
    [InlineData(65536)]
    public void Store_only_streams_decode(int length)
    {
        var data = Sample(length, length);
        var output = new byte[length];
        Assert.Equal(length, Lzo1x.Decompress(StoreOnly(data), output));
        Assert.Equal(data, output);
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
