using System.IO.Compression;

namespace KvmTyped.TestSupport;

/// <summary>Finds the real kernel dumps in ../shared/fixtures and unpacks gzip'd ones once into a bounded cache folder.</summary>
internal static class Fixtures
{
    private static readonly Lazy<string> RepoRootLazy = new(FindRepoRoot);

    /// <summary>The repository root (the folder holding KvmTyped.sln).</summary>
    public static string RepoRoot => RepoRootLazy.Value;

    /// <summary>The fixtures folder: $KVMTYPED_FIXTURES, else ../shared/fixtures beside the repository.</summary>
    public static string Root =>
        Environment.GetEnvironmentVariable("KVMTYPED_FIXTURES") is { Length: > 0 } env
            ? env
            : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "fixtures"));

    /// <summary>Where gzip'd fixtures are unpacked, once for every test run on the machine:
    /// $KVMTYPED_FIXTURE_CACHE, else $XDG_CACHE_HOME/kvmtyped/fixtures, else ~/.cache/kvmtyped/fixtures (beside the
    /// debug packages' cache), never the temporary folder, which test runs are expected to leave as they found it.</summary>
    public static string CacheDir { get; } = FindCacheDir();

    /// <summary>The most the unpack cache keeps, in bytes (KVMTYPED_FIXTURE_CACHE_MB overrides): past it, the entries
    /// least recently used and not used for an hour are deleted. All the fixtures unpack to about 500 MB.</summary>
    public static long CacheBound { get; } =
        Environment.GetEnvironmentVariable("KVMTYPED_FIXTURE_CACHE_MB") is { Length: > 0 } mb && long.TryParse(mb, System.Globalization.CultureInfo.InvariantCulture, out var m) && m > 0
            ? m << 20
            : DefaultCacheBound;

    /// <summary>The default bound of the unpack cache: 1 GiB.</summary>
    public const long DefaultCacheBound = 1L << 30;

    /// <summary>An entry used within this time is never evicted: another test process may be about to open it.</summary>
    private static readonly TimeSpan EvictionAge = TimeSpan.FromHours(1);

    private static readonly Lock CacheLock = new();

    /// <summary>Path of a fixture file, relative to the fixtures folder. A name ending in .gz is unpacked once
    /// into <see cref="CacheDir"/> and the unpacked path returned. Throws when the fixture is missing, so a test
    /// never passes or skips silently without its data.</summary>
    public static string Get(string relative)
    {
        var source = Path.Combine(Root, relative);
        if (!File.Exists(source))
            throw new FileNotFoundException($"fixture missing: {source} (the tests need ../shared/fixtures beside the repository, or KVMTYPED_FIXTURES)", source);
        if (!relative.EndsWith(".gz", StringComparison.Ordinal))
            return source;
        Directory.CreateDirectory(CacheDir);
        var info = new FileInfo(source);
        var target = Path.Combine(CacheDir,
            relative[..^3].Replace('/', '_').Replace('\\', '_') + "." + info.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (File.Exists(target))
        {
            Touch(target);
            return target;
        }
        var temp = target + "." + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) + "." + Guid.NewGuid().ToString("N") + ".tmp";
        using (var input = new GZipStream(File.OpenRead(source), CompressionMode.Decompress))
        using (var output = File.Create(temp))
            input.CopyTo(output);
        try
        {
            File.Move(temp, target, overwrite: false);
        }
        catch (IOException) when (File.Exists(target))
        {
            File.Delete(temp);
        }
        Touch(target);
        Trim(CacheDir, CacheBound, DateTime.UtcNow - EvictionAge);
        return target;
    }

    /// <summary>Marks a cache entry used now (its access time, set explicitly: mounts with relatime do not).</summary>
    private static void Touch(string path)
    {
        try
        {
            File.SetLastAccessTimeUtc(path, DateTime.UtcNow);
        }
        catch (IOException)
        {
            // Evicted by another process in between: the next Get unpacks it again.
        }
    }

    /// <summary>Deletes unpacks that a killed run left half-written, then, while the folder holds more than
    /// <paramref name="bound"/> bytes, the least recently used entry last used before <paramref name="usedBefore"/>.
    /// Returns the bytes the folder holds after.</summary>
    internal static long Trim(string dir, long bound, DateTime usedBefore)
    {
        lock (CacheLock)
        {
            var files = new DirectoryInfo(dir).GetFiles().ToList();
            foreach (var stale in files.Where(f => f.Name.EndsWith(".tmp", StringComparison.Ordinal) && f.LastWriteTimeUtc < usedBefore).ToList())
            {
                TryDelete(stale);
                files.Remove(stale);
            }
            var total = files.Sum(f => f.Length);
            foreach (var old in files.Where(f => !f.Name.EndsWith(".tmp", StringComparison.Ordinal) && f.LastAccessTimeUtc < usedBefore).OrderBy(f => f.LastAccessTimeUtc))
            {
                if (total <= bound)
                    break;
                var length = old.Length;
                if (TryDelete(old))
                    total -= length;
            }
            return total;
        }
    }

    private static bool TryDelete(FileInfo file)
    {
        try
        {
            file.Delete();
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string FindCacheDir()
    {
        if (Environment.GetEnvironmentVariable("KVMTYPED_FIXTURE_CACHE") is { Length: > 0 } explicitDir)
            return explicitDir;
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = xdg is { Length: > 0 } ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "kvmtyped", "fixtures");
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "KvmTyped.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("cannot find the repository root (KvmTyped.sln) above " + AppContext.BaseDirectory);
    }
}
