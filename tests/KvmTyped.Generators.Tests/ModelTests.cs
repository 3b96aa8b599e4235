using KvmTyped.Generators.Schema;

namespace KvmTyped.Generators.Tests;

/// <summary>Models are values: the same input gives equal, distinct objects with equal hashes, and the C# and C
/// front ends give the same generated members for the same struct.</summary>
public sealed class ModelTests
{
    [Fact]
    public void ParsingTwiceGivesEqualModels()
    {
        var file = Repo.ShippedSchemaFiles().Single(f => f.EndsWith("sched.h", StringComparison.Ordinal));
        var text = File.ReadAllText(file);
        var a = SchemaParser.Parse(file, text);
        var b = SchemaParser.Parse(file, text);
        Assert.NotSame(a, b);
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        var va = KvmTypedGenerator.BuildViews(new[] { a }, "N");
        var vb = KvmTypedGenerator.BuildViews(new[] { b }, "N");
        Assert.NotSame(va, vb);
        Assert.Equal(va, vb);
        Assert.Equal(va.GetHashCode(), vb.GetHashCode());
    }

    [Fact]
    public void ChangingOneMemberChangesTheModel()
    {
        var a = SchemaParser.Parse("x.h", "struct s { int a; char b[4]; };");
        var b = SchemaParser.Parse("x.h", "struct s { int a; char b[5]; };");
        Assert.NotEqual(a, b);
    }

    [Fact]
    public void CSharpAndCDeclarationsGenerateTheSameMembers()
    {
        const string C = """
            struct cs_point {
                int x;
                unsigned long long y;
                char name[8];
                struct cs_point *next;
                unsigned int flag : 1, level : 7;
                long word;
                short grid[2][3];
            };
            """;
        const string CSharp = """
            using KvmTyped.Types;
            namespace Test;
            [KernelStruct]
            public partial struct cs_point
            {
                public partial int x { get; }
                public partial ulong y { get; }
                [KernelArray(8)] public partial string name { get; }
                public partial KPtr<cs_point> next { get; }
                [KernelBits(1)] public partial uint flag { get; }
                [KernelBits(7)] public partial uint level { get; }
                [KernelType("long")] public partial long word { get; }
                [KernelArray(2, 3)] public partial KArray<short> grid { get; }
            }
            """;
        var (fromC, _) = GeneratorHarness.Run(GeneratorHarness.Schemas(("cs_point.h", C)), ns: "Test");
        var (fromCSharp, _) = GeneratorHarness.Run(Array.Empty<Microsoft.CodeAnalysis.AdditionalText>(), CSharp, ns: "Elsewhere");
        Assert.Empty(fromC.Diagnostics);
        Assert.Empty(fromCSharp.Diagnostics);
        var c = fromC.Results.Single().GeneratedSources.Single(s => s.HintName == "Test.cs_point.g.cs").SourceText.ToString();
        var cs = fromCSharp.Results.Single().GeneratedSources.Single(s => s.HintName == "Test.cs_point.g.cs").SourceText.ToString();
        Assert.Equal(c, cs);
        Assert.Contains("KernelReader.ReadBits", cs, StringComparison.Ordinal);

        var assembly = GeneratorHarness.CompileAndLoad(Array.Empty<Microsoft.CodeAnalysis.AdditionalText>(), CSharp);
        var layout = (KvmTyped.Types.KernelStructLayout)assembly.GetType("Test.cs_point")!.GetMethod("StaticLayout")!.Invoke(null, new object[] { DataModel.ILP32 })!;
        Assert.Equal(44UL, layout.Size);
        Assert.Equal(28UL, layout.Field("word").Offset);
    }
}
