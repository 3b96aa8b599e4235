using System.Buffers.Binary;
using KvmTyped.Formats.Lime;
using KvmTyped.IO;
using KvmTyped.TestSupport;
using KvmTyped.Tests.TestSupport;

namespace KvmTyped.Tests.Formats.Lime;

/// <summary>LiME files (LiME's format=lime, AVML's output) and AVML's compressed variant read back the memory written,
/// at any address and length, and open as cores; damaged files end in <see cref="KvmFormatException"/> naming the
/// offset and what was expected.</summary>
public class LimeMemoryTests
{
    private static byte[] Pattern(int size, int seed)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        // Runs of zeros and repeats, so snappy has something to compress and chunks differ in size.
        for (var i = 0; i < size; i += 8192)
            data.AsSpan(i, Math.Min(3000, size - i)).Fill((byte)(i >> 13));
        return data;
    }

    private static LimeMemory Open(TempDir d, byte[] file, bool writable = false) =>
        LimeMemory.Open(RandomAccessFile.Open(d.File("mem.lime", file), writable));

    public static TheoryData<bool> Compressed => new() { false, true };

    [Theory]
    [MemberData(nameof(Compressed))]
    public void Every_range_reads_back_at_any_address_and_length(bool compressed)
    {
        using var d = new TempDir();
        var low = Pattern(0x9f000 - 0x1000, 1);
        var high = Pattern(0x300000, 2);       // several 64 KiB snappy chunks
        var w = new LimeWriter().Add(0x1000, low, compressed).Add(0x100000, high, compressed);
        using var lime = Open(d, w.Build());
        Assert.Equal(compressed, lime.IsCompressed);
        Assert.Equal(compressed ? "LiME (AVML, snappy)" : "LiME", lime.FormatName);
        Assert.Equal([(0x1000UL, (ulong)low.Length), (0x100000UL, (ulong)high.Length)], lime.Ranges.Select(r => (r.Start, r.Length)));
        var random = new Random(3);
        for (var i = 0; i < 300; i++)
        {
            var (start, data) = i % 2 == 0 ? (0x1000UL, low) : (0x100000UL, high);
            var length = random.Next(1, 70000);
            var offset = random.Next(0, data.Length - length + 1);
            var buffer = new byte[length];
            Assert.True(lime.TryRead(start + (ulong)offset, buffer, out var failure), failure);
            Assert.Equal(data.AsSpan(offset, length).ToArray(), buffer);
        }
    }

    [Theory]
    [MemberData(nameof(Compressed))]
    public void An_address_outside_every_range_fails_saying_so(bool compressed)
    {
        using var d = new TempDir();
        using var lime = Open(d, new LimeWriter().Add(0x1000, Pattern(0x2000, 1), compressed).Add(0x10000, Pattern(0x1000, 2), compressed).Build());
        Assert.False(lime.TryRead(0x3000, new byte[1], out var failure));
        Assert.Contains("physical address 0x3000 is not in", failure);
        Assert.False(lime.TryRead(0x2ff0, new byte[32], out failure));   // runs off the end of the first range
        Assert.Contains("0x3000", failure);
        Assert.False(lime.TryRead(0, new byte[1], out _));
    }

    [Fact]
    public void A_lime_file_opens_as_a_core_and_reads_the_kernel_through_its_text_mapping()
    {
        using var d = new TempDir();
        // The x86-64 text mapping without VMCOREINFO: physical = virtual - __START_KERNEL_map, so the synthetic kernel
        // page at Lp64Text is the physical page at Lp64Phys.
        var file = d.File("mem.lime", new LimeWriter().Add(0x1000, Pattern(0x9e000, 4)).Add(Images.Lp64Phys, Images.Page(), compressed: false).Build());
        using var kvm = Kvm.Open(d.Text("System.map", Images.Lp64Map), file);
        Assert.Equal("LiME", kvm.FormatName);
        Assert.Equal(DataModel.LP64, kvm.DataModel);
        Assert.Equal(Images.Banner, kvm.ReadCString(kvm.SymbolAddress("linux_banner")));
        var avml = d.File("mem.avml", new LimeWriter().Add(Images.Lp64Phys, Images.Page(), compressed: true).Build());
        using var kvm2 = Kvm.Open(d.Text("System.map", Images.Lp64Map), avml);
        Assert.Equal("LiME (AVML, snappy)", kvm2.FormatName);
        Assert.Equal(Images.Banner, kvm2.ReadCString(kvm2.SymbolAddress("linux_banner")));
    }

    [Fact]
    public void A_real_dump_rewritten_as_lime_reads_the_same_bytes_and_the_same_kernel()
    {
        // The nokaslr QEMU dump's memory, range by range, as LiME writes it (streamed: the dump is 272 MiB).
        using var d = new TempDir();
        var dump = Fixtures.Get("amd64/nokaslr/dump.elf.gz");
        var map = Fixtures.Get("amd64/System.map-6.1.0-56-amd64");
        using var elf = Kvm.Open(map, dump);
        var path = Path.Combine(d.Path, "dump.lime");
        var chunk = new byte[1 << 20];
        using (var o = File.Create(path))
        {
            foreach (var r in elf.Physical.Ranges)
            {
                o.Write(LimeWriter.Header(r.Start, r.End - 1, compressed: false));
                for (var a = r.Start; a < r.End; a += (ulong)chunk.Length)
                {
                    var n = (int)Math.Min((ulong)chunk.Length, r.End - a);
                    elf.ReadPhysical(a, chunk.AsSpan(0, n));
                    o.Write(chunk, 0, n);
                }
            }
        }

        using var lime = Kvm.Open(map, path);
        Assert.Equal("LiME", lime.FormatName);
        Assert.Equal(elf.Physical.Ranges.Select(r => (r.Start, r.Length)), lime.Physical.Ranges.Select(r => (r.Start, r.Length)));
        var other = new byte[chunk.Length];
        foreach (var r in elf.Physical.Ranges)
        {
            for (var a = r.Start; a < r.End; a += (ulong)chunk.Length)
            {
                var n = (int)Math.Min((ulong)chunk.Length, r.End - a);
                elf.ReadPhysical(a, chunk.AsSpan(0, n));
                lime.ReadPhysical(a, other.AsSpan(0, n));
                Assert.True(chunk.AsSpan(0, n).SequenceEqual(other.AsSpan(0, n)), $"physical 0x{a:x}: the LiME file differs from the ELF dump");
            }
        }
        // The kernel found in it (no VMCOREINFO: the banner search and the page tables) is the dump's.
        Assert.Equal(elf.KaslrOffset, lime.KaslrOffset);
        Assert.Equal(elf.ReadCString(elf.SymbolAddress("linux_banner")), lime.ReadCString(lime.SymbolAddress("linux_banner")));
        var tasks = new KvmTyped.Linux.KernelTasks(elf).List().Select(t => (t.Pid, t.Ppid, t.Comm)).ToList();
        Assert.True(tasks.Count > 10, $"only {tasks.Count} tasks in the ELF dump");
        Assert.Equal(tasks, new KvmTyped.Linux.KernelTasks(lime).List().Select(t => (t.Pid, t.Ppid, t.Comm)));
    }

    [Fact]
    public void Uncompressed_ranges_are_written_in_place_under_O_RDWR_and_compressed_ones_are_refused()
    {
        using var d = new TempDir();
        var path = d.File("mem.lime", new LimeWriter().Add(0x1000, Pattern(0x1000, 1)).Add(0x4000, Pattern(0x1000, 2), compressed: true).Build());
        using (var lime = LimeMemory.Open(RandomAccessFile.Open(path, writable: true)))
        {
            lime.Write(0x1010, [1, 2, 3]);
            var e = Assert.Throws<KvmWriteException>(() => lime.Write(0x4010, [1]));
            Assert.Contains("compressed AVML range", e.Message);
        }
        var bytes = File.ReadAllBytes(path);
        Assert.Equal([1, 2, 3], bytes.AsSpan(32 + 0x10, 3).ToArray());
    }

    private static KvmFormatException Refused(TempDir d, byte[] file, long offset, string what)
    {
        var e = Assert.Throws<KvmFormatException>(() => Open(d, file).Dispose());
        Assert.Equal(offset, e.Offset);
        Assert.Contains(what, e.Message);
        return e;
    }

    [Fact]
    public void Damaged_headers_are_refused_naming_the_offset()
    {
        using var d = new TempDir();
        var one = new LimeWriter().Add(0x1000, Pattern(0x1000, 1)).Build();
        Refused(d, [.. one, .. LimeWriter.Header(0x3000, 0x3fff, false, magic: 0x12345678)], one.Length, "expected a LiME range header");
        Refused(d, [.. one, .. LimeWriter.Header(0x3000, 0x3fff, false, version: 2)], one.Length, "found magic 0x4c694d45 version 2");
        Refused(d, [.. one, .. LimeWriter.Header(0x3000, 0x2fff, false)], one.Length + 8, "empty, reversed or beyond 2^52");
        Refused(d, [.. one, .. LimeWriter.Header(1UL << 52, (1UL << 52) + 0xfff, false)], one.Length + 8, "beyond 2^52");
        Refused(d, [.. one, .. LimeWriter.Header(0x1800, 0x27ff, false), .. new byte[0x1000]], one.Length + 8, "does not follow the previous range");
        Refused(d, [.. one, .. LimeWriter.Header(0x3000, 0x3fff, false), .. new byte[0x800]], one.Length, "extends past the end of the file");
        Refused(d, [.. one, 1, 2, 3], one.Length, "LiME range header (32 bytes) extends past the end of the file");
        Refused(d, [.. LimeWriter.Header(0, ulong.MaxValue - 1, false)], 8, "beyond 2^52");
    }

    [Fact]
    public void Damaged_compressed_ranges_are_refused_naming_the_offset()
    {
        using var d = new TempDir();
        var data = Pattern(0x20000, 1);
        var good = new LimeWriter().Add(0x1000, data, compressed: true).Build();
        var framed = LimeWriter.Framed(data);

        var trailer = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(trailer.AsSpan(trailer.Length - 8), 5);
        Refused(d, trailer, 32 + framed.Length, "the trailer says the compressed stream has 5 bytes");

        var identifier = (byte[])good.Clone();
        identifier[32 + 4] = (byte)'x';
        Refused(d, identifier, 32, "bad snappy stream identifier");

        var reserved = (byte[])good.Clone();
        reserved[32 + 10] = 0x05;       // the first data chunk's type
        Refused(d, reserved, 32 + 10, "reserved unskippable snappy chunk type 0x05");

        var pastFile = (byte[])good.Clone();
        pastFile[32 + 10 + 3] = 0x7f;   // the first data chunk's length, high byte
        Refused(d, pastFile, 32 + 10, "extends past the end of the file");

        // A range shorter than its stream: the stream's first chunk decodes to more than the range holds.
        var shortRange = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(shortRange.AsSpan(16), 0x1000 + 0xff);
        Refused(d, shortRange, 32 + 10, "runs past the range's 256 bytes");
    }

    [Fact]
    public void A_chunk_that_does_not_decode_fails_the_read_naming_its_offset()
    {
        using var d = new TempDir();
        var data = Pattern(0x10000, 9);
        var good = new LimeWriter().Add(0x1000, data, compressed: true).Build();
        // Keep the chunk's declared length (its varint), damage the compressed body after it.
        var bad = (byte[])good.Clone();
        for (var i = 32 + 10 + 4 + 8; i < 32 + 10 + 4 + 64; i++)
            bad[i] = 0xff;
        using var lime = Open(d, bad);
        Assert.False(lime.TryRead(0x1000, new byte[16], out var failure));
        Assert.Contains("does not decode", failure);
        Assert.Contains("at offset 0x", failure);
    }
}
