using KvmTyped.Types;
using Microsoft.CodeAnalysis;

namespace KvmTyped.Generators.Tests;

/// <summary>The build-time check against target kernels, one kernel or several built in code: each diagnostic from a
/// project that triggers it, and the same project declaring the member optional (or correctly) that does not.</summary>
public sealed class KernelCheckTests
{
    private const string Relocated = " __attribute__((preserve_access_index));\n";

    private static List<Diagnostic> Check(string schema, params AdditionalText[] kernels) => Check(schema, "", null, kernels);

    private static List<Diagnostic> Check(string schema, string csharp, IReadOnlyDictionary<string, string>? properties, params AdditionalText[] kernels)
    {
        var files = GeneratorHarness.Schemas(("/src/t.h", schema)).Concat(kernels).ToList();
        var (result, _) = GeneratorHarness.Run(files, csharp, properties: properties);
        Assert.DoesNotContain(result.Diagnostics, d => !d.Id.StartsWith("KVMT01", StringComparison.Ordinal));
        return TestKernels.Findings(result);
    }

    private static AdditionalText Kernel(string release = "6.1-test", bool lp64 = true, bool withoutNuma = false, string? machine = null, bool unsignedChar = false) =>
        TestKernels.Digest(release, TestKernels.Small(lp64, withoutNuma, unsignedChar), release, machine);

    private static (int Line, int Column) At(Diagnostic d)
    {
        var p = d.Location.GetLineSpan().StartLinePosition;
        return (p.Line + 1, p.Character + 1);
    }

    [Fact]
    public void MissingMemberIsReportedAtItsDeclarationWithTheNameTheKernelHas()
    {
        var findings = Check("struct task_struct {\n    int pid;\n    long state;\n}" + Relocated, Kernel());
        var d = Assert.Single(findings);
        Assert.Equal("KVMT0100", d.Id);
        Assert.Equal(DiagnosticSeverity.Warning, d.Severity);
        Assert.Equal("/src/t.h", d.Location.GetLineSpan().Path);
        Assert.Equal((3, 10), At(d));
        Assert.StartsWith("task_struct.state does not exist in 6.1-test; it has __state", d.GetMessage(), StringComparison.Ordinal);
    }

    [Fact]
    public void OptionalMemberIsNotReported()
    {
        Assert.Empty(Check("struct task_struct {\n    int pid;\n    long state __kvmt_optional;\n}" + Relocated, Kernel()));
        Assert.Empty(Check("struct task_struct {\n    int pid;\n    __kvmt_optional long state;\n}" + Relocated, Kernel()));
    }

    [Fact]
    public void MemberPresentInOneKernelAndAbsentInAnotherIsReportedForThatKernelOnly()
    {
        var schema = "struct task_struct {\n    int numa_scan_seq;\n}" + Relocated;
        var d = Assert.Single(Check(schema, Kernel("6.1-numa"), Kernel("6.1-rt", withoutNuma: true)));
        Assert.Equal("KVMT0100", d.Id);
        Assert.Contains("6.1-rt", d.GetMessage(), StringComparison.Ordinal);
        Assert.DoesNotContain("6.1-numa", d.GetMessage(), StringComparison.Ordinal);
        Assert.Empty(Check(schema.Replace("numa_scan_seq;", "numa_scan_seq __kvmt_optional;", StringComparison.Ordinal), Kernel("6.1-numa"), Kernel("6.1-rt", withoutNuma: true)));
    }

    [Fact]
    public void OptionalMemberOfAnotherTypeIsReportedOnlyWhenNoKernelHasItAsDeclared()
    {
        // nr is a long: 8 bytes in the LP64 kernel, 4 in the ILP32 one. Declared int and optional, the ILP32 kernel has
        // it as declared, so the LP64 kernel's is just another variant.
        var schema = "struct task_struct {\n    int nr __kvmt_optional;\n}" + Relocated;
        Assert.Empty(Check(schema, Kernel("lp64"), Kernel("ilp32", lp64: false)));
        var d = Assert.Single(Check(schema, Kernel("lp64")));
        Assert.Equal("KVMT0102", d.Id);
        Assert.Equal((2, 9), At(d));
        Assert.EndsWith("it is optional, but no target kernel has it as declared", d.GetMessage(), StringComparison.Ordinal);
        // A flavor is a variant by design: its optional members are never held to the target kernels.
        Assert.Empty(Check("struct task_struct___other {\n    int nr __kvmt_optional;\n}" + Relocated, Kernel("lp64")));
    }

