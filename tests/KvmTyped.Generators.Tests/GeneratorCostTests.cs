using Microsoft.CodeAnalysis;

namespace KvmTyped.Generators.Tests;

/// <summary>A build with 1,000 random structs in 10 schema files: every view is generated without a diagnostic, a run
/// with nothing changed reuses every output, and a struct added to one file adds its view. (What this costs
/// a build is measured on a real project with <c>dotnet build -p:ReportAnalyzer=true -v:d</c>, not here.)</summary>
public sealed class GeneratorCostTests
{
    [Fact]
    public void ThousandStructs()
    {
        const int Files = 10;
        const int PerFile = 100;
        var texts = Enumerable.Range(0, Files)
            .Select(i => RandomSchema.Generate(1000 + i, PerFile).Replace("rnd_", $"rnd{i}_", StringComparison.Ordinal).Replace("struct r", $"struct f{i}r", StringComparison.Ordinal).Replace("union r", $"union f{i}r", StringComparison.Ordinal).Replace("RND_", $"RND{i}_", StringComparison.Ordinal))
            .ToList();
        var files = texts.Select((t, i) => (AdditionalText)new InMemoryAdditionalText($"/s/f{i}.h", t)).ToList();
        var compilation = GeneratorHarness.Compilation();

        var driver = GeneratorHarness.Driver(files).RunGenerators(compilation);
        var result = driver.GetRunResult();
        Assert.Empty(result.Diagnostics);
        var views = result.Results.Single().GeneratedSources.Count(s => s.HintName.EndsWith(".decl.g.cs", StringComparison.Ordinal));
        Assert.True(views >= Files * PerFile, $"{views} views");

        driver = driver.RunGenerators(compilation);
        var unchanged = driver.GetRunResult().Results.Single();
        Assert.All(unchanged.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs),
            o => Assert.Equal(IncrementalStepRunReason.Cached, o.Reason));

        driver = driver.ReplaceAdditionalText(files[3], new InMemoryAdditionalText("/s/f3.h", texts[3] + "\nstruct extra_one { int x; };\n"));
        driver = driver.RunGenerators(compilation);
        var edited = driver.GetRunResult().Results.Single();
        Assert.Contains(edited.GeneratedSources, s => s.HintName.Contains("extra_one", StringComparison.Ordinal));
        Assert.Equal(result.Results.Single().GeneratedSources.Length + 2, edited.GeneratedSources.Length);
    }
}
