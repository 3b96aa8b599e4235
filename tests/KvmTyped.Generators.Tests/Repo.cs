namespace KvmTyped.Generators.Tests;

/// <summary>Paths in the repository, found from the test binary's folder.</summary>
internal static class Repo
{
    private static readonly Lazy<string> RootPath = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "KvmTyped.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("KvmTyped.sln not found above " + AppContext.BaseDirectory);
    });

    public static string Root => RootPath.Value;

    public static string Schemas => Path.Combine(Root, "schemas");

    /// <summary>The per-architecture folders under schemas/linux/arch and the KvmTypedArch build/KvmTyped.targets gives them.</summary>
    public static readonly IReadOnlyDictionary<string, string> ArchFolders = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["x86_64"] = "X86_64",
        ["i386"] = "I386",
        ["arm64"] = "Arm64",
    };

    /// <summary>The common shipped schemas (schemas/linux/*.h), and with <paramref name="arch"/> (a folder of
    /// schemas/linux/arch) that architecture's too.</summary>
    public static IEnumerable<string> ShippedSchemaFiles(string? arch = null)
    {
        var files = Directory.GetFiles(Path.Combine(Schemas, "linux"), "*.h", SearchOption.TopDirectoryOnly).AsEnumerable();
        if (arch is not null)
            files = files.Concat(Directory.GetFiles(Path.Combine(Schemas, "linux", "arch", arch), "*.h"));
        return files.OrderBy(p => p, StringComparer.Ordinal);
    }

    /// <summary>Every shipped schema, common and per-architecture.</summary>
    public static IEnumerable<string> AllShippedSchemaFiles() =>
        Directory.GetFiles(Path.Combine(Schemas, "linux"), "*.h", SearchOption.AllDirectories).OrderBy(p => p, StringComparer.Ordinal);

    /// <summary>The KvmTypedArch of a schema file: its folder's under schemas/linux/arch, else null.</summary>
    public static string? ArchOf(string path)
    {
        var folder = Path.GetFileName(Path.GetDirectoryName(path));
        var parent = Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(path)));
        return parent == "arch" && folder is not null && ArchFolders.TryGetValue(folder, out var arch) ? arch : null;
    }
}
