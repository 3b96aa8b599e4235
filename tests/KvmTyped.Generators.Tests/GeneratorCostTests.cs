using System.Diagnostics;
using System.Globalization;
using Microsoft.CodeAnalysis;
using Xunit.Abstractions;

namespace KvmTyped.Generators.Tests;

/// <summary>What the generator costs a build: 1,000 random structs in 10 schema files, a cold run, a run with
/// nothing changed, and a run after editing one file. Times go to the test output
/// (dotnet test --filter GeneratorCost --logger "console;verbosity=detailed").</summary>
public sealed class GeneratorCostTests(ITestOutputHelper output)
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

        var cold = Stopwatch.StartNew();
        var driver = GeneratorHarness.Driver(files).RunGenerators(compilation);
        cold.Stop();
        var result = driver.GetRunResult();
        Assert.Empty(result.Diagnostics);
        var views = result.Results.Single().GeneratedSources.Count(s => s.HintName.EndsWith(".decl.g.cs", StringComparison.Ordinal));
        Assert.True(views >= Files * PerFile, $"{views} views");

        var warm = Stopwatch.StartNew();
        driver = driver.RunGenerators(compilation);
        warm.Stop();

        driver = driver.ReplaceAdditionalText(files[3], new InMemoryAdditionalText("/s/f3.h", texts[3] + "\nstruct extra_one { int x; };\n"));
        var edit = Stopwatch.StartNew();
        driver = driver.RunGenerators(compilation);
        edit.Stop();

        var emitted = result.Results.Single().GeneratedSources.Sum(s => s.SourceText.Length);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"1,000 structs ({views} views, {emitted / 1024} KiB of source): cold {cold.ElapsedMilliseconds} ms, unchanged {warm.ElapsedMilliseconds} ms, one file edited {edit.ElapsedMilliseconds} ms"));
    }
}