    [Fact]
    public void OptionalMemberOfAnotherTypeReadsAsAbsent()
    {
        var assembly = GeneratorHarness.CompileAndLoad(GeneratorHarness.Schemas(("/src/t.h",
            "struct task_struct {\n    int pid;\n    int nr __kvmt_optional;\n    unsigned int __state __kvmt_optional;\n}" + Relocated)), "");
        var view = assembly.GetType("Test.Kernel.task_struct")!;
        var blob = TestKernels.Small();
        var relocator = new KvmTyped.Btf.BtfRelocator(KvmTyped.Btf.BtfTypes.Parse(blob), DataModel.LP64, "kernel small");
        var memory = new ByteMemory(DataModel.LP64, 0x1000, new byte[256], relocator);
        memory.Write(0x1000, 99, 4);
        memory.Write(0x1004, 0x402, 4);
        var t = view.GetMethod("At")!.Invoke(null, [memory, 0x1000UL]);
        Assert.Equal(99, view.GetProperty("pid")!.GetValue(t));
        Assert.False((bool)view.GetProperty("Has_nr")!.GetValue(t)!);
        Assert.True((bool)view.GetProperty("Has___state")!.GetValue(t)!);
        Assert.Equal(0x402u, view.GetProperty("__state")!.GetValue(t));
    }

    [Fact]
    public void FlavorIsCheckedAgainstTheStructBeforeItsSuffix()
    {
        var d = Assert.Single(Check("struct task_struct___pre_5_14 {\n    long state;\n}" + Relocated, Kernel()));
        Assert.Equal("KVMT0100", d.Id);
        Assert.StartsWith("task_struct___pre_5_14 (struct task_struct).state does not exist in 6.1-test; it has __state", d.GetMessage(), StringComparison.Ordinal);
        Assert.Empty(Check("struct task_struct___new {\n    unsigned int __state;\n}" + Relocated, Kernel()));
    }

    [Fact]
    public void MissingStructIsReportedUnlessOptional()
    {
        var d = Assert.Single(Check("struct task_strukt {\n    int pid;\n}" + Relocated, Kernel()));
        Assert.Equal("KVMT0101", d.Id);
        Assert.Equal((1, 8), At(d));
        Assert.StartsWith("struct task_strukt does not exist in 6.1-test; it has task_struct", d.GetMessage(), StringComparison.Ordinal);
        Assert.Empty(Check("struct task_strukt {\n    int pid;\n} __attribute__((preserve_access_index)) __kvmt_optional;\n", Kernel()));
    }

