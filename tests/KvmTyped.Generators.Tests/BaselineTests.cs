using System.Text;

namespace KvmTyped.Generators.Tests;

/// <summary>The generated source for the shipped schemas and a sample, compared with the checked-in files under
/// Baselines/: the set of files first, then each text. To accept a change on purpose, run the tests with
/// KVMTYPED_UPDATE_BASELINES=1 and review the diff.</summary>
public sealed class BaselineTests
{
    private static string BaselineDir => Path.Combine(Repo.Root, "tests", "KvmTyped.Generators.Tests", "Baselines");

    [Fact]
    public void GeneratedSourceMatchesBaselines()
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.ShippedSchemas().Concat(GeneratorHarness.Schemas(("sample.h", CompileAndRunTests.SampleSchema))).ToList());
        Assert.Empty(result.Diagnostics);
        var generated = result.Results.Single().GeneratedSources.ToDictionary(s => s.HintName, s => s.SourceText.ToString(), StringComparer.Ordinal);
        if (Environment.GetEnvironmentVariable("KVMTYPED_UPDATE_BASELINES") == "1")
        {
            if (Directory.Exists(BaselineDir)) Directory.Delete(BaselineDir, recursive: true);
            Directory.CreateDirectory(BaselineDir);
            foreach (var (name, text) in generated) File.WriteAllText(Path.Combine(BaselineDir, name), text, new UTF8Encoding(false));
        }
        var expectedNames = Directory.GetFiles(BaselineDir).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expectedNames, generated.Keys.Order(StringComparer.Ordinal).ToList());
        foreach (var name in expectedNames)
        {
            Assert.True(File.ReadAllText(Path.Combine(BaselineDir, name!)) == generated[name!],
                $"{name} differs from its baseline; rerun with KVMTYPED_UPDATE_BASELINES=1 if the change is intended");
        }
    }
}
