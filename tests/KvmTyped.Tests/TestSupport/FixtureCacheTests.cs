using KvmTyped.TestSupport;

namespace KvmTyped.Tests.TestSupport;

/// <summary>The fixtures' unpack cache stays out of the temporary folder and within its bound.</summary>
public sealed class FixtureCacheTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmtyped-cache-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Entry(string name, int size, DateTime used)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, new byte[size]);
        File.SetLastWriteTimeUtc(path, used);
        File.SetLastAccessTimeUtc(path, used);
        return path;
    }

    [Fact]
    public void CacheIsNotInTheTemporaryFolder()
    {
        if (Environment.GetEnvironmentVariable("KVMTYPED_FIXTURE_CACHE") is { Length: > 0 } set)
            Assert.Equal(set, Fixtures.CacheDir);
        else
            Assert.False(Path.GetFullPath(Fixtures.CacheDir).StartsWith(Path.GetFullPath(Path.GetTempPath()), StringComparison.Ordinal), Fixtures.CacheDir);
        Assert.True(Fixtures.CacheBound > 0);
    }

    [Fact]
    public void TrimEvictsTheLeastRecentlyUsedOldEntriesDownToTheBound()
    {
        var now = DateTime.UtcNow;
        var oldest = Entry("a.10", 1000, now.AddDays(-3));
        var older = Entry("b.10", 1000, now.AddDays(-2));
        var old = Entry("c.10", 1000, now.AddDays(-1));
        var recent = Entry("d.10", 1000, now.AddMinutes(-5));
        var leftover = Entry("e.10.123.abc.tmp", 500, now.AddDays(-1));
        var fresh = Entry("f.10.456.def.tmp", 500, now);

        var total = Fixtures.Trim(_dir, 2500, now.AddHours(-1));

        Assert.False(File.Exists(oldest));
        Assert.False(File.Exists(older));
        Assert.True(File.Exists(old));
        Assert.True(File.Exists(recent));
        Assert.False(File.Exists(leftover));
        Assert.True(File.Exists(fresh));
        Assert.Equal(2500, total);
    }

    [Fact]
    public void TrimNeverEvictsWhatWasUsedRecently()
    {
        var now = DateTime.UtcNow;
        var a = Entry("a.10", 1000, now.AddMinutes(-10));
        var b = Entry("b.10", 1000, now.AddMinutes(-1));
        Assert.Equal(2000, Fixtures.Trim(_dir, 100, now.AddHours(-1)));
        Assert.True(File.Exists(a) && File.Exists(b));
    }
}
