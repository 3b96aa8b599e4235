using KvmTyped.Generators.Schema;
using Microsoft.CodeAnalysis;

namespace KvmTyped.Generators.Tests;

/// <summary>Every diagnostic id, reported by the generator at the schema's file, line and column.</summary>
public sealed class DiagnosticTests
{
    [Theory]
    [InlineData("KVMT0001", "struct a {\n    int x\n};\n", 3, 1, "expected ';'")]
    [InlineData("KVMT0001", "struct a { int x; }\nstruct b { int y; };\n", 2, 1, "expected ';' after a declaration")]
    [InlineData("KVMT0008", "struct a { int x; } garbage;\n", 1, 21, "variable")]
    [InlineData("KVMT0002", "struct a {\n    int ok;\n    mystery_t x;\n};\n", 3, 15, "unknown type 'mystery_t'")]
    [InlineData("KVMT0002", "struct a { struct never_defined inner; };\n", 1, 33, "never defined")]
    [InlineData("KVMT0003", "struct a { int v; struct b x; };\nstruct b { struct a y; };\n", 2, 21, "contains itself by value")]
    [InlineData("KVMT0003", "struct a { struct a self[2]; };\n", 1, 21, "contains itself")]
    [InlineData("KVMT0004", "struct a {\n    int x;\n    union { long y; short x; };\n};\n", 3, 27, "duplicate member 'x'")]
    [InlineData("KVMT0005", "struct a { int x[0]; };\n", 1, 18, "size 0")]
    [InlineData("KVMT0005", "struct a { int x[2 - 5]; };\n", 1, 18, "size -3")]
    [InlineData("KVMT0006", "struct a { unsigned char x : 9; };\n", 1, 26, "wider than its type")]
    [InlineData("KVMT0006", "struct a { long x : 40; };\n", 1, 17, "under ILP32")]
    [InlineData("KVMT0008", "#define X 1\nstruct a { int x; };\n", 1, 1, "#define")]
    [InlineData("KVMT0008", "struct a { int x; } __attribute__((deprecated));\n", 1, 36, "attribute 'deprecated'")]
    [InlineData("KVMT0008", "struct a { long double x; };\n", 1, 12, "long double")]
    [InlineData("KVMT0008", "typedef int wide_t __attribute__((aligned(8)));\n", 1, 20, "on a typedef")]
    [InlineData("KVMT0008", "struct a { int x; int f(int); };\n", 1, 23, "function as a struct member")]
    [InlineData("KVMT0008", "struct a { int x; };\nextern int y;\n", 2, 1, "'extern'")]
    [InlineData("KVMT0001", "struct a { int x[LEN]; };\n", 1, 18, "not a constant")]
    [InlineData("KVMT0001", "struct a { int x; /* open\n", 1, 19, "unterminated comment")]
    [InlineData("KVMT0008", "struct a { int f[]; int g; };\n", 1, 16, "flexible array member")]
    [InlineData("KVMT0001", "struct a { char x[(-9223372036854775807-1)/-1]; };\n", 1, 43, "integer overflow")]
    [InlineData("KVMT0001", "struct a { char x[(-9223372036854775807-1)%-1]; };\n", 1, 43, "integer overflow")]
    [InlineData("KVMT0001", "struct a { char x[4611686018427387904 * 4]; };\n", 1, 39, "integer overflow")]
    [InlineData("KVMT0001", "struct a { char x[9223372036854775807 + 1]; };\n", 1, 39, "integer overflow")]
    [InlineData("KVMT0001", "struct a { char x[-(-9223372036854775807-1)]; };\n", 1, 19, "integer overflow")]
    [InlineData("KVMT0001", "enum e { BIG = 9223372036854775807, NEXT };\nstruct a { int x; };\n", 1, 37, "integer overflow")]
    [InlineData("KVMT0001", "struct a { char x[02000000000000000000001]; };\n", 1, 19, "invalid integer literal")]
    [InlineData("KVMT0009", "struct a { char x[4611686018427387904][4]; int y; };\n", 1, 19, "more than the limit")]
    [InlineData("KVMT0009", "struct a { char x[4][1073741824]; int y; };\n", 1, 17, "member 'char x[4][1073741824]' of 'struct a' is larger than the limit")]
    [InlineData("KVMT0009", "struct a { char x[2147483647]; int y; };\n", 1, 8, "'struct a' is larger than the limit")]
    public void SchemaErrorsAreReportedWhereTheyAre(string id, string schema, int line, int column, string messagePart)
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Schemas(("/schemas/bad.h", schema)));
        var d = result.Diagnostics.First(x => x.Id == id);
        Assert.True(result.Diagnostics.Length <= 2, string.Join("\n", result.Diagnostics));
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        var span = d.Location.GetLineSpan();
        Assert.Equal("/schemas/bad.h", span.Path);
        Assert.Equal((line, column), (span.StartLinePosition.Line + 1, span.StartLinePosition.Character + 1));
        Assert.Contains(messagePart, d.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        Assert.DoesNotContain(result.Results.Single().GeneratedSources, s => s.HintName.EndsWith(".a.g.cs", StringComparison.Ordinal) && id != "KVMT0008" && id != "KVMT0001");
    }

    [Fact]
    public void ConflictingRedefinitionAcrossFilesIsKvmt0007()
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Schemas(("/s/one.h", "struct a { int x; };\n"), ("/s/two.h", "\nstruct a { long x; };\n")));
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal("KVMT0007", d.Id);
        var span = d.Location.GetLineSpan();
        Assert.Equal(("/s/two.h", 2, 8), (span.Path, span.StartLinePosition.Line + 1, span.StartLinePosition.Character + 1));
        Assert.Contains("/s/one.h:1:8", d.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
    }

    [Fact]
    public void ParsingResumesAfterAnErrorInsideAStruct()
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Schemas(("/s/r.h", "struct a { int x[LEN]; int y; };\nstruct b { int z; };\n")));
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal("KVMT0001", d.Id);
        Assert.Contains(result.Results.Single().GeneratedSources, s => s.HintName == "Test.Kernel.b.g.cs");
        Assert.DoesNotContain(result.Results.Single().GeneratedSources, s => s.HintName == "Test.Kernel.a.g.cs");
    }

    [Theory]
    [InlineData("struct a { int x[{0}1{1}]; };", "(", ")")]
    [InlineData("struct a { int {0}x{1}; };", "(", ")")]
    [InlineData("struct a { {0} int x; {1} };", "struct { ", " };")]
    [InlineData("struct a { int x[{0}1]; };", "-", "")]
    public void DeepNestingIsASyntaxErrorNotAStackOverflow(string template, string open, string close)
    {
        var text = template.Replace("{0}", string.Concat(Enumerable.Repeat(open, 100_000)), StringComparison.Ordinal)
            .Replace("{1}", string.Concat(Enumerable.Repeat(close, 100_000)), StringComparison.Ordinal);
        var unit = SchemaParser.Parse("deep.h", text);
        Assert.Contains(unit.Diagnostics, d => d.Id == "KVMT0001" && d.Message.Contains("nested more than", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("int {0}x;", "*")]
    [InlineData("int x{0};", "[1]")]
    public void LongDeclaratorsAreASyntaxErrorNotADeepType(string template, string repeated)
    {
        var text = "struct a { " + template.Replace("{0}", string.Concat(Enumerable.Repeat(repeated, 100_000)), StringComparison.Ordinal) + " };";
        var unit = SchemaParser.Parse("deep.h", text);
        Assert.Contains(unit.Diagnostics, d => d.Id == "KVMT0001" && d.Message.Contains("nested more than", StringComparison.Ordinal));
    }

    private static string Chain(int levels)
    {
        // s0 holds s1 by value, …, s(levels-1) holds an int: s0 is `levels` levels deep. Defined innermost first
        // and outermost first in two halves, so neither definition order alone keeps the checks shallow.
        var lines = new List<string>();
        for (var i = 0; i < levels; i++)
        {
            lines.Add(i == levels - 1 ? $"struct s{i} {{ int a; }};" : $"struct s{i} {{ struct s{i + 1} a; }};");
        }
        var half = levels / 2;
        return string.Join("\n", lines.Skip(half).Reverse().Concat(lines.Take(half))) + "\n";
    }

    private static T OnSmallStack<T>(Func<T> run)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = run();
            }
            catch (Exception e)
            {
                error = e;
            }
        }, 1024 * 1024);
        thread.Start();
        thread.Join();
        if (error is not null) throw new InvalidOperationException("schema processing failed", error);
        return result;
    }

    [Fact]
    public void StructsNestedByValueDeeperThan256LevelsAreKvmt0009NotAStackOverflow()
    {
        var (result, _) = OnSmallStack(() => GeneratorHarness.Run(GeneratorHarness.Schemas(("/s/deep.h", Chain(2001)))));
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal("KVMT0009", d.Id);
        // s1744 is 257 levels deep (s1745 … s2000 below it): the first too deep, reported once at its member.
        Assert.Contains("'struct s1744' nests structs and unions by value more than 256 levels deep, through member 'a' (struct s1745)",
            d.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        var generated = result.Results.Single().GeneratedSources.Select(s => s.HintName).ToHashSet();
        Assert.Contains("Test.Kernel.s1745.g.cs", generated);
        Assert.Contains("Test.Kernel.s2000.g.cs", generated);
        Assert.DoesNotContain("Test.Kernel.s1744.g.cs", generated);
        Assert.DoesNotContain("Test.Kernel.s0.g.cs", generated);
    }

    [Theory]
    [InlineData(32, null)]
    [InlineData(33, "KVMT0009")]
    public void AnonymousMembersNestedMoreThan32DeepAreKvmt0009(int levels, string? id)
    {
        // struct a { struct { … int x; … }; int y; }: every view member must map to its own layout offset.
        var text = "struct a { " + string.Concat(Enumerable.Repeat("struct { ", levels)) + "int x; " + string.Concat(Enumerable.Repeat("}; ", levels)) + "int y; };\n";
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Schemas(("/s/anon.h", text)));
        var generated = result.Results.Single().GeneratedSources;
        if (id is null)
        {
            Assert.Empty(result.Diagnostics);
            var view = generated.Single(s => s.HintName == "Test.Kernel.a.g.cs").SourceText.ToString();
            Assert.Contains("_address + 0UL", view, StringComparison.Ordinal);
            Assert.Contains("_address + 4UL", view, StringComparison.Ordinal);
            Assert.Equal(8, SchemaLayoutOf(text).Size);
            return;
        }
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal(id, d.Id);
        Assert.Contains("nested more than 32 levels deep in 'struct a'", d.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        Assert.DoesNotContain(generated, s => s.HintName == "Test.Kernel.a.g.cs");
    }

    private static StructLayout SchemaLayoutOf(string text)
    {
        var schema = SchemaResolver.Resolve(new[] { SchemaParser.Parse("t.h", text) });
        return new SchemaLayout(schema, lp64: true).Get("a")!;
    }

    [Fact]
    public void StructsNestedExactly256LevelsHaveALayout()
    {
        var unit = SchemaParser.Parse("ok.h", Chain(256));
        var schema = OnSmallStack(() => SchemaResolver.Resolve(new[] { unit }));
        Assert.Empty(schema.Diagnostics);
        var layout = OnSmallStack(() => new SchemaLayout(schema, lp64: true).Get("s0"));
        Assert.Equal(4, layout!.Size);
        var deeper = SchemaResolver.Resolve(new[] { SchemaParser.Parse("deep.h", Chain(257)) });
        Assert.Equal("KVMT0009", Assert.Single(deeper.Diagnostics).Id);
    }

    [Fact]
    public void StructLargerThanTheLimitOnlyUnderLp64IsReportedOnceAndBreaksItsContainers()
    {
        // 2^28 pointers: 1 GiB under ILP32, 2 GiB under LP64.
        var schema = SchemaResolver.Resolve(new[] { SchemaParser.Parse("big.h", "struct top { struct outer o[2]; };\nstruct big { void *p[268435456]; };\nstruct outer { int x; union { struct big b; }; };\n" +
            "struct fine { int x; };\nstruct also_fine { struct fine f; };\n") });
        var d = Assert.Single(schema.Diagnostics);
        Assert.Equal(("KVMT0009", 2, 20), (d.Id, d.Pos.Line, d.Pos.Column));
        Assert.Contains("member 'void *p[268435456]' of 'struct big'", d.Message, StringComparison.Ordinal);
        Assert.Contains("big", schema.Broken);
        Assert.Contains("outer", schema.Broken);
        Assert.Contains("top", schema.Broken);
        Assert.DoesNotContain("fine", schema.Broken);
        Assert.DoesNotContain("also_fine", schema.Broken);
        Assert.Equal(4, new SchemaLayout(schema, lp64: false).Get("also_fine")!.Size);
    }

    [Fact]
    public void HeaderFilesNotMarkedAsSchemasAreIgnored()
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Schemas(("/other/not-a-schema.h", "#define X 1\nint f(void);\n"), ("/s/ok.h", "struct ok { int x; };\n")));
        Assert.Empty(result.Diagnostics);
        Assert.Contains(result.Results.Single().GeneratedSources, s => s.HintName == "Test.Kernel.ok.g.cs");
    }

    [Fact]
    public void IdenticalRedefinitionIsAccepted()
    {
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Schemas(("/s/one.h", "struct a { int x; };\n"), ("/s/two.h", "struct a { int x; };\n")));
        Assert.Empty(result.Diagnostics);
    }

    [Fact]
    public void CSharpDeclarationThatIsNotPartialIsKvmt0008()
    {
        const string Source = """
            using KvmTyped.Types;
            namespace Test;
            [KernelStruct]
            public struct not_partial { }
            """;
        var (result, _) = GeneratorHarness.Run(Array.Empty<AdditionalText>(), Source);
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal("KVMT0008", d.Id);
        Assert.Equal(4, d.Location.GetLineSpan().StartLinePosition.Line + 1);
    }

    [Fact]
    public void CSharpPropertyWithoutCEquivalentIsKvmt0008()
    {
        const string Source = """
            using KvmTyped.Types;
            namespace Test;
            [KernelStruct]
            public partial struct odd
            {
                public partial decimal money { get; }
            }
            """;
        var (result, _) = GeneratorHarness.Run(Array.Empty<AdditionalText>(), Source);
        Assert.Contains(result.Diagnostics, d => d.Id == "KVMT0008" && d.GetMessage(System.Globalization.CultureInfo.InvariantCulture).Contains("decimal", StringComparison.Ordinal));
    }

    [Fact]
    public void EveryIdHasADescriptorAndAReleaseNote()
    {
        var ids = typeof(SchemaDiagnosticIds).GetFields().Select(f => (string)f.GetRawConstantValue()!).ToList();
        Assert.Equal(9, ids.Count);
        var notes = File.ReadAllText(Path.Combine(Repo.Root, "generators", "KvmTyped.Generators", "AnalyzerReleases.Unshipped.md"));
        foreach (var id in ids) Assert.Contains(id + " |", notes, StringComparison.Ordinal);
    }
}
