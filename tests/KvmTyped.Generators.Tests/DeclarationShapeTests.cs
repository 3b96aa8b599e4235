using System.Globalization;
using Microsoft.CodeAnalysis;

namespace KvmTyped.Generators.Tests;

/// <summary>Every shape of C# declaration the diagnostics cover, fed to the generator beside a C schema and a valid C#
/// declaration: the generator never throws (no CS8785), reports the expected KVMT id on the declaration, keeps emitting
/// every other view, and leaves no error inside a generated file (a refused declaration still gets bodies that throw,
/// so the KVMT diagnostic is the only error).</summary>
public sealed class DeclarationShapeTests
{
    private const string Prelude = """
        using KvmTyped.Types;

        """;

    /// <summary>A valid declaration beside every shape: it must be emitted whatever happens to the others.</summary>
    private const string Fine = """

        namespace Other
        {
            [KernelStruct]
            public partial struct fine
            {
                public partial int x { get; }
            }
        }
        """;

    public static TheoryData<string, string, string, string[]> Shapes => new()
    {
        {
            "not partial", "KVMT0008", """
            namespace Test { [KernelStruct] public struct bad { } }
            """, []
        },
        {
            "nested in a partial class", "KVMT0008", """
            namespace Test { public static partial class Outer { [KernelStruct] public partial struct bad { public partial int x { get; } } } }
            """, []
        },
        {
            "nested in a class that is not partial", "KVMT0008", """
            namespace Test { public static class Outer { [KernelStruct] public partial struct bad { public partial int x { get; } } } }
            """, ["CS9248"]
        },
        {
            "nested in a [KernelStruct]", "KVMT0008", """
            namespace Test
            {
                [KernelStruct] public partial struct outer
                {
                    public partial int y { get; }
                    [KernelStruct] public partial struct bad { public partial int x { get; } }
                }
            }
            """, []
        },
        {
            "generic", "KVMT0008", """
            namespace Test { [KernelStruct] public partial struct bad<T> { public partial int x { get; } } }
            """, []
        },
        {
            "a record struct", "KVMT0008", """
            namespace Test { [KernelStruct] public partial record struct bad { public partial int x { get; } } }
            """, []
        },
        {
            "a setter", "KVMT0008", """
            namespace Test { [KernelStruct] public partial struct bad { public partial int x { get; set; } } }
            """, []
        },
        {
            "a static property", "KVMT0008", """
            namespace Test { [KernelStruct] public partial struct bad { public static partial int x { get; } } }
            """, []
        },
        {
            "an internal property", "KVMT0008", """
            namespace Test { [KernelStruct] public partial struct bad { internal partial int x { get; } } }
            """, []
        },
        {
            "a type with no C equivalent", "KVMT0008", """
            namespace Test { [KernelStruct] public partial struct bad { public partial decimal x { get; } } }
            """, []
        },
        {
            "a string without a length", "KVMT0008", """
            namespace Test { [KernelStruct] public partial struct bad { public partial string x { get; } } }
            """, []
        },
        {
            "[KernelArray] on an int", "KVMT0008", """
            namespace Test { [KernelStruct] public partial struct bad { [KernelArray(6)] public partial int x { get; } } }
            """, []
        },
        {
            "[KernelArray] of two dimensions on a string", "KVMT0008", """
            namespace Test { [KernelStruct] public partial struct bad { [KernelArray(2, 3)] public partial string x { get; } } }
            """, []
        },
        {
            "a KArray without [KernelArray]", "KVMT0008", """
            namespace Test { [KernelStruct] public partial struct bad { public partial KArray<int> x { get; } } }
            """, []
        },
        {
            "[KernelType] that the C# type does not hold", "KVMT0008", """
            namespace Test { [KernelStruct] public partial struct bad { [KernelType("unsigned long")] public partial long x { get; } } }
            """, []
        },
        {
            "[KernelType] that is not C", "KVMT0001", """
            namespace Test { [KernelStruct] public partial struct bad { [KernelType("not a type at all")] public partial long x { get; } } }
            """, []
        },
        {
            "an array of size 0", "KVMT0005", """
            namespace Test { [KernelStruct] public partial struct bad { [KernelArray(0)] public partial KArray<int> x { get; } } }
            """, []
        },
        {
            "a bitfield wider than its type", "KVMT0006", """
            namespace Test { [KernelStruct] public partial struct bad { [KernelBits(40)] public partial int x { get; } } }
            """, []
        },
        {
            "an alignment that is not a power of 2", "KVMT0001", """
            namespace Test { [KernelStruct(Aligned = 3)] public partial struct bad { public partial int x { get; } } }
            """, []
        },
        {
            "a struct that contains itself", "KVMT0003", """
            namespace Test { [KernelStruct] public partial struct bad { public partial int x { get; } public partial bad self { get; } } }
            """, []
        },
        {
            "a pointer to a struct nothing defines", "KVMT0002", """
            namespace Test { [KernelStruct] public partial struct bad { [KernelType("struct nowhere *")] public partial KPtr<bad> x { get; } } }
            """, []
        },
        {
            "a pointer to a refused declaration", "KVMT0008", """
            namespace Test
            {
                [KernelStruct] public partial struct refused { public partial decimal x { get; } }
                [KernelStruct] public partial struct bad { public partial KPtr<refused> p { get; } }
            }
            """, []
        },
        {
            "a struct that embeds a refused declaration", "KVMT0008", """
            namespace Test
            {
                [KernelStruct] public partial struct refused { public partial decimal x { get; } }
                [KernelStruct] public partial struct bad { public partial refused inner { get; } }
            }
            """, []
        },
        {
            "a redefinition of a C schema's struct", "KVMT0007", """
            namespace Test { [KernelStruct] public partial struct ok { public partial long x { get; } } }
            """, []
        },
        {
            "a copy of a C schema's struct", "KVMT0007", """
            namespace Test { [KernelStruct] public partial struct ok { public partial int x { get; } } }
            """, []
        },
        {
            "optional on a complete struct", "KVMT0105", """
            namespace Test { [KernelStruct] public partial struct bad { [KernelOptional] public partial int x { get; } } }
            """, []
        },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void EveryDeclarationShapeEndsInADiagnosticNeverAnException(string shape, string id, string declaration, string[] compilerErrorsInUserCode)
    {
        var (result, output) = GeneratorHarness.Run(GeneratorHarness.Schemas(("/s/ok.h", "struct ok { int x; };\n")), Prelude + declaration + Fine);
        var run = result.Results.Single();
        Assert.True(run.Exception is null, shape + ": the generator threw " + run.Exception);
        Assert.DoesNotContain(result.Diagnostics, d => d.Id == "CS8785");
        Assert.Contains(result.Diagnostics, d => d.Id == id && d.Location.GetLineSpan().Path == "Declarations.cs");
        Assert.All(result.Diagnostics, d => Assert.StartsWith("KVMT", d.Id, StringComparison.Ordinal));

        var names = run.GeneratedSources.Select(s => s.HintName).ToList();
        Assert.Contains("Test.Kernel.ok.g.cs", names);
        Assert.Contains("Other.fine.g.cs", names);

        var errors = output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.True(errors.All(e => e.Location.SourceTree?.FilePath == "Declarations.cs"),
            shape + ": errors in generated files:\n" + string.Join("\n", errors.Where(e => e.Location.SourceTree?.FilePath != "Declarations.cs")));
        Assert.Equal(compilerErrorsInUserCode.OrderBy(x => x, StringComparer.Ordinal),
            errors.Select(e => e.Id).Distinct().OrderBy(x => x, StringComparer.Ordinal));
    }

    [Fact]
    public void ADeclarationInTheGlobalNamespaceIsSupported()
    {
        const string Source = """
            using KvmTyped.Types;

            [KernelStruct]
            public partial struct Gadget
            {
                public partial int serial { get; }
                public partial KPtr<Gadget> next { get; }
                public partial Widget inner { get; }
            }

            [KernelStruct]
            public partial struct Widget
            {
                [KernelArray(4)] public partial string tag { get; }
            }

            public static class Probe
            {
                public static ulong Size(KvmTyped.DataModel model) => Gadget.StaticLayout(model)!.Size;
            }
            """;
        var (result, output) = GeneratorHarness.Run(GeneratorHarness.Schemas(("/s/ok.h", "struct ok { int x; };\n")), Source);
        Assert.Null(result.Results.Single().Exception);
        Assert.Empty(result.Diagnostics);
        var names = result.Results.Single().GeneratedSources.Select(s => s.HintName).ToList();
        Assert.Contains("Test.Kernel.ok.g.cs", names);
        Assert.Contains("global.Gadget.g.cs", names);
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));

