using KvmTyped.Btf;
using KvmTyped.Dwarf;
using KvmTyped.Formats.Elf;
using KvmTyped.IO;

namespace KvmTyped.Tests.Dwarf;

/// <summary>Tests that change the process environment (the cache switch, XDG_CACHE_HOME) run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DwarfEnvironmentCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "DWARF type source and environment";
}

/// <summary>The DWARF type source and its cache: keys (build ID, else path, size and time), a hit on the second load,
/// the switches that bypass it, misses on a changed file, a damaged entry or another format version, the size bound,
/// and files with no DWARF.</summary>
[Collection(DwarfEnvironmentCollection.Name)]
public sealed class DwarfTypeSourceTests
{
    private static byte[] PointElf(int size = 8, byte[]? buildId = null)
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        var u = s.Unit();
        s.Point(u, s.Struct, w => w.Strp("point").U8((byte)size));
        u.End();
        return buildId is null ? b.Elf() : b.Elf(new ElfSectionSpec(".note.gnu.build-id", SectionElf.ShtNote, 2, SectionElf.Note("GNU", 3, buildId, false)));
    }

    private static readonly byte[] BuildId = [0xeb, 0x4f, 0xbc, 0xd0, 0x37, 0xe7, 0x25, 0x37, 0x17, 0x95, 0x0b, 0xf2, 0xb9, 0x3b, 0xd5, 0x56, 0x6f, 0x47, 0xc5, 0x6f];

    private static string KeyOf(string path)
    {
        using var file = RandomAccessFile.Open(path, writable: false);
        return DwarfBtfCache.Key(ElfImage.Parse(file));
    }

    [Fact]
    public void TheBuildIdKeysTheCacheAndOtherwiseThePathSizeAndTime()
    {
        using var dir = new TempDir();
        var withId = dir.File("with-id.o", PointElf(buildId: BuildId));
        var withoutId = dir.File("without-id.o", PointElf());
        Assert.Equal("build-id:eb4fbcd037e7253717950bf2b93bd5566f47c56f", KeyOf(withId));
        var key = KeyOf(withoutId);
        Assert.StartsWith("file:" + Path.GetFullPath(withoutId) + ":" + new FileInfo(withoutId).Length + ":", key, StringComparison.Ordinal);
    }

    [Fact]
    public void TheSecondLoadComesFromTheCache()
    {
        using var dir = new TempDir();
        var path = dir.File("vmlinux", PointElf(buildId: BuildId));
        var options = new DwarfOptions { CacheDirectory = Path.Combine(dir.Path, "cache") };
        Assert.True(DwarfTypeSource.TryLoad(path, options, out var first, out var source1));
        Assert.Contains("converted", source1, StringComparison.Ordinal);
        var entry = DwarfBtfCache.EntryPath(options.CacheDirectory, "build-id:" + Convert.ToHexStringLower(BuildId));
        Assert.True(File.Exists(entry), source1);
        Assert.Contains(entry, source1, StringComparison.Ordinal);

        Assert.True(DwarfTypeSource.TryLoad(path, options, out var second, out var source2));
        Assert.Contains("cached", source2, StringComparison.Ordinal);
        Assert.StartsWith(entry, source2, StringComparison.Ordinal);
        Assert.Equal(SyntheticDwarf.LayoutOf(first, "point"), SyntheticDwarf.LayoutOf(second, "point"));
        Assert.Equal(first.LastId, second.LastId);
        Assert.Empty(Directory.GetFiles(options.CacheDirectory, ".tmp-*"));
    }

    [Fact]
    public void TheOptionAndTheEnvironmentBypassTheCache()
    {
        using var dir = new TempDir();
        var path = dir.File("vmlinux", PointElf(buildId: BuildId));
        var cache = Path.Combine(dir.Path, "cache");
        Assert.True(DwarfTypeSource.TryLoad(path, new DwarfOptions { CacheDirectory = cache, NoCache = true }, out _, out var source));
        Assert.Contains("converted", source, StringComparison.Ordinal);
        Assert.False(Directory.Exists(cache));

        var old = Environment.GetEnvironmentVariable(DwarfBtfCache.NoCacheVariable);
        try
        {
            Environment.SetEnvironmentVariable(DwarfBtfCache.NoCacheVariable, "1");
            Assert.True(DwarfTypeSource.TryLoad(path, new DwarfOptions { CacheDirectory = cache }, out _, out _));
            Assert.False(Directory.Exists(cache));

            Environment.SetEnvironmentVariable(DwarfBtfCache.NoCacheVariable, null);
            Assert.True(DwarfTypeSource.TryLoad(path, new DwarfOptions { CacheDirectory = cache }, out _, out _));
            Assert.Single(Directory.GetFiles(cache));

            Environment.SetEnvironmentVariable(DwarfBtfCache.NoCacheVariable, "1");
            Assert.True(DwarfTypeSource.TryLoad(path, new DwarfOptions { CacheDirectory = cache }, out _, out var bypassed));
            Assert.Contains("converted", bypassed, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable(DwarfBtfCache.NoCacheVariable, old);
        }
    }

    [Fact]
    public void AChangedFileWithoutBuildIdMisses()
    {
        using var dir = new TempDir();
        var path = dir.File("point.o", PointElf(size: 8));
        var options = new DwarfOptions { CacheDirectory = Path.Combine(dir.Path, "cache") };
        Assert.True(DwarfTypeSource.TryLoad(path, options, out var before, out _));
        Assert.Equal(8, before.SizeOf(before.Find("point", BtfKind.Struct)));

        File.WriteAllBytes(path, PointElf(size: 12));
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(1));
        Assert.True(DwarfTypeSource.TryLoad(path, options, out var after, out var source));
        Assert.Contains("converted", source, StringComparison.Ordinal);
        Assert.Equal(12, after.SizeOf(after.Find("point", BtfKind.Struct)));
        Assert.Equal(2, Directory.GetFiles(options.CacheDirectory!).Length);
    }

    [Fact]
    public void ADamagedEntryIsConvertedAgainAndReplaced()
    {
        using var dir = new TempDir();
        var path = dir.File("vmlinux", PointElf(buildId: BuildId));
        var options = new DwarfOptions { CacheDirectory = Path.Combine(dir.Path, "cache") };
        Assert.True(DwarfTypeSource.TryLoad(path, options, out _, out _));
        var entry = Directory.GetFiles(options.CacheDirectory!).Single();
        var bytes = File.ReadAllBytes(entry);
        bytes[^5] ^= 0x40;
        File.WriteAllBytes(entry, bytes);

        Assert.True(DwarfTypeSource.TryLoad(path, options, out var types, out var source));
        Assert.Contains("converted", source, StringComparison.Ordinal);
        Assert.Equal("8 {x@0/0/4, y@32/0/4}", SyntheticDwarf.LayoutOf(types, "point"));
        Assert.NotNull(DwarfBtfCache.TryRead(options.CacheDirectory!, KeyOf(path)));
    }

    [Fact]
    public void AnEntryOfAnotherVersionOrKeyIsAMiss()
    {
        var blob = "some BTF"u8.ToArray();
        var entry = DwarfBtfCache.Encode("build-id:00", blob);
        Assert.Equal(blob, DwarfBtfCache.Decode(entry, "build-id:00"));
        Assert.Null(DwarfBtfCache.Decode(entry, "build-id:01"));
        var other = (byte[])entry.Clone();
        BitConverter.TryWriteBytes(other.AsSpan(8, 4), DwarfToBtf.FormatVersion + 1);
        Assert.Null(DwarfBtfCache.Decode(other, "build-id:00"));
        Assert.Null(DwarfBtfCache.Decode(entry.AsSpan(0, entry.Length - 1), "build-id:00"));
        Assert.DoesNotContain($"v{DwarfToBtf.FormatVersion + 1}-", DwarfBtfCache.EntryPath("/c", "build-id:00"), StringComparison.Ordinal);
    }

    [Fact]
    public void TheCacheStaysWithinItsBoundDroppingTheLeastRecentlyUsed()
    {
        using var dir = new TempDir();
        var cache = Path.Combine(dir.Path, "cache");
        var blob = new byte[10_000];
        long entrySize = DwarfBtfCache.Encode("build-id:00", blob).Length;
        long bound = entrySize * 5 / 2;
        var paths = new List<string>();
        for (int i = 0; i < 4; i++)
        {
            var p = DwarfBtfCache.Write(cache, $"build-id:0{i}", blob, bound);
            Assert.NotNull(p);
            File.SetLastWriteTimeUtc(p, DateTime.UtcNow.AddMinutes(i - 10));
            paths.Add(p);
        }
        DwarfBtfCache.Trim(cache, bound);
        Assert.Equal(new[] { false, false, true, true }, paths.Select(File.Exists));
        Assert.True(Directory.GetFiles(cache).Sum(f => new FileInfo(f).Length) <= bound);
        Assert.Null(DwarfBtfCache.Write(cache, "build-id:big", new byte[(int)bound], bound));
    }

    [Fact]
    public void FilesWithoutDwarfAreNoSource()
    {
        using var dir = new TempDir();
        var text = dir.Text("notes.txt", "not an ELF file at all");
        Assert.False(DwarfTypeSource.TryLoad(text, new DwarfOptions { NoCache = true }, out var none, out var why));
        Assert.Null(none);
        Assert.Contains("not an ELF file", why, StringComparison.Ordinal);
        var bare = dir.File("bare.o", SectionElf.Build(true, false, 1, 62, [new ElfSectionSpec(".text", SectionElf.ShtProgbits, 6, [0xc3])]));
        Assert.False(DwarfTypeSource.TryLoad(bare, new DwarfOptions { NoCache = true }, out _, out why));
        Assert.Contains("no DWARF", why, StringComparison.Ordinal);
        Assert.Throws<KvmOpenException>(() => DwarfTypeSource.TryLoad(Path.Combine(dir.Path, "missing"), null, out _, out _));
    }

    [Fact]
    public void TheDefaultFolderFollowsXdgCacheHome()
    {
        var old = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        try
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", "/var/tmp/xdg");
            Assert.Equal("/var/tmp/xdg/kvmtyped", DwarfBtfCache.DefaultDirectory());
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", "relative/ignored");
            var home = Environment.GetEnvironmentVariable("HOME");
            if (!string.IsNullOrEmpty(home))
                Assert.Equal(Path.Combine(home, ".cache", "kvmtyped"), DwarfBtfCache.DefaultDirectory());
            else
                Assert.EndsWith(Path.Combine(".cache", "kvmtyped"), DwarfBtfCache.DefaultDirectory(), StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", old);
        }
    }
}
