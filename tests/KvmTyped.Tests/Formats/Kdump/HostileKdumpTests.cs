using System.Buffers.Binary;
using System.Diagnostics;
using KvmTyped.Linux;
using KvmTyped.Formats;
using KvmTyped.Formats.Compression;
using KvmTyped.Formats.Kdump;

namespace KvmTyped.Tests.Formats.Kdump;

public class HostileKdumpTests : IDisposable
{
    private readonly TempFiles _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private const int Hdr64 = 12; // 64-bit layout fields sit 12 bytes after the 32-bit ones

    private KvmFormatException OpenFails(byte[] bytes, string expected)
    {
        var path = _tmp.Write(bytes);
        var ex = Assert.Throws<KvmFormatException>(() => KdumpFile.Open(path));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Equal(path, ex.Path);
        return ex;
    }

    private static byte[] Standard(out KdumpWriter w, Func<ulong, PageCodec>? codec = null)
    {
        w = SyntheticKdumpTests.Standard(codec: codec);
        return w.Build();
    }

    private static void Put32(byte[] b, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), v);

    private static void Put64(byte[] b, long at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan((int)at), v);

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    [InlineData(451)]
    [InlineData(463)]
    [InlineData(4096)]
    [InlineData(5000)]
    public void Truncated_headers_are_format_errors(int length)
    {
        var bytes = Standard(out _);
        var path = _tmp.Write(bytes[..length]);
        var ex = Assert.Throws<KvmFormatException>(() => KdumpFile.Open(path));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_truncation_opens_cleanly_or_fails_with_a_format_error()
    {
        var bytes = Standard(out var w, pfn => pfn % 2 == 0 ? PageCodec.Zlib : PageCodec.Zstd);
        var buf = new byte[4096];
        for (int cut = 0; cut < bytes.Length; cut += 97)
        {
            var path = _tmp.Write(bytes[..cut], "cut.kdump");
            KdumpFile k;
            try
            {
                k = KdumpFile.Open(path);
            }
            catch (KvmFormatException)
            {
                continue;
            }
            using (k)
            {
                for (ulong pfn = 0; pfn < 64; pfn++)
                    k.TryRead(pfn * 4096, buf, out _);
                _ = k.Ranges;
            }
        }
    }

    [Fact]
    public void Bad_block_size_is_refused()
    {
        var b = Standard(out _);
        Put32(b, 416 + Hdr64, 5000);
        OpenFails(b, "block_size 5000");
        Put32(b, 416 + Hdr64, 1 << 20);
        OpenFails(b, "block_size");
    }

    [Fact]
    public void Bitmap_past_the_end_is_refused()
    {
        var b = Standard(out _);
        Put32(b, 424 + Hdr64, 4000);
        OpenFails(b, "bitmap_blocks 4000");
    }

    [Fact]
    public void Absurd_max_mapnr_is_refused()
    {
        var b = Standard(out _);
        Put32(b, 428 + Hdr64, 0xffffffff);
        OpenFails(b, "max_mapnr");
        var c = Standard(out _);
        Put64(c, 4096 + 96, 1UL << 60);
        var ex = OpenFails(c, "max_mapnr_64");
        Assert.Equal(4096 + 96, ex.Offset);
        var d = Standard(out _);
        Put64(d, 4096 + 96, 1UL << 20); // more than the bitmaps hold
        OpenFails(d, "needs more bits than the bitmaps hold");
    }

    [Fact]
    public void Implausible_version_is_refused()
    {
        var b = Standard(out _);
        Put32(b, 8, 0x7fff0000);
        OpenFails(b, "header_version");
    }

    [Fact]
    public void Sub_header_offsets_outside_the_file_are_refused()
    {
        var b = Standard(out _);
        Put64(b, 4096 + 32, (ulong)b.Length - 10); // offset_vmcoreinfo
        OpenFails(b, "vmcoreinfo at offset");
        var c = Standard(out _);
        Put64(c, 4096 + 56, ulong.MaxValue); // size_note
        OpenFails(c, "notes at offset");
        var d = Standard(out _);
        Put64(d, 4096 + 64, 1UL << 62); // offset_eraseinfo
        OpenFails(d, "eraseinfo");
    }

    [Fact]
    public void Oversized_vmcoreinfo_is_refused()
    {
        var w = SyntheticKdumpTests.Standard();
        var big = new KdumpWriter { MaxMapnr = 64, VmcoreInfo = new byte[VmcoreInfo.MaxBytes + 1] };
        foreach (var (pfn, page) in w.Pages)
            big.Pages[pfn] = page;
        OpenFails(big.Build(), "size_vmcoreinfo");
    }

    [Fact]
    public void Bad_split_range_is_refused()
    {
        var b = SyntheticKdumpTests.Standard(split: (5, 30)).Build();
        Put64(b, 4096 + 80, 40); // start_pfn_64 after end_pfn_64
        OpenFails(b, "split file's pfn range");
    }

    private (KdumpFile File, KdumpWriter Writer) Damaged(Action<byte[], KdumpWriter> damage, Func<ulong, PageCodec>? codec = null)
    {
        var b = Standard(out var w, codec);
        damage(b, w);
        return (KdumpFile.Open(_tmp.Write(b)), w);
    }

    private static long DescriptorAt(KdumpWriter w, ulong pfn) => w.DescriptorsOffset + 24L * (long)(pfn - 1);

    [Fact]
    public void Descriptor_outside_the_file_fails_the_page_only()
    {
        var (k, _) = Damaged((b, w) => Put64(b, DescriptorAt(w, 7), (ulong)b.Length + 4096));
        using (k)
        {
            var buf = new byte[4096];
            Assert.False(k.TryRead(7 * 4096, buf, out var failure));
            Assert.Contains("pfn 0x7", failure, StringComparison.Ordinal);
            Assert.Contains("outside", failure, StringComparison.Ordinal);
            Assert.True(k.TryRead(8 * 4096, buf, out _));
            var ex = Assert.Throws<KvmReadException>(() => k.Read(7 * 4096 + 8, buf.AsSpan(0, 8)));
            Assert.Equal(7UL * 4096 + 8, ex.Address);
        }
        var (n, _) = Damaged((b, w) => Put64(b, DescriptorAt(w, 7), unchecked((ulong)-5L)));
        using (n)
            Assert.False(n.TryRead(7 * 4096, new byte[8], out _));
    }

    [Fact]
    public void Descriptor_size_beyond_the_page_fails()
    {
        var (k, _) = Damaged((b, w) => Put32(b, (int)DescriptorAt(w, 7) + 8, 4097));
        using (k)
        {
            Assert.False(k.TryRead(7 * 4096, new byte[8], out var failure));
            Assert.Contains("size 4097 is not in 1..4096", failure, StringComparison.Ordinal);
        }
        var (z, _) = Damaged((b, w) => Put32(b, (int)DescriptorAt(w, 7) + 8, 0));
        using (z)
            Assert.False(z.TryRead(7 * 4096, new byte[8], out _));
        var (r, _) = Damaged((b, w) => Put32(b, (int)DescriptorAt(w, 7) + 8, 100)); // raw page of 100 bytes
        using (r)
        {
            Assert.False(r.TryRead(7 * 4096, new byte[8], out var raw));
            Assert.Contains("uncompressed page of 100 bytes", raw, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Unknown_flags_fail()
    {
        var (k, _) = Damaged((b, w) => Put32(b, (int)DescriptorAt(w, 7) + 12, 0x3));
        using (k)
        {
            Assert.False(k.TryRead(7 * 4096, new byte[8], out var failure));
            Assert.Contains("unknown compression flags 0x3", failure, StringComparison.Ordinal);
            Assert.Throws<KvmFormatException>(() => k.ScanCodecs());
        }
    }

    [Fact]
    public void Damaged_compressed_data_fails_the_page()
    {
        var (k, w) = Damaged((b, w) =>
        {
            // Corrupt pfn 7's zlib data (the first data byte is the zlib header).
            b[w.Placed[7].Offset] ^= 0xff;
        }, _ => PageCodec.Zlib);
        using (k)
        {
            Assert.Equal(PageCodec.Zlib, w.Placed[7].Codec);
            Assert.False(k.TryRead(7 * 4096, new byte[8], out var failure));
            Assert.Contains("pfn 0x7", failure, StringComparison.Ordinal);
            Assert.Contains($"0x{w.Placed[7].Offset:x}", failure, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Compressed_data_that_is_not_one_page_fails()
    {
        // Point pfn 7's descriptor at a zstd frame of half a page.
        var half = PageCompressionTestsAccess.Zstd(new byte[2048]);
        var (k, _) = Damaged((b, w) =>
        {
            var at = w.Placed[7].Offset;
            half.CopyTo(b, at);
            Put32(b, (int)DescriptorAt(w, 7) + 8, (uint)half.Length);
            Put32(b, (int)DescriptorAt(w, 7) + 12, 0x20);
        });
        using (k)
        {
            Assert.False(k.TryRead(7 * 4096, new byte[8], out var failure));
            Assert.Contains("2048", failure, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Flattened_damage_is_refused()
    {
        var plain = Standard(out _);
        var flat = KdumpWriter.Flatten(plain, 1000);
        var bad = (byte[])flat.Clone();
        BinaryPrimitives.WriteInt64BigEndian(bad.AsSpan(16), 2);
        OpenFails(bad, "flattened header type is 2");
        bad = (byte[])flat.Clone();
        BinaryPrimitives.WriteInt64BigEndian(bad.AsSpan(4096), -7);
        OpenFails(bad, "negative plain offset");
        bad = (byte[])flat.Clone();
        BinaryPrimitives.WriteInt64BigEndian(bad.AsSpan(4096 + 8), 1L << 40);
        OpenFails(bad, "passes the end of the file");
        bad = (byte[])flat.Clone();
        BinaryPrimitives.WriteInt64BigEndian(bad.AsSpan(4096), long.MaxValue - 10);
        OpenFails(bad, "overflows");
        OpenFails(flat[..4100], "record header is truncated");
        OpenFails(flat[..100], "flattened header is truncated");
        // A stream whose records leave a hole where the headers are: the plain header cannot be read.
        var hole = KdumpWriter.Flatten(plain, 1000);
        BinaryPrimitives.WriteInt64BigEndian(hole.AsSpan(4096), 1L << 30);
        Assert.Throws<KvmFormatException>(() => KdumpFile.Open(_tmp.Write(hole)));
    }

    [Fact]
    public void Flattened_record_far_away_does_not_make_room_for_huge_bitmaps()
    {
        var plain = Standard(out _);
        Put32(plain, 424 + Hdr64, 1 << 20);          // bitmap_blocks: 4 GiB of bitmaps
        Put32(plain, 428 + Hdr64, 0x7fffffff);        // max_mapnr to match
        Put64(plain, 4096 + 96, 0x7fffffff);
        var flat = KdumpWriter.Flatten(plain, 1 << 20).ToList();
        // Append one byte placed 2^40 bytes into the plain file before the end mark.
        var rec = new byte[17];
        BinaryPrimitives.WriteInt64BigEndian(rec, 1L << 40);
        BinaryPrimitives.WriteInt64BigEndian(rec.AsSpan(8), 1);
        flat.InsertRange(flat.Count - 16, rec);
        var before = GC.GetAllocatedBytesForCurrentThread();
        OpenFails(flat.ToArray(), "larger than");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20);
    }

    [Fact]
    public void Random_damage_never_escapes_as_another_exception_and_stays_fast()
    {
        var original = Standard(out var w, pfn => (pfn % 4) switch { 0 => PageCodec.Zlib, 1 => PageCodec.Snappy, 2 => PageCodec.Zstd, _ => PageCodec.Raw });
        var rnd = new Random(7);
        var buf = new byte[4096];
        int opened = 0;
        for (int round = 0; round < 300; round++)
        {
            var b = (byte[])original.Clone();
            int flips = rnd.Next(1, 8);
            for (int i = 0; i < flips; i++)
            {
                // Aim at the header, sub-header, bitmaps, descriptors and data in turn.
                int region = rnd.Next(4);
                int at = region switch
                {
                    0 => rnd.Next(0, 480),
                    1 => 4096 + rnd.Next(0, 104),
                    2 => (int)w.DescriptorsOffset + rnd.Next(0, 24 * 40),
                    _ => rnd.Next(0, b.Length),
                };
                b[at] ^= (byte)rnd.Next(1, 256);
            }
            var path = _tmp.Write(b, "fuzz.kdump");
            KdumpFile k;
            try
            {
                k = KdumpFile.Open(path);
            }
            catch (KvmFormatException)
            {
                continue;
            }
            opened++;
            using (k)
            {
                for (ulong pfn = 0; pfn < 64; pfn++)
                    k.TryRead(pfn * 4096, buf, out _);
                try
                {
                    k.ScanCodecs();
                }
                catch (KvmFormatException)
                {
                }
            }
        }
        Assert.True(opened > 50, $"only {opened} damaged files opened: the fuzzing does not reach the pages");
    }

    [Fact]
    public void Damaged_flattened_streams_fail_cleanly()
    {
        var plain = Standard(out _, pfn => pfn % 2 == 0 ? PageCodec.Zlib : PageCodec.Raw);
        var flat = KdumpWriter.Flatten(plain, 700, shuffleSeed: 3);
        var rnd = new Random(11);
        var buf = new byte[4096];
        int opened = 0;
        for (int round = 0; round < 200; round++)
        {
            var b = (byte[])flat.Clone();
            for (int i = 0; i < rnd.Next(1, 4); i++)
            {
                // Aim at record headers: every record is 16 + 700 bytes apart after the 4096-byte header.
                int record = rnd.Next(0, (b.Length - 4096) / 716);
                b[4096 + record * 716 + rnd.Next(0, 16)] ^= (byte)rnd.Next(1, 256);
            }
            KdumpFile k;
            try
            {
                k = KdumpFile.Open(_tmp.Write(b, "flatfuzz.kdump"));
            }
            catch (KvmFormatException)
            {
                continue;
            }
            opened++;
            using (k)
            {
                for (ulong pfn = 0; pfn < 64; pfn++)
                    k.TryRead(pfn * 4096, buf, out _);
            }
        }
        Assert.True(opened > 0);
    }

    [Fact]
    public void Not_a_kdump_is_refused()
    {
        Assert.False(KdumpFile.IsKdump([0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0]));
        Assert.False(KdumpFile.IsKdump([]));
        OpenFails(new byte[8192], "signature");
        var missing = System.IO.Path.Combine(_tmp.Root, "absent.kdump");
        var ex = Assert.Throws<KvmOpenException>(() => KdumpFile.Open(missing));
        Assert.Contains("absent.kdump", ex.Message, StringComparison.Ordinal);
    }
}

internal static class PageCompressionTestsAccess
{
    public static byte[] Zstd(byte[] data) => new ZstdSharp.Compressor(3).Wrap(data).ToArray();
}