        var assembly = GeneratorHarness.CompileAndLoad(GeneratorHarness.Schemas(("/s/ok.h", "struct ok { int x; };\n")), Source);
        var size = (ulong)assembly.GetType("Probe")!.GetMethod("Size")!.Invoke(null, [DataModel.LP64])!;
        Assert.Equal(24UL, size);
        Assert.NotNull(assembly.GetType("Test.Kernel.ok"));
    }

    [Fact]
    public void ARefusedDeclarationNamesWhatToDeclareInstead()
    {
        const string Source = """
            using KvmTyped.Types;
            namespace Test;
            [KernelStruct]
            public partial struct bad
            {
                [KernelArray(6)] public partial int x { get; }
            }
            """;
        var (result, _) = GeneratorHarness.Run([], Source);
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal("KVMT0008", d.Id);
        Assert.Equal(6, d.Location.GetLineSpan().StartLinePosition.Line + 1);
        Assert.Contains("KArray<int>", d.GetMessage(CultureInfo.InvariantCulture), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("struct a { int x; };\nstruct A { int y; };\n", "Test.Kernel")]
    [InlineData("struct a { int x; };\n", "Odd<Name>:\"|?*")]
    public void NoNameMakesTheGeneratorThrow(string schema, string ns)
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Schemas(("/s/names.h", schema)), "", ns);
        var run = result.Results.Single();
        Assert.True(run.Exception is null, "the generator threw " + run.Exception);
        Assert.DoesNotContain(result.Diagnostics, d => d.Id == "CS8785");
        Assert.NotEmpty(run.GeneratedSources);
    }
}
