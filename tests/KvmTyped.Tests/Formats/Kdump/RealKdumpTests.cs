using System.Text.Json;
using KvmTyped.Formats;
using KvmTyped.Formats.Compression;
using KvmTyped.Formats.Kdump;
using KvmTyped.TestSupport;

namespace KvmTyped.Tests.Formats.Kdump;

public class RealKdumpTests
{
    private const string Amd64Lzo = "amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump";
    private const string Amd64Elf = "amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz";
    private const string I386Zlib = "i386/pae-kdump-kaslr/vmcore.mdf-zlib-d31.kdump";
    private const string I386Elf = "i386/pae-kdump-kaslr/vmcore.mdf-d31.elf.gz";

    private static JsonElement Truth(string dumpRelative)
    {
        var dir = System.IO.Path.GetDirectoryName(dumpRelative)!;
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Get(System.IO.Path.Combine(dir, "truth.json"))));
        return doc.RootElement.Clone();
    }

    private static string TruthRelease(string dumpRelative) => Truth(dumpRelative).GetProperty("uname_a").GetString()!.Split(' ')[2];

    [Fact]
    public void Amd64_lzo_header_matches_the_dump()
    {
        var path = Fixtures.Get(Amd64Lzo);
        var first = new byte[64];
        using (var f = File.OpenRead(path))
            f.ReadExactly(first);
        Assert.True(KdumpFile.IsKdump(first));

        using var k = KdumpFile.Open(path);
        var h = k.Header;
        Assert.Equal("KDUMP   ", h.Signature);
        Assert.Equal(6, h.Version);
        Assert.Equal(KdumpHeaderLayout.Bits64, h.Layout);
        Assert.False(h.IsBigEndian);
        Assert.Equal(4096, k.PageSize);
        Assert.Equal(0x17fddUL, k.MaxMapnr);
        Assert.Equal("Linux", h.SysName);
        Assert.Equal("lab-guest", h.NodeName);
        Assert.Equal(TruthRelease(Amd64Lzo), h.Release);
        Assert.Equal("x86_64", h.Machine);
        Assert.Equal("(none)", h.DomainName);
        Assert.StartsWith("#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2", h.KernelVersion, StringComparison.Ordinal);
        Assert.Equal(31, h.DumpLevel);
        Assert.False(h.IsSplit);
        Assert.False(k.IsIncomplete);
        Assert.Equal(2, h.CpuCount);
        var truthPhysBase = Convert.ToUInt64(Truth(Amd64Lzo).GetProperty("kernel_values_runtime").GetProperty("phys_base").GetProperty("value_native_long").GetString(), 16);
        Assert.Equal(truthPhysBase, h.PhysBase);
        Assert.Equal(KdumpCodecs.Lzo, h.DeclaredCodecs);
        Assert.Equal(KdumpCodecs.Lzo | KdumpCodecs.Raw, k.ScanCodecs());
        Assert.Equal(KernelMachine.X86_64, k.Machine);
        Assert.Equal(DataModel.LP64, k.DataModelEvidence);
        Assert.Equal(19640UL, k.DumpedPageCount);
        Assert.False(k.IsFlattened);
        Assert.Equal("kdump-compressed", k.FormatName);
    }

    [Fact]
    public void I386_zlib_header_uses_the_32_bit_layout()
    {
        using var k = KdumpFile.Open(Fixtures.Get(I386Zlib));
        var h = k.Header;
        Assert.Equal(6, h.Version);
        Assert.Equal(KdumpHeaderLayout.Bits32, h.Layout);
        Assert.Equal(TruthRelease(I386Zlib), h.Release);
        Assert.Equal("i686", h.Machine);
        Assert.Equal(KernelMachine.X86, k.Machine);
        Assert.Equal(DataModel.ILP32, k.DataModelEvidence);
        Assert.Equal(0x17fddUL, k.MaxMapnr);
        Assert.Equal(KdumpCodecs.Zlib, h.DeclaredCodecs);
        Assert.Equal(KdumpCodecs.Zlib | KdumpCodecs.Raw, k.ScanCodecs());
        Assert.Equal(0x11b0L, h.OffsetVmcoreInfo);
        Assert.Equal(0xb39UL, h.SizeVmcoreInfo);
        Assert.Equal(0x1050L, h.OffsetNote);
        Assert.Equal(0xc9cUL, h.SizeNote);
        Assert.Equal((int)h.SizeNote, k.NoteBytes.Length);
        Assert.Equal(8464UL, k.DumpedPageCount);
    }

    [Theory]
    [InlineData(Amd64Lzo)]
    [InlineData(I386Zlib)]
    public void Vmcoreinfo_release_is_the_ground_truth(string dump)
    {
        using var k = KdumpFile.Open(Fixtures.Get(dump));
        Assert.NotNull(k.VmcoreInfo);
        Assert.Equal(TruthRelease(dump), k.VmcoreInfo!.OsRelease);
        Assert.Equal(4096, k.VmcoreInfo.PageSize);
        Assert.Equal((int)k.Header.SizeVmcoreInfo, k.VmcoreInfoBytes.Length);
        // The VMCOREINFO note among the ELF notes holds the same text.
        var note = KdumpFile.FindNote(k.NoteBytes, "VMCOREINFO", false);
        Assert.NotNull(note);
        Assert.Equal(TruthRelease(dump), KvmTyped.Formats.VmcoreInfo.Parse(note!.Value.Span).OsRelease);
    }

    [Theory]
    [InlineData(Amd64Lzo, Amd64Elf, (int)(PageCodec.Lzo))]
    [InlineData(I386Zlib, I386Elf, (int)(PageCodec.Zlib))]
    public void Every_page_in_both_dumps_has_the_same_bytes(string kdump, string elf, int codecValue)
    {
        var codec = (PageCodec)codecValue;
        using var k = KdumpFile.Open(Fixtures.Get(kdump));
        using var e = new ElfCoreLoads(Fixtures.Get(elf));
        var a = new byte[4096];
        var b = new byte[4096];
        int compared = 0, compressed = 0, raw = 0;
        for (ulong pfn = 0; pfn < k.MaxMapnr; pfn++)
        {
            var c = k.GetPageCodec(pfn);
            if (c is null || !e.TryReadPage(pfn * 4096, b))
                continue;
            Assert.True(k.TryRead(pfn * 4096, a, out var failure), failure);
            if (!a.AsSpan().SequenceEqual(b))
                Assert.Fail($"pfn 0x{pfn:x} ({c}) differs between {kdump} and {elf}");
            compared++;
            if (c == codec)
                compressed++;
            else if (c == PageCodec.Raw)
                raw++;
        }
        Assert.True(compared > 5000, $"only {compared} pages compared");
        Assert.True(compressed > 1000 && raw > 100, $"compressed {compressed}, raw {raw}");
    }

    [Fact]
    public void Unaligned_reads_across_pages_match_whole_page_reads()
    {
        using var k = KdumpFile.Open(Fixtures.Get(Amd64Lzo));
        // The kernel text at 0x7600000 is dumped: read 3 pages, then an unaligned span across their boundaries.
        var whole = new byte[3 * 4096];
        k.Read(0x7600000, whole);
        var part = new byte[5000];
        k.Read(0x7600000 + 3000, part);
        Assert.Equal(whole.AsSpan(3000, 5000).ToArray(), part);
        Assert.Contains(whole, x => x != 0);
    }

    [Fact]
    public void Excluded_and_missing_pages_say_why()
    {
        var path = Fixtures.Get(Amd64Lzo);
        using var k = KdumpFile.Open(path);
        var buf = new byte[8];
        // pfn 0 is not RAM (bitmap 1 starts at 0x100); 0xd000.. is the crash kernel's reserved region.
        Assert.False(k.TryRead(0x0, buf, out var f0));
        Assert.Contains("not in the dump", f0, StringComparison.Ordinal);
        Assert.Contains("pfn 0x0", f0, StringComparison.Ordinal);
        Assert.False(k.TryRead(0xd000000, buf, out var f1));
        Assert.Contains("not in the dump", f1, StringComparison.Ordinal);
        Assert.False(k.TryRead(0x17fdd000, buf, out var f2));
        Assert.Contains("max_mapnr", f2, StringComparison.Ordinal);

        ulong excluded = FirstExcluded(k);
        Assert.False(k.TryRead(excluded * 4096 + 16, buf, out var f3));
        Assert.Contains("page excluded from dump", f3, StringComparison.Ordinal);
        Assert.Contains($"pfn 0x{excluded:x}", f3, StringComparison.Ordinal);
        var ex = Assert.Throws<KvmReadException>(() => k.Read(excluded * 4096, buf));
        Assert.Equal(excluded * 4096, ex.Address);

        using var z = KdumpFile.Open(path, options: new KdumpOptions { ZeroFillExcluded = true });
        buf.AsSpan().Fill(0xff);
        Assert.True(z.TryRead(excluded * 4096 + 16, buf, out var f4), f4);
        Assert.All(buf, x => Assert.Equal(0, x));
        Assert.False(z.TryRead(0xd000000, buf, out _));
    }

    internal static ulong FirstExcluded(KdumpFile k)
    {
        var buf = new byte[1];
        for (ulong pfn = 0x100; pfn < k.MaxMapnr; pfn++)
        {
            if (!k.TryRead(pfn * 4096, buf, out var f) && f.Contains("excluded", StringComparison.Ordinal))
                return pfn;
        }
        throw new InvalidOperationException("no excluded page");
    }

    [Fact]
    public void Ranges_are_the_ram_bitmap()
    {
        using var k = KdumpFile.Open(Fixtures.Get(Amd64Lzo));
        Assert.Equal(
            [new PhysicalRange(0x100000, 0xd000000 - 0x100000, "vmcore.mdf-lzo-d31.kdump"), new PhysicalRange(0x17000000, 0x17fdd000 - 0x17000000, "vmcore.mdf-lzo-d31.kdump")],
            k.Ranges);
        using var i = KdumpFile.Open(Fixtures.Get(I386Zlib));
        Assert.Equal([0x1000UL, 0x100000UL, 0x17000000UL], i.Ranges.Select(r => r.Start));
        Assert.Equal([0x9f000UL, 0xf000000UL, 0x17fdd000UL], i.Ranges.Select(r => r.End));
    }

    [Fact]
    public void Concurrent_readers_see_whole_pages()
    {
        using var k = KdumpFile.Open(Fixtures.Get(I386Zlib), options: new KdumpOptions { CachePages = 8 });
        var pfns = Enumerable.Range(0x7000, 0x200).Select(x => (ulong)x).Where(p => k.GetPageCodec(p) is not null).ToArray();
        var expected = pfns.ToDictionary(p => p, p =>
        {
            var b = new byte[4096];
            k.Read(p * 4096, b);
            return b;
        });
        Parallel.For(0, 4, t =>
        {
            var b = new byte[4096];
            var rnd = new Random(t);
            for (int i = 0; i < 3000; i++)
            {
                var p = pfns[rnd.Next(pfns.Length)];
                k.Read(p * 4096, b);
                if (!b.AsSpan().SequenceEqual(expected[p]))
                    throw new InvalidOperationException($"torn page 0x{p:x}");
            }
        });
    }

    [Fact]
    public void Read_only_handle_refuses_writes()
    {
        using var k = KdumpFile.Open(Fixtures.Get(Amd64Lzo));
        Assert.False(k.IsWritable);
        var ex = Assert.Throws<KvmWriteException>(() => k.Write(0x7600000, new byte[4]));
        Assert.Contains("read-only", ex.Message, StringComparison.Ordinal);
    }
}
