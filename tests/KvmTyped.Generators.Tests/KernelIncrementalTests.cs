using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace KvmTyped.Generators.Tests;

/// <summary>The kernel check caches: an edit that touches no declaration and no kernel leaves every step Cached; a
/// kernel digest replaced re-reads and re-checks that kernel only; one rewritten with the same content changes nothing.</summary>
public sealed class KernelIncrementalTests
{
    private static readonly string[] AllSteps =
    [
        TrackingNames.Options, TrackingNames.SchemaFiles, TrackingNames.CSharpDeclarations, TrackingNames.Resolve, TrackingNames.Views,
        TrackingNames.Enums, TrackingNames.Diagnostics, TrackingNames.KernelCheckOptions, TrackingNames.KernelDigests,
        TrackingNames.KernelCheckModel, TrackingNames.KernelChecks, TrackingNames.TargetKernels,
    ];

    private const string Declarations = """
        using KvmTyped.Types;
        namespace Probe;
        [KernelStruct(PreserveAccessIndex = true)]
        public partial struct task_struct___cs
        {
            [KernelOptional] public partial int numa_scan_seq { get; }
        }
        """;

    private static (List<AdditionalText> Files, GeneratorDriver Driver, Compilation Compilation) Start()
    {
        var files = GeneratorHarness.Schemas(
            ("/s/sched.h", "struct list_head { struct list_head *next, *prev; };\nstruct task_struct {\n    int pid;\n    int numa_scan_seq;\n} __attribute__((preserve_access_index));\n"),
            ("/s/other.h", "struct other { long y; };\nenum e { E1 };\n")).ToList();
        files.Add(TestKernels.Digest("k1", TestKernels.Small(), "k1"));
        files.Add(TestKernels.Digest("k2", TestKernels.Small(), "k2"));
        files.Add(TestKernels.Digest("k3", TestKernels.Small(lp64: false), "k3"));
        var compilation = GeneratorHarness.Compilation(Declarations);
        var driver = GeneratorHarness.Driver(files).RunGenerators(compilation);
        Assert.Empty(driver.GetRunResult().Diagnostics);
        return (files, driver, compilation);
    }

    private static List<(object Value, IncrementalStepRunReason Reason)> Outputs(GeneratorRunResult run, string step) =>
        run.TrackedSteps[step].SelectMany(s => s.Outputs).ToList();

    [Fact]
    public void UnrelatedEditLeavesEveryStepCached()
    {
        var (_, driver, compilation) = Start();
        var edited = compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("namespace Probe; internal static class Unrelated { public static int Answer => 42; }",
            GeneratorHarness.ParseOptions, path: "Unrelated.cs"));
        var run = driver.RunGenerators(edited).GetRunResult().Results.Single();
        foreach (var step in AllSteps)
        {
            Assert.True(run.TrackedSteps.ContainsKey(step), step + " was not tracked");
            // Roslyn runs the transform of a [KernelStruct] declaration again whenever the compilation changes (it takes
            // the semantic model); its output is equal, so every step after it stays Cached.
            var allowed = step == TrackingNames.CSharpDeclarations ? IncrementalStepRunReason.Unchanged : IncrementalStepRunReason.Cached;
            Assert.All(Outputs(run, step), o => Assert.True(o.Reason == IncrementalStepRunReason.Cached || o.Reason == allowed, $"{step}: {o.Reason}"));
        }
        Assert.Equal(3, Outputs(run, TrackingNames.KernelDigests).Count);
        Assert.Equal(3, Outputs(run, TrackingNames.KernelChecks).Count);
    }

    [Fact]
    public void ReplacingOneKernelReChecksOnlyThatKernel()
    {
        var (files, driver, compilation) = Start();
        var replaced = TestKernels.Digest("k2", TestKernels.Small(withoutNuma: true), "k2");
        driver = driver.ReplaceAdditionalText(files[3], replaced).RunGenerators(compilation);
        var result = driver.GetRunResult();
        var run = result.Results.Single();

        var digests = Outputs(run, TrackingNames.KernelDigests);
        Assert.Single(digests, o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.Equal(2, digests.Count(o => o.Reason == IncrementalStepRunReason.Cached));
        var checks = Outputs(run, TrackingNames.KernelChecks);
        Assert.Single(checks, o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.Equal(2, checks.Count(o => o.Reason == IncrementalStepRunReason.Cached));
        foreach (var step in new[] { TrackingNames.SchemaFiles, TrackingNames.CSharpDeclarations, TrackingNames.Resolve, TrackingNames.Views, TrackingNames.Enums, TrackingNames.KernelCheckModel })
        {
            Assert.All(Outputs(run, step), o => Assert.True(o.Reason == IncrementalStepRunReason.Cached, $"{step}: {o.Reason}"));
        }
        // The re-check found what the new kernel lacks.
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal("KVMT0100", d.Id);
        Assert.StartsWith("task_struct.numa_scan_seq does not exist in k2", d.GetMessage(), StringComparison.Ordinal);
    }

    [Fact]
    public void KernelRewrittenWithTheSameContentChangesNothing()
    {
        var (files, driver, compilation) = Start();
        var again = new InMemoryAdditionalText(files[2].Path, files[2].GetText()!.ToString());
        var run = driver.ReplaceAdditionalText(files[2], again).RunGenerators(compilation).GetRunResult().Results.Single();
        var digests = Outputs(run, TrackingNames.KernelDigests);
        Assert.Single(digests, o => o.Reason == IncrementalStepRunReason.Unchanged);
        Assert.All(Outputs(run, TrackingNames.KernelChecks), o => Assert.Equal(IncrementalStepRunReason.Cached, o.Reason));
    }

    [Fact]
    public void EditingADeclarationReChecksEveryKernel()
    {
        var (files, driver, compilation) = Start();
        var edited = new InMemoryAdditionalText("/s/sched.h", "struct list_head { struct list_head *next, *prev; };\nstruct task_struct {\n    int pid;\n    int prio;\n} __attribute__((preserve_access_index));\n");
        var run = driver.ReplaceAdditionalText(files[0], edited).RunGenerators(compilation).GetRunResult().Results.Single();
        Assert.All(Outputs(run, TrackingNames.KernelDigests), o => Assert.Equal(IncrementalStepRunReason.Cached, o.Reason));
        Assert.All(Outputs(run, TrackingNames.KernelChecks), o => Assert.NotEqual(IncrementalStepRunReason.Cached, o.Reason));
    }
}
