using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using KvmTyped.TestSupport;

namespace KvmTyped.Package.Tests;

/// <summary>What the package says about itself and carries: a version, a readme, a license expression, the repository
/// commit, tags, the XML docs beside the assembly, the generator, the build task and targets, the shipped schemas, and an
/// assembly built deterministically with its PDB (SourceLink included) embedded.</summary>
[Collection(PackageFeedCollection.Name)]
public sealed class PackageContentsTests(PackageFeed feed)
{
    private string Meta(string name) => feed.Nuspec.Descendants().SingleOrDefault(e => e.Name.LocalName == name)?.Value ?? string.Empty;

    [Fact]
    public void MetadataIsComplete()
    {
        Assert.Matches(@"^\d+\.\d+\.\d+", feed.Version);
        Assert.Equal("MIT", Meta("license"));
        Assert.Equal("README.md", Meta("readme"));
        Assert.Contains("README.md", feed.Entries);
        foreach (var tag in new[] { "linux", "kernel", "vmcore", "libkvm" }) Assert.Contains(tag, Meta("tags").Split(' '));
        Assert.NotEmpty(Meta("description"));
        var repository = feed.Nuspec.Descendants().Single(e => e.Name.LocalName == "repository");
        Assert.Equal("git", repository.Attribute("type")?.Value);
        Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")?.Value ?? string.Empty);
    }

    [Fact]
    public void CarriesDocsGeneratorTargetsAndSchemas()
    {
        foreach (var tfm in feed.TargetFrameworks)
        {
            Assert.Contains($"lib/{tfm}/KvmTyped.dll", feed.Entries);
            Assert.Contains($"lib/{tfm}/KvmTyped.xml", feed.Entries);
        }
        Assert.Equal(["net10.0"], feed.TargetFrameworks);
        Assert.Contains("analyzers/dotnet/cs/KvmTyped.Generators.dll", feed.Entries);
        Assert.Contains("build/KvmTyped.targets", feed.Entries);
        Assert.Contains("build/KvmTyped.Build.Tasks.dll", feed.Entries);
        Assert.Contains("buildTransitive/KvmTyped.targets", feed.Entries);
        Assert.Contains("schemas/linux/sched.h", feed.Entries);
        Assert.Contains("schemas/linux/arch/x86_64/ptrace.h", feed.Entries);
    }

    [Fact]
    public void AssemblyIsDeterministicWithItsPdbAndSourceLinkEmbedded()
    {
        using var zip = ZipFile.OpenRead(feed.Nupkg);
        using var stream = new MemoryStream();
        using (var dll = zip.GetEntry($"lib/{feed.TargetFrameworks[0]}/KvmTyped.dll")!.Open()) dll.CopyTo(stream);
        stream.Position = 0;
        using var pe = new PEReader(stream);
        var debug = pe.ReadDebugDirectory();
        Assert.Contains(debug, d => d.Type == DebugDirectoryEntryType.Reproducible);
        var embedded = Assert.Single(debug, d => d.Type == DebugDirectoryEntryType.EmbeddedPortablePdb);
        using var provider = pe.ReadEmbeddedPortablePdbDebugDirectoryData(embedded);
        var pdb = provider.GetMetadataReader();
        var sourceLink = new Guid("CC110556-A091-4D38-9FEC-25AB9A351A6A");
        var embeddedSource = new Guid("0E8A571B-6926-466E-B4AD-8AB04611F5FE");
        Assert.NotEmpty(pdb.Documents);
        var kinds = pdb.CustomDebugInformation.Select(h => pdb.GetGuid(pdb.GetCustomDebugInformation(h).Kind)).ToHashSet();
        // The SDK's SourceLink writes the map of documents to URLs when the clone has a remote it knows (GitHub and
        // others); the generated sources (views) are embedded whatever the remote.
        Assert.Contains(embeddedSource, kinds);
        if (RemoteUrl() is { } remote && remote.Contains("github.com", StringComparison.OrdinalIgnoreCase))
            Assert.Contains(sourceLink, kinds);
    }

    /// <summary>The clone's origin URL, or null without one.</summary>
    private static string? RemoteUrl()
    {
        var (code, output) = DotnetCliGit("remote", "get-url", "origin");
        return code == 0 ? output.Trim() : null;
    }

    private static (int, string) DotnetCliGit(params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo("git") { WorkingDirectory = Fixtures.RepoRoot, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(start)!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }
}
