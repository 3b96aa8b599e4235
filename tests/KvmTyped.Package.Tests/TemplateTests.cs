using System.Text.Json;
using KvmTyped.TestSupport;

namespace KvmTyped.Package.Tests;

/// <summary>The template package, installed into a private hive (<c>--debug:custom-hive</c>, so the user's templates
/// are left alone), instantiated outside the repository, restored from the local feed by the README's recipe, built and
/// run on the bundled sample; and the README's single-file program, run by <c>dotnet run FILE.cs</c> with its
/// <c>#:package</c> directive on the same feed.</summary>
[Collection(PackageFeedCollection.Name)]
public sealed class TemplateTests(PackageFeed feed)
{
    private static string Sample(string name) => Path.Combine(Fixtures.RepoRoot, "samples", "linux-amd64", name);

    private static List<JsonElement> Tasks(JsonDocument truth) =>
        truth.RootElement.GetProperty("tasks_from_dump_crash").EnumerateArray().Where(t => t.GetProperty("pid").GetInt32() != 0).ToList();

    private static List<string> Lines(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();

    [Fact]
    public void TemplateMakesAnAnalyzerThatWalksTheSamplesTasks()
    {
        var template = Path.Combine(Fixtures.RepoRoot, "templates", "KvmTyped.Templates");
        var templateJson = File.ReadAllText(Path.Combine(template, "content", "dump-analyzer", ".template.config", "template.json"));
        using (var json = JsonDocument.Parse(templateJson))
            Assert.Equal(feed.Version, json.RootElement.GetProperty("symbols").GetProperty("KvmTypedVersion").GetProperty("defaultValue").GetString());

        var work = Directory.CreateDirectory(Path.Combine(feed.Root, "template")).FullName;
        var packed = Directory.CreateDirectory(Path.Combine(work, "packed")).FullName;
        DotnetCli.Succeed(Fixtures.RepoRoot, feed.Environment, "pack", template, "-c", DotnetCli.Configuration, "-o", packed);
        var nupkg = Assert.Single(Directory.GetFiles(packed, "KvmTyped.Templates.*.nupkg"));
        var hive = Path.Combine(work, "hive");
        DotnetCli.Succeed(work, feed.Environment, "new", "install", nupkg, "--debug:custom-hive", hive);
        DotnetCli.Succeed(work, feed.Environment, "new", "kvmtyped-analyzer", "-n", "MyAnalyzer", "-o", "MyAnalyzer", "--debug:custom-hive", hive);
        var project = Path.Combine(work, "MyAnalyzer");
        Assert.True(File.Exists(Path.Combine(project, "MyAnalyzer.csproj")));
        Assert.True(File.Exists(Path.Combine(project, "schemas", "analyzer.h")));
        File.WriteAllText(Path.Combine(project, "nuget.config"), feed.NugetConfig());

        var output = DotnetCli.Succeed(project, feed.Environment, "run", "-c", "Release", "--", Sample("System.map-6.1.0-56-amd64"), Sample("vmcore.kdump"));
        var lines = Lines(output);
        Assert.Equal("6.1.0-56-amd64 (X86_64, LP64)", lines[0]);
        Assert.Equal("   PID   PPID PRIO   VM_PAGES COMM", lines[1]);
        using var truth = JsonDocument.Parse(File.ReadAllText(Sample("truth.json")));
        var tasks = Tasks(truth);
        Assert.Equal(tasks.Count, lines.Count - 2);
        for (var i = 0; i < tasks.Count; i++)
        {
            var fields = lines[i + 2].Split(' ', 5, StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(tasks[i].GetProperty("pid").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture), fields[0]);
            Assert.Equal(tasks[i].GetProperty("ppid").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture), fields[1]);
            Assert.InRange(int.Parse(fields[2], System.Globalization.CultureInfo.InvariantCulture), 0, 139);      // MAX_PRIO - 1
            Assert.Equal(tasks[i].GetProperty("comm").GetString(), fields[4]);
        }
        // init has an address space, kthreadd none.
        Assert.True(ulong.Parse(lines[2].Split(' ', StringSplitOptions.RemoveEmptyEntries)[3], System.Globalization.CultureInfo.InvariantCulture) > 0, lines[2]);
        Assert.Equal("0", lines[3].Split(' ', StringSplitOptions.RemoveEmptyEntries)[3]);
    }

    [Fact]
    public void SingleFileProgramRunsWithTheGenerator()
    {
        var work = Directory.CreateDirectory(Path.Combine(feed.Root, "single")).FullName;
        var example = Assert.Single(Markdown.Blocks(Path.Combine(Fixtures.RepoRoot, "README.md")),
            b => b.Language == "csharp" && b.Text.StartsWith("#:package KvmTyped@", StringComparison.Ordinal));
        Assert.StartsWith($"#:package KvmTyped@{feed.Version}\n", example.Text, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(work, "tasks.cs"), example.Text);
        File.WriteAllText(Path.Combine(work, "nuget.config"), feed.NugetConfig());
        File.CreateSymbolicLink(Path.Combine(work, "System.map"), Sample("System.map-6.1.0-56-amd64"));
        File.CreateSymbolicLink(Path.Combine(work, "vmcore"), Sample("vmcore.kdump"));

        var output = DotnetCli.Succeed(work, feed.Environment, "run", "tasks.cs", "--artifacts-path", Path.Combine(work, "artifacts"), "--", "System.map", "vmcore");
        var lines = Lines(output);
        using var truth = JsonDocument.Parse(File.ReadAllText(Sample("truth.json")));
        var tasks = Tasks(truth);
        Assert.Equal(tasks.Select(t => $"{t.GetProperty("pid").GetInt32(),6} {t.GetProperty("comm").GetString()}"),
            lines.Select(l => l[..l.LastIndexOf(' ')]));
        Assert.True(ulong.Parse(lines[0][(lines[0].LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture) > 0, lines[0]);
    }
}
