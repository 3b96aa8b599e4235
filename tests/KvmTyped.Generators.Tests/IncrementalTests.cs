using Microsoft.CodeAnalysis;

namespace KvmTyped.Generators.Tests;

/// <summary>The pipeline caches: a second run is all Cached; editing one schema re-runs only its parse and the
/// views of the structs it changed.</summary>
public sealed class IncrementalTests
{
    private static readonly string[] Steps =
    {
        TrackingNames.Options, TrackingNames.SchemaFiles, TrackingNames.Resolve, TrackingNames.Views, TrackingNames.Enums, TrackingNames.Diagnostics,
    };

    private static List<AdditionalText> Files() => GeneratorHarness.Schemas(
        ("/s/a.h", "struct a { int x; };\n"),
        ("/s/b.h", "struct b { long y; struct a inner; };\nenum e { E1 };\n"),
        ("/s/c.h", "struct c { char name[4]; };\n")).ToList();

    [Fact]
    public void SecondRunIsAllCached()
    {
        var compilation = GeneratorHarness.Compilation();
        var driver = GeneratorHarness.Driver(Files()).RunGenerators(compilation);
        driver = driver.RunGenerators(compilation);
        var run = driver.GetRunResult().Results.Single();
        foreach (var name in Steps)
        {
            Assert.True(run.TrackedSteps.ContainsKey(name), name + " was not tracked");
            foreach (var step in run.TrackedSteps[name])
            {
                foreach (var (_, reason) in step.Outputs) Assert.Equal(IncrementalStepRunReason.Cached, reason);
            }
        }
    }

    [Fact]
    public void EditingOneSchemaModifiesOnlyItsSteps()
    {
        var compilation = GeneratorHarness.Compilation();
        var files = Files();
        var driver = GeneratorHarness.Driver(files).RunGenerators(compilation);
        driver = driver.ReplaceAdditionalText(files[2], new InMemoryAdditionalText("/s/c.h", "struct c { char name[8]; };\n"));
        driver = driver.RunGenerators(compilation);
        var run = driver.GetRunResult().Results.Single();

        var parses = run.TrackedSteps[TrackingNames.SchemaFiles].SelectMany(s => s.Outputs).ToList();
        Assert.Equal(3, parses.Count);
        Assert.Single(parses, o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.Equal(2, parses.Count(o => o.Reason == IncrementalStepRunReason.Cached));

        var views = run.TrackedSteps[TrackingNames.Views].SelectMany(s => s.Outputs).ToList();
        var modified = views.Where(o => o.Reason == IncrementalStepRunReason.Modified).Select(o => ((Model.ViewModel)o.Value).Name).ToList();
        Assert.Equal(new[] { "c" }, modified);
        Assert.All(views.Where(o => o.Reason != IncrementalStepRunReason.Modified), o => Assert.Equal(IncrementalStepRunReason.Unchanged, o.Reason));
        Assert.All(run.TrackedSteps[TrackingNames.Enums].SelectMany(s => s.Outputs), o => Assert.Equal(IncrementalStepRunReason.Unchanged, o.Reason));
    }
}
