using System.IO.Compression;
using System.Xml.Linq;
using KvmTyped.TestSupport;

namespace KvmTyped.Package.Tests;

/// <summary>One local feed per test run, in a temporary folder outside the repository (so no Directory.*.props of the
/// repository reaches the projects made there): the library packed from the outputs built beside this test assembly
/// (<c>dotnet pack --no-build</c>), and a NuGet package cache of its own. Everything is deleted at the end.</summary>
public sealed class PackageFeed : IDisposable
{
    public PackageFeed()
    {
        Root = Directory.CreateTempSubdirectory("kvmtyped-package-").FullName;
        Assert.False(Root.StartsWith(Fixtures.RepoRoot + Path.DirectorySeparatorChar, StringComparison.Ordinal), $"{Root} is inside the repository");
        for (var dir = new DirectoryInfo(Root); dir is not null; dir = dir.Parent)
        {
            foreach (var name in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "nuget.config", "NuGet.Config", "global.json" })
                Assert.False(File.Exists(Path.Combine(dir.FullName, name)), $"{Path.Combine(dir.FullName, name)} would reach the projects made under {Root}");
        }
        Feed = Directory.CreateDirectory(Path.Combine(Root, "feed")).FullName;
        Packages = Directory.CreateDirectory(Path.Combine(Root, "packages")).FullName;
        DotnetCli.Succeed(Fixtures.RepoRoot, null, "pack", Path.Combine(Fixtures.RepoRoot, "src", "KvmTyped"), "-c", DotnetCli.Configuration, "--no-build", "-o", Feed);
        Nupkg = Assert.Single(Directory.GetFiles(Feed, "KvmTyped.*.nupkg"));
        using var zip = ZipFile.OpenRead(Nupkg);
        using (var nuspec = zip.GetEntry("KvmTyped.nuspec")!.Open())
            Nuspec = XDocument.Load(nuspec);
        Entries = zip.Entries.Select(e => e.FullName).ToList();
        Version = Nuspec.Descendants().Single(e => e.Name.LocalName == "version").Value;
    }

    /// <summary>The temporary folder everything is made in.</summary>
    public string Root { get; }

    /// <summary>The local feed: the folder the packages are packed into.</summary>
    public string Feed { get; }

    /// <summary>NuGet's package cache for the commands of these tests (NUGET_PACKAGES).</summary>
    public string Packages { get; }

    /// <summary>The library's package.</summary>
    public string Nupkg { get; }

    public XDocument Nuspec { get; }

    /// <summary>The files in the package.</summary>
    public IReadOnlyList<string> Entries { get; }

    public string Version { get; }

    /// <summary>The target frameworks of the package's lib/ folders, lowest first.</summary>
    public IReadOnlyList<string> TargetFrameworks =>
        Entries.Where(e => e.StartsWith("lib/", StringComparison.Ordinal)).Select(e => e.Split('/')[1]).Distinct()
            .OrderBy(f => System.Version.TryParse(f.Replace("net", string.Empty, StringComparison.Ordinal), out var v) ? v : new System.Version(0, 0)).ToList();

    /// <summary>The environment of every dotnet command run on the feed.</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string> { ["NUGET_PACKAGES"] = Packages };

    /// <summary>The README's nuget.config recipe, pointed at this feed.</summary>
    public string NugetConfig()
    {
        var block = Assert.Single(Markdown.Blocks(Path.Combine(Fixtures.RepoRoot, "README.md")), b => b.Language == "xml" && b.Text.Contains("<packageSourceMapping>", StringComparison.Ordinal));
        Assert.Contains(ReadmeFeedPlaceholder, block.Text, StringComparison.Ordinal);
        return block.Text.Replace(ReadmeFeedPlaceholder, Feed, StringComparison.Ordinal);
    }

    /// <summary>Where the README's recipe says the packed folder goes.</summary>
    public const string ReadmeFeedPlaceholder = "/path/to/KvmTyped/artifacts";

    public void Dispose() => Directory.Delete(Root, recursive: true);
}

[CollectionDefinition(Name)]
public sealed class PackageFeedCollection : ICollectionFixture<PackageFeed>
{
    public const string Name = "package feed";
}
