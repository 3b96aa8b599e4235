using System.Globalization;
using System.Text.Json;
using KvmTyped.TestSupport;

namespace KvmTyped.Package.Tests;

/// <summary>The README's way in, followed to the letter: a console project made by <c>dotnet new</c> outside the
/// repository, the README's nuget.config recipe pointed at the packed library, the README's <c>dotnet add package</c>
/// command, the README's C# example as Program.cs, built for the package's lowest target framework and run on the
/// bundled sample (linked as the example's System.map and vmcore): it prints the processes crash lists.</summary>
[Collection(PackageFeedCollection.Name)]
public sealed class ReadmeExampleTests(PackageFeed feed)
{
    private static string Readme => Path.Combine(Fixtures.RepoRoot, "README.md");

    private static string Sample(string name) => Path.Combine(Fixtures.RepoRoot, "samples", "linux-amd64", name);

    /// <summary>The README's command that adds the package to a project, as arguments.</summary>
    internal static string[] AddPackageCommand(PackageFeed feed)
    {
        var line = Assert.Single(Markdown.Blocks(Readme).Where(b => b.Language == "sh").SelectMany(b => b.Text.Split('\n')),
            l => l.StartsWith("dotnet add package KvmTyped", StringComparison.Ordinal));
        var args = line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..];
        Assert.Equal(feed.Version, args[Array.IndexOf(args, "--version") + 1]);
        return args;
    }

    [Fact]
    public void ReadmeExampleBuildsFromTheLocalFeedAndListsTheSamplesProcesses()
    {
        var work = Directory.CreateDirectory(Path.Combine(feed.Root, "readme")).FullName;
        DotnetCli.Succeed(work, feed.Environment, "new", "console", "-n", "MyTool", "-o", "MyTool");
        var project = Path.Combine(work, "MyTool");
        File.WriteAllText(Path.Combine(project, "nuget.config"), feed.NugetConfig());

        var csproj = Path.Combine(project, "MyTool.csproj");
        var lowest = feed.TargetFrameworks[0];
        var text = File.ReadAllText(csproj);
        var tfm = System.Text.RegularExpressions.Regex.Match(text, "<TargetFramework>([^<]+)</TargetFramework>");
        Assert.True(tfm.Success, text);
        File.WriteAllText(csproj, text.Replace(tfm.Value, $"<TargetFramework>{lowest}</TargetFramework>", StringComparison.Ordinal));

        DotnetCli.Succeed(project, feed.Environment, AddPackageCommand(feed));
        Assert.Contains($"<PackageReference Include=\"KvmTyped\" Version=\"{feed.Version}\" />", File.ReadAllText(csproj), StringComparison.Ordinal);

        var example = Assert.Single(Markdown.Blocks(Readme), b => b.Language == "csharp" && b.Text.StartsWith("using KvmTyped;\nusing MyTool.Kernel;", StringComparison.Ordinal));
        File.WriteAllText(Path.Combine(project, "Program.cs"), example.Text);
        File.CreateSymbolicLink(Path.Combine(project, "System.map"), Sample("System.map-6.1.0-56-amd64"));
        File.CreateSymbolicLink(Path.Combine(project, "vmcore"), Sample("vmcore.kdump"));

        var output = DotnetCli.Succeed(project, feed.Environment, "run", "-c", "Release");
        Assert.True(Directory.Exists(Path.Combine(feed.Packages, "kvmtyped", feed.Version)), "the package was not restored into the test's own cache");

        using var truth = JsonDocument.Parse(File.ReadAllText(Sample("truth.json")));
        var kaslr = truth.RootElement.GetProperty("kaslr_offset").GetString()!;
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
        Assert.Equal($"LP64 6.1.0-56-amd64 KASLR {ulong.Parse(kaslr[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture):x}", lines[0]);
        var expected = truth.RootElement.GetProperty("tasks_from_dump_crash").EnumerateArray()
            .Where(t => t.GetProperty("pid").GetInt32() != 0)
            .Select(t => $"{t.GetProperty("pid").GetInt32(),6} {t.GetProperty("ppid").GetInt32(),6} {t.GetProperty("comm").GetString()}")
            .ToList();
        Assert.True(expected.Count > 10, "truth.json lists too few tasks");
        Assert.Equal(expected, lines.Skip(1));

        // The libkvm example, in the same project: what the README says it prints on the sample.
        var libkvm = Assert.Single(Markdown.Blocks(Readme), b => b.Language == "csharp" && b.Text.Contains("using static KvmTyped.Compat.Libkvm;", StringComparison.Ordinal));
        File.WriteAllText(Path.Combine(project, "Program.cs"), libkvm.Text);
        var (code, stdout, stderr) = DotnetCli.RunSplit(project, feed.Environment, "run", "-c", "Release");
        Assert.True(code == 0, stdout + stderr);
        var printed = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
        Assert.Equal(truth.RootElement.GetProperty("linux_banner").GetString()![..64], printed[0]);
        var tasks = truth.RootElement.GetProperty("tasks_from_dump_crash").EnumerateArray().Where(t => t.GetProperty("pid").GetInt32() != 0).ToList();
        Assert.Equal(
            tasks.Select(t => $"{t.GetProperty("pid").GetInt32()} [{t.GetProperty("comm").GetString()}]").Order(StringComparer.Ordinal),
            printed.Skip(1).Order(StringComparer.Ordinal));
        Assert.Contains("myps: kvm_getcmd: ", stderr, StringComparison.Ordinal);
    }
}
