using System.IO.Compression;

namespace KvmTyped.TestSupport;

/// <summary>Finds the real kernel dumps in ../shared/fixtures and unpacks gzip'd ones once into a cache folder.</summary>
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

    /// <summary>Path of a fixture file, relative to the fixtures folder. A name ending in .gz is unpacked once
    /// into a cache folder and the unpacked path returned. Throws when the fixture is missing, so a test
    /// never passes or skips silently without its data.</summary>
    public static string Get(string relative)
    {
        var source = Path.Combine(Root, relative);
        if (!File.Exists(source))
            throw new FileNotFoundException($"fixture missing: {source} (the tests need ../shared/fixtures beside the repository, or KVMTYPED_FIXTURES)", source);
        if (!relative.EndsWith(".gz", StringComparison.Ordinal))
            return source;
        var cacheDir = Path.Combine(Path.GetTempPath(), "kvmtyped-fixtures");
        Directory.CreateDirectory(cacheDir);
        var info = new FileInfo(source);
        var target = Path.Combine(cacheDir,
            relative[..^3].Replace('/', '_').Replace('\\', '_') + "." + info.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (File.Exists(target))
            return target;
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
        return target;
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
