using System.Buffers.Binary;
using System.Text;
using KvmTyped.Formats;
using KvmTyped.Formats.Compression;
using KvmTyped.Formats.Kdump;
using KvmTyped.Tests.Formats.Compression;

namespace KvmTyped.Tests.Formats.Kdump;

public class SyntheticKdumpTests : IDisposable
{
    private readonly TempFiles _tmp = new();

    public void Dispose() => _tmp.Dispose();

    internal static byte[] PageOf(ulong pfn, int size = 4096)
    {
        var text = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, size / 16 + 1).Select(i => $"pfn{pfn:x5}:{i:x6}\n")));
        return text[..size];
    }

    internal static byte[] Vmcoreinfo(string release) => Encoding.ASCII.GetBytes($"OSRELEASE={release}\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a0a000\n");

    internal static byte[] Note(string name, uint type, byte[] desc, bool bigEndian = false)
    {
        var n = Encoding.ASCII.GetBytes(name + "\0");
        var b = new byte[12 + ((n.Length + 3) & ~3) + ((desc.Length + 3) & ~3)];
        if (bigEndian)
        {
            BinaryPrimitives.WriteUInt32BigEndian(b, (uint)n.Length);
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), (uint)desc.Length);
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8), type);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)n.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), (uint)desc.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), type);
        }
        n.CopyTo(b, 12);
        desc.CopyTo(b, 12 + ((n.Length + 3) & ~3));
        return b;
    }

    /// <summary>A small machine: pfns 0–63; 1–40 dumped (10 and 20 all-zero), 41–50 excluded, the rest not RAM.</summary>
    internal static KdumpWriter Standard(KdumpHeaderLayout layout = KdumpHeaderLayout.Bits64, int version = 6,
        Func<ulong, PageCodec>? codec = null, bool bigEndian = false, int blockSize = 4096, (ulong, ulong)? split = null,
        int? incompleteAfter = null, string machine = "x86_64")
    {
        var w = new KdumpWriter
        {
            Layout = layout, Version = version, BigEndian = bigEndian, BlockSize = blockSize, MaxMapnr = 64,
            CodecOf = codec ?? (_ => PageCodec.Raw), PhysBase = 0xffffffffeaa00000UL & (layout == KdumpHeaderLayout.Bits32 ? 0xffffffffUL : ulong.MaxValue),
            Notes = version >= 4 ? Note("VMCOREINFO", 0, Vmcoreinfo("6.1.0-note")) : null,
            VmcoreInfo = version >= 3 ? Vmcoreinfo("6.1.0-test") : null,
            EraseInfo = version >= 5 ? Encoding.ASCII.GetBytes("erase init_task.comm size 16\n") : null,
            Split = split, IncompleteAfter = incompleteAfter, Machine = machine,
        };
        for (ulong pfn = 1; pfn <= 40; pfn++)
            w.Pages[pfn] = pfn is 10 or 20 ? new byte[blockSize] : PageOf(pfn, blockSize);
        for (ulong pfn = 41; pfn <= 50; pfn++)
            w.Excluded.Add(pfn);
        return w;
    }

    private static void AssertPages(KdumpFile k, KdumpWriter w)
    {
        int bs = w.BlockSize;
        var buf = new byte[bs];
        foreach (var (pfn, page) in w.Pages)
        {
            Assert.True(k.TryRead(pfn * (ulong)bs, buf, out var failure), failure);
            Assert.Equal(page, buf);
        }
        Assert.False(k.TryRead(45UL * (ulong)bs, buf, out var excluded));
        Assert.Contains("page excluded from dump (pfn 0x2d)", excluded, StringComparison.Ordinal);
        Assert.False(k.TryRead(60UL * (ulong)bs, buf, out var notRam));
        Assert.Contains("not in the dump", notRam, StringComparison.Ordinal);
        Assert.False(k.TryRead(0, buf, out _));
    }

    public static TheoryData<int, int> Variants()
    {
        var d = new TheoryData<int, int>();
        foreach (var l in new[] { KdumpHeaderLayout.Bits32, KdumpHeaderLayout.Bits64 })
        for (int v = 1; v <= 6; v++)
            d.Add((int)l, v);
        return d;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Every_layout_and_version_reads_back(int layoutValue, int version)
    {
        var layout = (KdumpHeaderLayout)layoutValue;
        var w = Standard(layout, version, codec: pfn => (pfn % 3) switch { 0 => PageCodec.Zlib, 1 => PageCodec.Zstd, _ => PageCodec.Raw });
        var path = _tmp.Write(w.Build());
        using var k = KdumpFile.Open(path);
        var h = k.Header;
        Assert.Equal(layout, h.Layout);
        Assert.Equal(version, h.Version);
        Assert.Equal("6.1.0-test", h.Release);
        Assert.Equal("x86_64", h.Machine);
        Assert.Equal("synthetic", h.NodeName);
        Assert.Equal(1_700_000_000, h.TimestampSeconds);
        Assert.Equal(123, h.TimestampMicroseconds);
        Assert.Equal(64UL, k.MaxMapnr);
        Assert.Equal(2, h.CpuCount);
        Assert.Equal(w.PhysBase, h.PhysBase);
        Assert.Equal(31, h.DumpLevel);
        Assert.Equal(40UL, k.DumpedPageCount);
        Assert.Equal(KdumpCodecs.Zlib | KdumpCodecs.Zstd, h.DeclaredCodecs);
        Assert.Equal(KdumpCodecs.Zlib | KdumpCodecs.Zstd | KdumpCodecs.Raw, k.ScanCodecs());
        if (version >= 3)
            Assert.Equal("6.1.0-test", k.VmcoreInfo?.OsRelease);
        else
            Assert.Null(k.VmcoreInfo);
        Assert.Equal(version >= 4 ? w.Notes!.Length : 0, k.NoteBytes.Length);
        Assert.Equal(version >= 5 ? w.EraseInfo!.Length : 0, (int)h.SizeEraseInfo);
        AssertPages(k, w);
        Assert.Equal([new PhysicalRange(4096, 50 * 4096, System.IO.Path.GetFileName(path))], k.Ranges);
    }

    [Fact]
    public void Vmcoreinfo_falls_back_to_the_note()
    {
        var w = Standard(version: 4);
        var noVmci = new KdumpWriter
        {
            Version = 4, MaxMapnr = 64, Notes = Note("CORE", 1, new byte[40]).Concat(Note("VMCOREINFO", 0, Vmcoreinfo("6.1.0-note"))).ToArray(),
        };
        foreach (var (pfn, page) in w.Pages)
            noVmci.Pages[pfn] = page;
        using var k = KdumpFile.Open(_tmp.Write(noVmci.Build()));
        Assert.Equal("6.1.0-note", k.VmcoreInfo?.OsRelease);
        Assert.Equal(DataModel.LP64, k.DataModelEvidence);
    }

    [Fact]
    public void Big_endian_files_read_back()
    {
        var w = Standard(KdumpHeaderLayout.Bits64, 6, codec: _ => PageCodec.Zlib, bigEndian: true, machine: "s390x");
        using var k = KdumpFile.Open(_tmp.Write(w.Build()));
        Assert.True(k.Header.IsBigEndian);
        Assert.Equal("6.1.0-test", k.VmcoreInfo?.OsRelease);
        Assert.Equal(w.Notes!.Length, k.NoteBytes.Length);
        AssertPages(k, w);
    }

    [Fact]
    public void Machine_not_layout_gives_the_data_model()
    {
        // QEMU writes the 64-bit layout for an i386 guest.
        var w = Standard(KdumpHeaderLayout.Bits64, 6, machine: "i686");
        using var k = KdumpFile.Open(_tmp.Write(w.Build()));
        Assert.Equal(KdumpHeaderLayout.Bits64, k.Header.Layout);
        Assert.Equal(KernelMachine.X86, k.Machine);
        Assert.Equal(DataModel.ILP32, k.DataModelEvidence);
        // With utsname empty (as QEMU leaves it), VMCOREINFO's symbol width decides.
        using var q = KdumpFile.Open(_tmp.Write(Standard(KdumpHeaderLayout.Bits64, 6, machine: "").Build()));
        Assert.Equal(KernelMachine.Unknown, q.Machine);
        Assert.Equal(DataModel.LP64, q.DataModelEvidence);
        // Other architectures: the width of their long.
        using var s390 = KdumpFile.Open(_tmp.Write(Standard(KdumpHeaderLayout.Bits64, 2, machine: "s390x").Build()));
        Assert.Equal(DataModel.LP64, s390.DataModelEvidence);
        using var arm = KdumpFile.Open(_tmp.Write(Standard(KdumpHeaderLayout.Bits32, 2, machine: "armv7l").Build()));
        Assert.Equal(DataModel.ILP32, arm.DataModelEvidence);
        using var none = KdumpFile.Open(_tmp.Write(Standard(KdumpHeaderLayout.Bits64, 2, machine: "").Build()));
        Assert.Null(none.DataModelEvidence);
    }

    [Fact]
    public void Lzo_pages_read_back_without_lzop()
    {
        var w = new KdumpWriter { MaxMapnr = 64, CodecOf = _ => PageCodec.Lzo, LzoRunLength = true };
        for (ulong pfn = 1; pfn <= 30; pfn++)
            w.Pages[pfn] = Lzo1xTests.Runs((int)pfn, 4096);
        using var k = KdumpFile.Open(_tmp.Write(w.Build()));
        Assert.True(w.Placed.Values.Count(p => p.Codec == PageCodec.Lzo) > 20);
        Assert.Equal(KdumpCodecs.Lzo, k.Header.DeclaredCodecs);
        var buf = new byte[4096];
        foreach (var (pfn, page) in w.Pages)
        {
            k.Read(pfn * 4096, buf);
            Assert.Equal(page, buf);
        }
    }

    [RequiresToolFact("lzop")]
    public void Lzo_pages_made_by_lzop_read_back() => Each_codec_reads_back((int)PageCodec.Lzo);

    [Theory]
    [InlineData((int)(PageCodec.Raw))]
    [InlineData((int)(PageCodec.Zlib))]
    [InlineData((int)(PageCodec.Snappy))]
    [InlineData((int)(PageCodec.Zstd))]
    public void Each_codec_reads_back(int codecValue)
    {
        var codec = (PageCodec)codecValue;
        var w = Standard(codec: _ => codec);
        using var k = KdumpFile.Open(_tmp.Write(w.Build()));
        AssertPages(k, w);
        Assert.Equal(codec, k.GetPageCodec(5));
        Assert.Equal(PageCodec.Raw, k.GetPageCodec(10)); // the shared zero page
        Assert.Null(k.GetPageCodec(45));
        var expected = codec switch
        {
            PageCodec.Zlib => KdumpCodecs.Zlib, PageCodec.Lzo => KdumpCodecs.Lzo, PageCodec.Snappy => KdumpCodecs.Snappy,
            PageCodec.Zstd => KdumpCodecs.Zstd, _ => KdumpCodecs.None,
        };
        Assert.Equal(expected | KdumpCodecs.Raw, k.ScanCodecs());
    }

    [Fact]
    public void Large_pages_read_back()
    {
        var w = Standard(blockSize: 65536, codec: _ => PageCodec.Zstd);
        using var k = KdumpFile.Open(_tmp.Write(w.Build()));
        Assert.Equal(65536, k.PageSize);
        AssertPages(k, w);
    }

    [Fact]
    public void Diskdump_signature_has_no_sub_header()
    {
        var w = new KdumpWriter { Signature = "DISKDUMP", Version = 1, MaxMapnr = 64 };
        w.Pages[3] = PageOf(3);
        using var k = KdumpFile.Open(_tmp.Write(w.Build()));
        Assert.Equal("DISKDUMP", k.Header.Signature);
        Assert.False(k.Header.HasSubHeader);
        var buf = new byte[4096];
        k.Read(3 * 4096, buf);
        Assert.Equal(w.Pages[3], buf);
    }

    [Theory]
    [InlineData(1 << 20, null, false)]
    [InlineData(1000, null, false)]
    [InlineData(777, 5, false)]
    [InlineData(4096, 6, true)]
    public void Flattened_files_read_like_plain_ones(int recordSize, int? shuffle, bool garbage)
    {
        var w = Standard(codec: pfn => pfn % 2 == 0 ? PageCodec.Zlib : PageCodec.Snappy);
        var plain = w.Build();
        var flat = KdumpWriter.Flatten(plain, recordSize, shuffle, garbage);
        var first = flat.AsSpan(0, 64);
        Assert.True(KdumpFile.IsKdump(first));
        using var k = KdumpFile.Open(_tmp.Write(flat));
        Assert.True(k.IsFlattened);
        Assert.Equal("kdump-compressed (flattened)", k.FormatName);
        Assert.Equal("6.1.0-test", k.VmcoreInfo?.OsRelease);
        AssertPages(k, w);
    }

    [Fact]
    public void Flattened_elf_is_not_a_kdump()
    {
        var elf = new byte[8192];
        new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1 }.CopyTo(elf, 0);
        var flat = KdumpWriter.Flatten(elf, 4096);
        Assert.False(KdumpFile.IsKdump(flat.AsSpan(0, 8192)));
        Assert.True(KdumpFile.IsKdump(flat.AsSpan(0, 64))); // too little to tell: say yes, the open will check
        Assert.True(KdumpFile.IsKdump(KdumpWriter.Flatten(Standard().Build(), 4096).AsSpan(0, 8192)));
        var ex = Assert.Throws<KvmFormatException>(() => KdumpFile.Open(_tmp.Write(flat)));
        Assert.Contains("signature", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Split_set_opens_as_one_view()
    {
        var paths = new List<string>();
        var whole = Standard(codec: _ => PageCodec.Zlib);
        foreach (var (s, e) in new (ulong, ulong)[] { (0, 15), (15, 33), (33, 64) })
            paths.Add(_tmp.Write(Standard(codec: _ => PageCodec.Zlib, split: (s, e)).Build()));
        paths.Reverse();
        using var k = KdumpFile.OpenSet(paths);
        Assert.Equal(3, k.Headers.Count);
        Assert.All(k.Headers, h => Assert.True(h.IsSplit));
        Assert.Equal([0UL, 15UL, 33UL], k.Headers.Select(h => h.StartPfn));
        Assert.Equal([15UL, 33UL, 64UL], k.Headers.Select(h => h.EndPfn));
        Assert.Equal(40UL, k.DumpedPageCount);
        AssertPages(k, whole);
        Assert.Equal(KdumpCodecs.Zlib | KdumpCodecs.Raw, k.ScanCodecs());
        Assert.Equal(new PhysicalRange(4096, 50 * 4096, System.IO.Path.GetFileName(paths[2])), Assert.Single(k.Ranges));

        // One file alone reads its own pages and says where the others are.
        using var middle = KdumpFile.Open(paths[1]);
        var buf = new byte[4096];
        middle.Read(20 * 4096, buf);
        Assert.False(middle.TryRead(5 * 4096, buf, out var elsewhere));
        Assert.Contains("split set that was not opened", elsewhere, StringComparison.Ordinal);
    }

    [Fact]
    public void Split_set_rejects_overlap_and_mismatch()
    {
        var a = _tmp.Write(Standard(split: (0, 20)).Build());
        var b = _tmp.Write(Standard(split: (10, 64)).Build());
        var ex = Assert.Throws<KvmFormatException>(() => KdumpFile.OpenSet([a, b]));
        Assert.Contains("overlaps", ex.Message, StringComparison.Ordinal);
        var c = _tmp.Write(Standard(split: (20, 64), blockSize: 8192).Build());
        Assert.Throws<KvmFormatException>(() => KdumpFile.OpenSet([a, c]));
        var whole = _tmp.Write(Standard().Build());
        var ex2 = Assert.Throws<KvmFormatException>(() => KdumpFile.OpenSet([a, whole]));
        Assert.Contains("not a split file", ex2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Incomplete_dump_reads_what_was_written()
    {
        var w = Standard(codec: _ => PageCodec.Zlib, incompleteAfter: 12);
        var bytes = w.Build();
        using var k = KdumpFile.Open(_tmp.Write(bytes));
        Assert.True(k.IsIncomplete);
        var buf = new byte[4096];
        k.Read(5 * 4096, buf);
        Assert.Equal(w.Pages[5], buf);
        Assert.False(k.TryRead(30 * 4096, buf, out var failure));
        Assert.Contains("incomplete", failure, StringComparison.Ordinal);
        Assert.Contains("pfn 0x1e", failure, StringComparison.Ordinal);

        // Cut inside the descriptor table: the open still works; later pages say the dump is incomplete.
        var cut = bytes.AsSpan(0, (int)w.DescriptorsOffset + 24 * 20 + 7).ToArray();
        using var t = KdumpFile.Open(_tmp.Write(cut));
        Assert.False(t.TryRead(35 * 4096, buf, out var past));
        Assert.Contains("incomplete", past, StringComparison.Ordinal);
        Assert.Contains("past the end of the file", past, StringComparison.Ordinal);
    }

    [Fact]
    public void Zero_fill_option_reads_excluded_pages_as_zeros()
    {
        var w = Standard();
        using var k = KdumpFile.Open(_tmp.Write(w.Build()), options: new KdumpOptions { ZeroFillExcluded = true });
        var buf = new byte[4096];
        buf.AsSpan().Fill(1);
        k.Read(45 * 4096, buf);
        Assert.All(buf, b => Assert.Equal(0, b));
        Assert.False(k.TryRead(60 * 4096, buf, out var notRam));
        Assert.Contains("not in the dump", notRam, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Writes_land_in_raw_pages_only(bool flattened)
    {
        var w = Standard(codec: pfn => pfn % 2 == 0 ? PageCodec.Zlib : PageCodec.Raw);
        var plain = w.Build();
        var path = _tmp.Write(flattened ? KdumpWriter.Flatten(plain, 1 << 20) : plain);
        var before = File.ReadAllBytes(path);
        using (var k = KdumpFile.Open(path, writable: true))
        {
            Assert.True(k.IsWritable);
            var buf = new byte[4096];
            k.Read(5 * 4096, buf); // cache the page, to see the write replace it
            k.Write(5 * 4096 + 100, "written"u8);
            k.Read(5 * 4096, buf);
            Assert.Equal("written", Encoding.ASCII.GetString(buf, 100, 7));
            var compressed = Assert.Throws<KvmWriteException>(() => k.Write(4 * 4096, "x"u8));
            Assert.Contains("Zlib-compressed", compressed.Message, StringComparison.Ordinal);
            var zero = Assert.Throws<KvmWriteException>(() => k.Write(10 * 4096, "x"u8));
            Assert.Contains("zero page", zero.Message, StringComparison.Ordinal);
            var excluded = Assert.Throws<KvmWriteException>(() => k.Write(45 * 4096, "x"u8));
            Assert.Contains("excluded", excluded.Message, StringComparison.Ordinal);
            // A write that would cross into a compressed page writes nothing.
            Assert.Throws<KvmWriteException>(() => k.Write(5 * 4096 + 4090, "0123456789"u8));
        }
        var after = File.ReadAllBytes(path);
        var diff = Enumerable.Range(0, after.Length).Where(i => after[i] != before[i]).ToArray();
        long fileAt = w.Placed[5].Offset + 100 + (flattened ? 4096 + 16 : 0);
        Assert.Equal(Enumerable.Range((int)fileAt, 7).Where(i => before[i] != "written"u8[i - (int)fileAt]), diff);
        using var again = KdumpFile.Open(path);
        var page = new byte[4096];
        again.Read(5 * 4096, page);
        Assert.Equal("written", Encoding.ASCII.GetString(page, 100, 7));
    }

    [Fact]
    public void Closed_file_fails_reads()
    {
        var k = KdumpFile.Open(_tmp.Write(Standard().Build()));
        k.Dispose();
        Assert.False(k.TryRead(4096, new byte[8], out var failure));
        Assert.Contains("closed", failure, StringComparison.Ordinal);
        Assert.Throws<KvmClosedException>(() => k.Write(4096, new byte[1]));
        k.Dispose();
    }
}
