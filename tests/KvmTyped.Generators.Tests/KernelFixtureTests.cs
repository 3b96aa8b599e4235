using KvmTyped.Btf;
using KvmTyped.TestSupport;
using Microsoft.CodeAnalysis;

namespace KvmTyped.Generators.Tests;

/// <summary>The kernel check on the real BTF of the fixture kernels: amd64 6.1, its PREEMPT_RT build, i386 PAE and
/// arm64, whose structs differ. What each kernel has is read independently through the library's BTF reader.</summary>
public sealed class KernelFixtureTests
{
    private static readonly (string File, string Release, string Machine)[] Kernels =
    [
        ("amd64/vmlinux-6.1.0-56-amd64.gz", "6.1.0-56-amd64", "x86_64"),
        ("amd64/rt/vmlinux-6.1.0-56-rt-amd64.btf", "6.1.0-56-rt-amd64", "x86_64"),
        ("i386/vmlinux-6.1.0-50-686-pae.btf", "6.1.0-50-686-pae", "i386"),
        ("arm64/vmlinux-6.1.0-50-arm64.btf", "6.1.0-50-arm64", "aarch64"),
    ];

    private static readonly Lazy<AdditionalText[]> Digests = new(() => Kernels.Select(k => TestKernels.Fixture(k.File)).ToArray());

    private static readonly Lazy<BtfTypes[]> Types = new(() => Kernels.Select(k => BtfReader.Load(Fixtures.Get(k.File))).ToArray());

    private const string Relocated = " __attribute__((preserve_access_index));\n";

