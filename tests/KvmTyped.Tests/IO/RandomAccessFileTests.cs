using KvmTyped.Formats;
using KvmTyped.Formats.Elf;
using KvmTyped.Formats.Kdump;
using KvmTyped.IO;
using KvmTyped.TestSupport;

namespace KvmTyped.Tests.IO;

/// <summary>The file-access layer: a corefile is opened once per open, and a file read by position (as one that
/// cannot be mapped is) reads the same bytes as through the map.</summary>
public class RandomAccessFileTests
{
    private static string Sample(string name) => Path.Combine(Fixtures.RepoRoot, "samples", "linux-amd64", name);

    /// <summary>A private copy, so that opens of it by other tests running at the same time cannot be counted.</summary>
    private static string Copy(string source, string dir)
    {
        var target = Path.Combine(dir, Path.GetFileName(source));
        File.Copy(source, target);
        return target;
    }

    [Theory]
    [InlineData("kdump")]
    [InlineData("elf")]
    public void An_open_opens_the_corefile_once(string kind)
    {
        var dir = Directory.CreateTempSubdirectory("kvmtyped-once-").FullName;
        try
        {
            var core = Copy(kind == "kdump" ? Sample("vmcore.kdump") : Fixtures.Get("amd64/nokaslr/dump.elf.gz"), dir);
            var map = kind == "kdump" ? Sample("System.map-6.1.0-56-amd64") : Fixtures.Get("amd64/System.map-6.1.0-56-amd64");
            var opens = 0;
            void Count(string path)
            {
                if (path == core)
                    Interlocked.Increment(ref opens);
            }
            RandomAccessFile.Opened += Count;
            try
            {
                using var kvm = Kvm.Open(map, core);
                Assert.StartsWith("Linux version ", kvm.ReadCString(kvm.SymbolAddress("linux_banner")), StringComparison.Ordinal);
            }
            finally
            {
                RandomAccessFile.Opened -= Count;
            }
            Assert.Equal(1, opens);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_kdump_read_by_position_reads_what_the_map_reads()
    {
        var path = Sample("vmcore.kdump");
        using var mapped = KdumpFile.Open(RandomAccessFile.Open(path, writable: false));
        using var positional = KdumpFile.Open(RandomAccessFile.Open(path, writable: false, map: false));
        Assert.Equal(mapped.Ranges, positional.Ranges);
        AssertSameBytes(mapped, positional);
    }

    [Fact]
    public void An_elf_core_read_by_position_reads_what_the_map_reads()
    {
        var path = Fixtures.Get("amd64/nokaslr/dump.elf.gz");
        var mappedFile = RandomAccessFile.Open(path, writable: false);
        var positionalFile = RandomAccessFile.Open(path, writable: false, map: false);
        Assert.True(mappedFile.IsMapped);
        Assert.False(positionalFile.IsMapped);
        using var mapped = new ElfCoreMemory(ElfImage.Parse(mappedFile));
        using var positional = new ElfCoreMemory(ElfImage.Parse(positionalFile));
        Assert.Equal(mapped.Ranges, positional.Ranges);
        Assert.Equal(ElfImage.Parse(mappedFile).ReadNotes(), ElfImage.Parse(positionalFile).ReadNotes());
        AssertSameBytes(mapped, positional);
    }

    /// <summary>Pages spread over every range (and the bytes either side of a range's end) read alike, failures too.</summary>
    private static void AssertSameBytes(IPhysicalMemory a, IPhysicalMemory b)
    {
        var random = new Random(7);
        var x = new byte[4096];
        var y = new byte[4096];
        var compared = 0;
        foreach (var range in a.Ranges)
        {
            for (var i = 0; i < 64; i++)
            {
                var at = range.Start + (ulong)(random.NextInt64((long)Math.Max(1, range.Length / 4096)) * 4096);
                var okA = a.TryRead(at, x, out var whyA);
                var okB = b.TryRead(at, y, out var whyB);
                Assert.Equal(okA, okB);
                Assert.Equal(whyA, whyB);
                if (okA)
                {
                    Assert.True(x.AsSpan().SequenceEqual(y), $"page at 0x{at:x} differs");
                    compared++;
                }
            }
            Assert.Equal(a.TryRead(range.End - 8, x.AsSpan(0, 16), out _), b.TryRead(range.End - 8, y.AsSpan(0, 16), out _));
        }
        Assert.True(compared > 50, $"only {compared} pages compared");
    }

    [Fact]
    public void A_file_read_by_position_refuses_bytes_past_its_end_and_after_close()
    {
        var path = Sample("System.map-6.1.0-56-amd64");
        var file = RandomAccessFile.Open(path, writable: false, map: false);
        var buffer = new byte[16];
        Assert.True(file.TryCopy(file.Length - 16, buffer));
        Assert.Equal(File.ReadAllBytes(path)[^16..], buffer);
        Assert.False(file.TryCopy(file.Length - 8, buffer));
        file.Dispose();
        Assert.False(file.TryCopy(0, buffer));
    }
}