    [Theory]
    [InlineData("unsigned long mm;", "an integer cannot hold a pointer")]
    [InlineData("struct list_head *pid;", "a pointer cannot be read from an integer")]
    [InlineData("char comm[8];", "the lengths differ (8 declared, 16 in the kernel)")]
    [InlineData("unsigned int flags;", "the kernel's member is a bitfield (: 3)")]
    [InlineData("int __state;", "the signedness differs")]
    [InlineData("short pid;", "the sizes differ (2 bytes declared, 4 in the kernel)")]
    [InlineData("struct task_struct *tasks;", "a pointer needs a pointer")]
    [InlineData("struct mm_struct tasks;", "the tags differ")]
    [InlineData("struct task_struct *mm;", "it points to struct mm_struct, not struct task_struct")]
    [InlineData("unsigned int comm[16];", "elements: the sizes differ")]
    public void IncompatibleTypeIsReported(string member, string why)
    {
        var schema = "struct mm_struct { int x; }" + Relocated + "struct list_head { struct list_head *next, *prev; };\nstruct task_struct {\n    " + member + "\n}" + Relocated;
        var d = Assert.Single(Check(schema, Kernel()), f => f.Id == "KVMT0102");
        Assert.Equal(4, At(d).Line);
        Assert.Contains(why, d.GetMessage(), StringComparison.Ordinal);
        Assert.Contains("in 6.1-test it is", d.GetMessage(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("int pid;")]
    [InlineData("pid_t pid;")]
    [InlineData("unsigned int __state;")]
    [InlineData("char comm[16];")]
    [InlineData("char comm[];")]
    [InlineData("unsigned int flags : 3;")]
    [InlineData("unsigned int flags : 2;")]
    [InlineData("int prio : 8;")]
    [InlineData("struct list_head tasks;")]
    [InlineData("void *mm;")]
    [InlineData("struct mm_struct *mm;")]
    [InlineData("long nr;")]
    [InlineData("enum { A = -1 } pid;")]
    public void CompatibleTypeIsNotReported(string member)
    {
        var schema = "struct mm_struct { int x; }" + Relocated + "struct list_head { struct list_head *next, *prev; };\nstruct task_struct {\n    " + member + "\n}" + Relocated;
        Assert.Empty(Check(schema, Kernel(), Kernel("6.1-unsigned-char", unsignedChar: true)));
    }

    [Fact]
    public void PlainCharMatchesEitherSignednessButSignedCharDoesNot()
    {
        var schema = "struct task_struct {\n    signed char comm[16];\n}" + Relocated;
        Assert.Empty(Check(schema, Kernel()));
        var d = Assert.Single(Check(schema, Kernel("6.1-unsigned-char", unsignedChar: true)));
        Assert.Contains("elements: the signedness differs", d.GetMessage(), StringComparison.Ordinal);
        Assert.Contains("in 6.1-unsigned-char it is array[16] of unsigned 1-byte int", d.GetMessage(), StringComparison.Ordinal);
        Assert.Empty(Check("struct task_struct {\n    unsigned char comm[16];\n}" + Relocated, Kernel("6.1-unsigned-char", unsignedChar: true)));
        Assert.Single(Check("struct task_struct {\n    unsigned char comm[16];\n}" + Relocated, Kernel()));
        Assert.Empty(Check("struct task_struct {\n    char comm[16];\n}" + Relocated, Kernel(), Kernel("6.1-unsigned-char", unsignedChar: true)));
    }

    [Fact]
    public void DataModelDecidesTheSizeOfLong()
    {
        // nr is a long: 8 bytes in the LP64 kernel and 4 in the ILP32 one; declared int it fits only the latter.
        var schema = "struct task_struct {\n    int nr;\n}" + Relocated;
        var d = Assert.Single(Check(schema, Kernel("lp64"), Kernel("ilp32", lp64: false)));
        Assert.Contains("in lp64 it is signed 8-byte int", d.GetMessage(), StringComparison.Ordinal);
        Assert.Empty(Check("struct task_struct {\n    long nr;\n}" + Relocated, Kernel("lp64"), Kernel("ilp32", lp64: false)));
    }

    [Fact]
    public void CompleteStructWhoseLayoutDiffersIsReportedWithEachOffset()
    {
        var d = Assert.Single(Check("struct list_head {\n    struct list_head *prev;\n    int next;\n    int extra[3];\n};\n", Kernel()), f => f.Id == "KVMT0103");
        Assert.Equal((1, 8), At(d));
        var message = d.GetMessage();
        Assert.Contains("size 24, the kernel's 16", message, StringComparison.Ordinal);
        Assert.Contains("prev at offset 0, the kernel's at offset 8", message, StringComparison.Ordinal);
        Assert.Contains("next at offset 8, the kernel's at offset 0", message, StringComparison.Ordinal);
        Assert.Contains("extra (at offset 12) is not in the kernel's", message, StringComparison.Ordinal);
        Assert.Empty(Check("struct list_head {\n    struct list_head *next, *prev;\n};\n", Kernel(), Kernel("ilp32", lp64: false)));
    }

    [Fact]
    public void CompleteStructTheKernelDoesNotHaveIsTheProjectsOwn()
    {
        Assert.Empty(Check("struct my_record {\n    int a;\n    long b;\n};\n", Kernel()));
    }

    [Fact]
    public void UnreadableDigestIsReported()
    {
        var bad = new InMemoryAdditionalText("/obj/kvmtyped/bad.kvmtk", "kvmtyped-kernel-digest 1\nrelease x\n");
        var d = Assert.Single(Check("struct task_struct {\n    int pid;\n}" + Relocated, bad));
        Assert.Equal("KVMT0104", d.Id);
        Assert.Contains("bad.kvmtk", d.GetMessage(), StringComparison.Ordinal);
        Assert.Contains("'---'", d.GetMessage(), StringComparison.Ordinal);
        Assert.Empty(Check("struct task_struct {\n    int pid;\n}" + Relocated, Kernel()));
    }

    [Fact]
    public void OptionalMarkerOnACompleteStructIsAnError()
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Schemas(("/src/t.h", "struct point {\n    int x;\n    int y __kvmt_optional;\n};\n")));
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal("KVMT0105", d.Id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal((3, 9), At(d));
        var (clean, _) = GeneratorHarness.Run(GeneratorHarness.Schemas(("/src/t.h", "struct point {\n    int x;\n    int y __kvmt_optional;\n}" + Relocated)));
        Assert.Empty(clean.Diagnostics);
    }

    [Fact]
    public void PerArchitectureStructsAreCheckedOnlyAgainstKernelsOfTheirArchitecture()
    {
        // Repo.ArchOf gives files under schemas/linux/arch/x86_64 the X86_64 group, as the targets do.
        var path = Path.Combine(Repo.Schemas, "linux", "arch", "x86_64", "probe.h");
        var files = new List<AdditionalText> { new InMemoryAdditionalText(path, "struct task_struct {\n    unsigned long r15;\n}" + Relocated) };
        var (onArm, _) = GeneratorHarness.Run(files.Append(Kernel("arm", machine: "aarch64")).ToList());
        Assert.Empty(TestKernels.Findings(onArm));
        var (onX86, _) = GeneratorHarness.Run(files.Append(Kernel("x86", machine: "x86_64")).ToList());
        var d = Assert.Single(TestKernels.Findings(onX86));
        Assert.Equal("KVMT0100", d.Id);
        Assert.Contains("r15 does not exist in x86", d.GetMessage(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("error", DiagnosticSeverity.Error)]
    [InlineData("warning", DiagnosticSeverity.Warning)]
    [InlineData("info", DiagnosticSeverity.Info)]
    [InlineData("", DiagnosticSeverity.Warning)]
    public void SeverityIsTheProjects(string setting, DiagnosticSeverity expected)
    {
        var d = Assert.Single(Check("struct task_struct {\n    long state;\n}" + Relocated, "",
            new Dictionary<string, string> { ["KvmTypedKernelCheckSeverity"] = setting }, Kernel()));
        Assert.Equal(expected, d.Severity);
    }

    [Fact]
    public void SeverityNoneChecksNothing()
    {
        Assert.Empty(Check("struct task_struct {\n    long state;\n}" + Relocated, "", new Dictionary<string, string> { ["KvmTypedKernelCheckSeverity"] = "none" }, Kernel()));
    }

    private const string CSharpTask = """
        using KvmTyped.Types;
        namespace Probe;
        [KernelStruct(PreserveAccessIndex = true)]
        public partial struct task_struct
        {
            public partial int pid { get; }
            [KernelOptional] public partial int numa_scan_seq { get; }
            public partial long state { get; }
        }
        """;

    [Fact]
    public void CSharpDeclarationsAreCheckedAtTheirProperties()
    {
        var d = Assert.Single(Check("", CSharpTask, null, Kernel("6.1-rt", withoutNuma: true)));
        Assert.Equal("KVMT0100", d.Id);
        Assert.Equal("Declarations.cs", d.Location.GetLineSpan().Path);
        Assert.Equal((8, 25), At(d));
        Assert.Contains("task_struct.state does not exist in 6.1-rt; it has __state (mark the member [KernelOptional]", d.GetMessage(), StringComparison.Ordinal);
    }

    [Fact]
    public void OptionalMembersGetHasPropertiesThatAskTheKernel()
    {
        var assembly = GeneratorHarness.CompileAndLoad(GeneratorHarness.Schemas(("/src/t.h", "struct task_struct {\n    int pid;\n    int numa_scan_seq __kvmt_optional;\n}" + Relocated)), "");
        var view = assembly.GetType("Test.Kernel.task_struct")!;
        var has = view.GetProperty("Has_numa_scan_seq")!;
        Assert.Null(view.GetProperty("Has_pid"));
        foreach (var (table, expected) in new[]
        {
            (new KernelTypeOffsetTable().Struct("task_struct", 64).Field("task_struct", "pid", 0).Field("task_struct", "numa_scan_seq", 40), true),
            (new KernelTypeOffsetTable().Struct("task_struct", 64).Field("task_struct", "pid", 0), false),
        })
        {
            var memory = new ByteMemory(DataModel.LP64, 0x1000, new byte[64], table);
            memory.Write(0x1000 + 40, 7, 4);
            var t = view.GetMethod("At")!.Invoke(null, [memory, 0x1000UL]);
            Assert.Equal(expected, has.GetValue(t));
            if (expected) Assert.Equal(7, view.GetProperty("numa_scan_seq")!.GetValue(t));
        }
    }

    [Fact]
    public void TargetKernelsAreListedForTheProject()
    {
        var (result, output) = GeneratorHarness.Run(GeneratorHarness.Schemas(("/src/t.h", "struct task_struct {\n    int pid;\n}" + Relocated))
            .Append(Kernel("6.1-a")).Append(Kernel("6.1-b", lp64: false, machine: "i686")).ToList());
        Assert.Empty(result.Diagnostics);
        var list = output.SyntaxTrees.Single(t => t.FilePath.EndsWith("KvmTypedTargetKernels.g.cs", StringComparison.Ordinal)).ToString();
        Assert.Contains("Releases { get; } = new string[] { \"6.1-a\", \"6.1-b\" };", list, StringComparison.Ordinal);
        Assert.Contains("Machines { get; } = new string[] { \"unknown\", \"i386\" };", list, StringComparison.Ordinal);
    }
}