    private static List<Diagnostic> Check(params (string Path, string Text)[] schemas)
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Schemas(schemas).Concat(Digests.Value).ToList());
        Assert.DoesNotContain(result.Diagnostics, d => !d.Id.StartsWith("KVMT01", StringComparison.Ordinal));
        return TestKernels.Findings(result);
    }

    [Fact]
    public void DigestsNameEachKernelsReleaseAndMachine()
    {
        var (result, output) = GeneratorHarness.Run(Digests.Value.ToList());
        Assert.Empty(result.Diagnostics);
        var list = output.SyntaxTrees.Single(t => t.FilePath.EndsWith("KvmTypedTargetKernels.g.cs", StringComparison.Ordinal)).ToString();
        Assert.Contains("{ " + string.Join(", ", Kernels.Select(k => "\"" + k.Release + "\"")) + " }", list, StringComparison.Ordinal);
        Assert.Contains("{ " + string.Join(", ", Kernels.Select(k => "\"" + k.Machine + "\"")) + " }", list, StringComparison.Ordinal);
    }

    [Fact]
    public void ShippedSchemasAndTheLibrarysOwnCheckCleanAgainstEveryFixtureKernel()
    {
        var files = GeneratorHarness.ShippedSchemas()
            .Concat(Directory.GetFiles(Path.Combine(Repo.Root, "src", "KvmTyped", "Linux", "Schemas"), "*.h").Order(StringComparer.Ordinal)
                .Select(f => (AdditionalText)new InMemoryAdditionalText(f, File.ReadAllText(f))))
            .Concat(Digests.Value)
            .ToList();
        var (result, _) = GeneratorHarness.Run(files);
        Assert.Empty(result.Diagnostics.Select(d => d.ToString()));
    }

    [Fact]
    public void MemberPresentInSomeKernelsIsReportedForTheOthers()
    {
        var lacking = Kernels.Where((k, i) => Member(i, "task_struct", "numa_scan_seq") is null).Select(k => k.Release).ToList();
        Assert.Contains("6.1.0-56-rt-amd64", lacking);
        Assert.DoesNotContain("6.1.0-56-amd64", lacking);

        var findings = Check(("/src/numa.h", "struct task_struct {\n    int pid;\n    int numa_scan_seq;\n}" + Relocated));
        Assert.All(findings, d => Assert.Equal("KVMT0100", d.Id));
        Assert.Equal(lacking.Order(StringComparer.Ordinal), findings.Select(d => Release(d.GetMessage())).Order(StringComparer.Ordinal));
        Assert.Empty(Check(("/src/numa.h", "struct task_struct {\n    int pid;\n    int numa_scan_seq __kvmt_optional;\n}" + Relocated)));
    }

    [Fact]
    public void FlavorForOlderKernelsIsReportedByEveryKernelUnlessOptional()
    {
        var findings = Check(("/src/old.h", "struct task_struct___pre_5_14 {\n    long state;\n}" + Relocated));
        Assert.Equal(Kernels.Select(k => k.Release).Order(StringComparer.Ordinal), findings.Select(d => Release(d.GetMessage())).Order(StringComparer.Ordinal));
        Assert.All(findings, d => Assert.Contains("; it has __state", d.GetMessage(), StringComparison.Ordinal));
    }

    [Fact]
    public void SizeOfLongTellsThe32BitKernelFromThe64BitOnes()
    {
        // pid is an int everywhere; declared long it fits the ILP32 kernel only.
        var findings = Check(("/src/pid.h", "struct task_struct {\n    long pid;\n}" + Relocated));
        Assert.All(findings, d => Assert.Equal("KVMT0102", d.Id));
        Assert.Equal(Kernels.Where(k => k.Machine != "i386").Select(k => k.Release).Order(StringComparer.Ordinal),
            findings.Select(d => Release(d.GetMessage())).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void CompleteStructInTheWrongOrderIsReportedWithEachKernelsOffsets()
    {
        var findings = Check(("/src/cb.h", "struct callback_head {\n    void (*func)(struct callback_head *);\n    struct callback_head *next;\n};\n"));
        Assert.Equal(Kernels.Length, findings.Count);
        for (var i = 0; i < Kernels.Length; i++)
        {
            var d = Assert.Single(findings, f => Release(f.GetMessage()) == Kernels[i].Release);
            Assert.Equal("KVMT0103", d.Id);
            var next = Member(i, "callback_head", "next")!.Value.Offset;
            var func = Member(i, "callback_head", "func")!.Value.Offset;
            Assert.Contains($"func at offset 0, the kernel's at offset {func}", d.GetMessage(), StringComparison.Ordinal);
            Assert.Contains($"next at offset {func}, the kernel's at offset {next}", d.GetMessage(), StringComparison.Ordinal);
        }
        Assert.Empty(Check(("/src/cb.h", "struct callback_head {\n    struct callback_head *next;\n    void (*func)(struct callback_head *);\n};\n")));
    }

    [Fact]
    public void ArchitectureStructsAreCheckedOnlyAgainstTheirKernels()
    {
        var path = Path.Combine(Repo.Schemas, "linux", "arch", "x86_64", "probe.h");
        var findings = Check((path, "struct pt_regs {\n    unsigned long r15;\n    unsigned long not_a_register;\n}" + Relocated));
        Assert.Equal(Kernels.Where(k => k.Machine == "x86_64").Select(k => k.Release).Order(StringComparer.Ordinal),
            findings.Select(d => Release(d.GetMessage())).Order(StringComparer.Ordinal));
        Assert.All(findings, d => Assert.StartsWith("pt_regs.not_a_register does not exist in", d.GetMessage(), StringComparison.Ordinal));
    }

    private static BtfField? Member(int kernel, string structName, string member)
    {
        var types = Types.Value[kernel];
        Assert.True(types.TryFind(structName, BtfKind.Struct, out var id), $"{Kernels[kernel].Release} has no struct {structName}");
        return types.FindMember(id, member);
    }

    /// <summary>The kernel a finding names: the release after " in " (every KVMT01xx message names it so).</summary>
    private static string Release(string message)
    {
        foreach (var k in Kernels.OrderByDescending(k => k.Release.Length))
        {
            if (message.Contains(" in " + k.Release, StringComparison.Ordinal) || message.Contains("from " + k.Release + "'s", StringComparison.Ordinal))
                return k.Release;
        }
        throw new InvalidOperationException("no fixture kernel named in: " + message);
    }
}

/// <summary>The shipped schemas against the machine's own kernel: opt-in (KVMTYPED_CHECK_HOST_KERNEL=1), since the build
/// and the rest of the suite never depend on the host; skipped, naming why, otherwise.</summary>
public sealed class HostKernelCheckTests
{
    [HostKernelCheckFact]
    public void ShippedSchemasCheckCleanAgainstThisMachinesKernel()
    {
        var host = new InMemoryAdditionalText("/obj/kvmtyped/host.kvmtk",
            TestKernels.DigestText(File.ReadAllBytes(Host.BtfPath), Environment.OSVersion.Version.ToString(), null, Host.BtfPath));
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.ShippedSchemas().Append(host).ToList());
        Assert.Empty(result.Diagnostics.Select(d => d.ToString()));
    }
}

/// <summary>Runs only when KVMTYPED_CHECK_HOST_KERNEL=1 and the host has BTF; the skip says which is missing.</summary>
public sealed class HostKernelCheckFactAttribute : FactAttribute
{
    public HostKernelCheckFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("KVMTYPED_CHECK_HOST_KERNEL") != "1")
            Skip = "opt-in: set KVMTYPED_CHECK_HOST_KERNEL=1 to check the shipped schemas against this machine's kernel (" + Host.BtfPath + ")";
        else if (Host.BtfSkipReason is { } why)
            Skip = why;
    }
}
