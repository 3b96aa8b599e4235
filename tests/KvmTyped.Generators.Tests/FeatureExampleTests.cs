using System.Globalization;
using KvmTyped.Generators.Schema;

namespace KvmTyped.Generators.Tests;

/// <summary>schemas/examples/features.h shows every feature of the schema language; it must parse cleanly, match
/// gcc, generate code that compiles, and appear verbatim in schemas/README.md.</summary>
public sealed class FeatureExampleTests
{
    private static string FeaturesPath => Path.Combine(Repo.Schemas, "examples", "features.h");

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FeaturesMatchGcc(bool lp64)
    {
        var text = File.ReadAllText(FeaturesPath);
        var schema = SchemaResolver.Resolve(new[] { SchemaParser.Parse(FeaturesPath, text) });
        Assert.Empty(schema.Diagnostics);
        var dir = Path.Combine(Path.GetTempPath(), "kvmtyped-gcc-oracle", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), "features");
        var mismatches = GccOracle.Compare($"#include \"{FeaturesPath}\"\n", schema, lp64, dir);
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
    }

    [Fact]
    public void FeaturesGenerateCompilableViews()
    {
        var assembly = GeneratorHarness.CompileAndLoad(GeneratorHarness.Schemas((FeaturesPath, File.ReadAllText(FeaturesPath))), string.Empty);
        var all = assembly.GetType("Test.Kernel.example_all")!;
        foreach (var name in new[] { "as_signed", "lo", "hi", "samples", "grid", "level", "callback", "link", "state", "name" })
        {
            Assert.NotNull(all.GetProperty(name));
        }
        Assert.Equal(typeof(string), all.GetProperty("name")!.PropertyType);
        Assert.True(assembly.GetType("Test.Kernel.example_state")!.IsEnum);
    }

    [Fact]
    public void ReadmeShowsTheExampleVerbatim()
    {
        var readme = File.ReadAllText(Path.Combine(Repo.Schemas, "README.md"));
        Assert.Contains(File.ReadAllText(FeaturesPath), readme, StringComparison.Ordinal);
    }
}
