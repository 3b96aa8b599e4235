using System.Text.Json;
using KvmTyped.Cli;

namespace KvmTyped.Generators.Tests;

public sealed class SchemaLayoutCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmtyped-layout-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string text)
    {
        var path = Path.Combine(_dir, "s.h");
        File.WriteAllText(path, text);
        return path;
    }

    private const string Sample = """
        struct inner { long a; char b; };
        struct outer {
            char c;
            union { int i; long long ll; };
            unsigned int flag : 3, mode : 5;
            struct inner in;
            void *p;
        };
        struct relocated { int x; } __attribute__((preserve_access_index));
        """;

    [Theory]
    [InlineData("lp64", 48, 8, 8, 24, 40)]
    [InlineData("ilp32", 28, 4, 4, 16, 24)]
    [InlineData(null, 48, 8, 8, 24, 40)]
    public void JsonListsEveryStructWithFlattenedFields(string? model, int size, int align, int llOffset, int inOffset, int pOffset)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(0, SchemaLayoutCommand.Run(Write(Sample), model, json: true, stdout, stderr));
        Assert.Equal(string.Empty, stderr.ToString());
        using var doc = JsonDocument.Parse(stdout.ToString());
        var structs = doc.RootElement.GetProperty("structs").EnumerateArray().ToList();
        Assert.Equal(new[] { "inner", "outer" }, structs.Select(s => s.GetProperty("name").GetString()));
        var outer = structs[1];
        Assert.Equal(size, outer.GetProperty("size").GetInt32());
        Assert.Equal(align, outer.GetProperty("align").GetInt32());
        var fields = outer.GetProperty("fields").EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!);
        Assert.Equal(new[] { "c", "i", "ll", "flag", "mode", "in", "p" }, outer.GetProperty("fields").EnumerateArray().Select(f => f.GetProperty("name").GetString()));
        Assert.Equal(llOffset, fields["ll"].GetProperty("offset").GetInt32());
        Assert.Equal(llOffset * 8, fields["ll"].GetProperty("bitOffset").GetInt32());
        Assert.Equal(0, fields["ll"].GetProperty("bitSize").GetInt32());
        Assert.Equal((llOffset + 8) * 8, fields["flag"].GetProperty("bitOffset").GetInt32());
        Assert.Equal(3, fields["flag"].GetProperty("bitSize").GetInt32());
        Assert.Equal((llOffset + 8) * 8 + 3, fields["mode"].GetProperty("bitOffset").GetInt32());
        Assert.Equal(5, fields["mode"].GetProperty("bitSize").GetInt32());
        Assert.Equal(inOffset, fields["in"].GetProperty("offset").GetInt32());
        Assert.Equal(pOffset, fields["p"].GetProperty("offset").GetInt32());
        Assert.Equal("relocated", doc.RootElement.GetProperty("relocatable")[0].GetString());
    }

    [Fact]
    public void TextOutputNamesSizes()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, SchemaLayoutCommand.Run(Write(Sample), "ILP32", json: false, stdout, new StringWriter()));
        Assert.Contains("outer: size 28, align 4", stdout.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void SchemaErrorsExitOneWithPositions()
    {
        var stderr = new StringWriter();
        var path = Write("struct a {\n    mystery_t x;\n};\n");
        Assert.Equal(1, SchemaLayoutCommand.Run(path, "lp64", json: true, new StringWriter(), stderr));
        Assert.Equal($"kvmtyped: {path}:2:15: KVMT0002 unknown type 'mystery_t' in member 'x' of 'struct a'", stderr.ToString().TrimEnd());
    }

    [Theory]
    [InlineData("struct a { char x[(-9223372036854775807-1)/-1]; };\n", "1:43: KVMT0001 integer overflow in a constant expression (values are 64-bit signed)")]
    [InlineData("struct a { char x[2147483647]; int y; };\n", "1:8: KVMT0009 'struct a' is larger than the limit of 2147483647 (2^31 - 1) bytes")]
    [InlineData("struct s0 { struct s1 a; };\nstruct s1 { int a; };\n", null)]
    public void LimitsAndOverflowsExitOneWithPositions(string schema, string? expected)
    {
        var stderr = new StringWriter();
        var path = Write(schema);
        var code = SchemaLayoutCommand.Run(path, "ilp32", json: true, new StringWriter(), stderr);
        if (expected is null)
        {
            Assert.Equal(0, code);
            return;
        }
        Assert.Equal(1, code);
        Assert.Equal($"kvmtyped: {path}:{expected}", stderr.ToString().TrimEnd());
    }

    [Fact]
    public void DeepNestingExitsOneWithKvmt0009()
    {
        var text = string.Concat(Enumerable.Range(0, 400).Select(i => i == 399 ? $"struct s{i} {{ int a; }};\n" : $"struct s{i} {{ struct s{i + 1} a; }};\n"));
        var stderr = new StringWriter();
        var path = Write(text);
        Assert.Equal(1, SchemaLayoutCommand.Run(path, "lp64", json: false, new StringWriter(), stderr));
        Assert.Equal($"kvmtyped: {path}:144:27: KVMT0009 'struct s143' nests structs and unions by value more than 256 levels deep, through member 'a' (struct s144); use a pointer",
            stderr.ToString().TrimEnd());
    }

    [Fact]
    public void BadModelExitsTwo()
    {
        var stderr = new StringWriter();
        Assert.Equal(2, SchemaLayoutCommand.Run(Write(Sample), "lp128", json: true, new StringWriter(), stderr));
        Assert.Contains("lp128", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void MissingFileExitsOne()
    {
        var stderr = new StringWriter();
        Assert.Equal(1, SchemaLayoutCommand.Run(Path.Combine(_dir, "none.h"), null, json: true, new StringWriter(), stderr));
        Assert.StartsWith("kvmtyped: ", stderr.ToString(), StringComparison.Ordinal);
    }
}
