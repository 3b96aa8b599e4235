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

    public static IEnumerable<string> ShippedSchemaFiles() =>
        Directory.GetFiles(Path.Combine(Schemas, "linux"), "*.h", SearchOption.AllDirectories).OrderBy(p => p, StringComparer.Ordinal);
}
