using System.Globalization;
using System.Text;
using KvmTyped.Generators.Schema;

namespace KvmTyped.Generators.Tests;

/// <summary>gcc is the layout oracle: every shipped schema and hundreds of random structs per run must have the
/// sizes, alignments, offsets and bitfield positions gcc -m32 and gcc -m64 give them.</summary>
public sealed class GccOracleTests
{
    private static string WorkDir(string name) => Path.Combine(Path.GetTempPath(), "kvmtyped-gcc-oracle", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), name);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ShippedSchemasMatchGcc(bool lp64)
    {
        var files = Repo.ShippedSchemaFiles(lp64 ? "x86_64" : "i386").ToList();
        Assert.NotEmpty(files);
        var units = files.Select(f => SchemaParser.Parse(f, File.ReadAllText(f))).ToList();
        var schema = SchemaResolver.Resolve(units);
        Assert.Empty(schema.Diagnostics);
        var text = string.Concat(files.Select(f => $"#include \"{f}\"\n"));
        var mismatches = GccOracle.Compare(text, schema, lp64, WorkDir("shipped"));
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
        Assert.Contains(schema.Structs, s => s.Name == "list_head" && !s.PreserveAccessIndex);
        Assert.Contains(schema.Structs, s => s.Name == "task_struct" && s.PreserveAccessIndex);
    }

    /// <summary>The oracle itself: a layout that differs from what gcc compiles is reported, field by field, with
    /// gcc's numbers read from the object file (offsets and a bitfield's position and width alike).</summary>
    [Theory]
    [InlineData(false, 12, 128)]
    [InlineData(true, 16, 160)]
    public void OracleReportsWhereGccDisagrees(bool lp64, int cOffset, int dBitOffset)
    {
        var schema = SchemaResolver.Resolve(new[] { SchemaParser.Parse("o.h", "struct o1 { char a; int b; int c; int d : 3; };") });
        Assert.Empty(schema.Diagnostics);
        const string compiled = "struct o1 { char a; long long b; int c; int d : 5; };";
        var mismatches = GccOracle.Compare(compiled, schema, lp64, WorkDir($"self-{lp64}"));
        Assert.Contains($"o1.c.offset: computed 8, gcc -m{(lp64 ? 64 : 32)} says {cOffset}", mismatches);
        Assert.Contains($"o1.d.bitOffset: computed 96, gcc -m{(lp64 ? 64 : 32)} says {dBitOffset}", mismatches);
        Assert.Contains($"o1.d.bitSize: computed 3, gcc -m{(lp64 ? 64 : 32)} says 5", mismatches);
        Assert.DoesNotContain(mismatches, m => m.StartsWith("o1.a.", StringComparison.Ordinal));
    }

    /// <summary>Corners of gcc's layout found by the random test, kept so they stay covered.</summary>
    private const string EdgeCases = """
        struct e1 { char a; long long b : 8 __attribute__((aligned(1))); };
        struct e2 { char a; int b : 4 __attribute__((aligned(2))); };
        struct e3 { char a; long long b __attribute__((aligned(2))); };
        struct e4 { char a; double b[2] __attribute__((aligned(4))); };
        struct e5 { char a; char c : 4; long long b : 8 __attribute__((aligned(1))); };
        struct e6 { char a; long long b __attribute__((aligned(2))); } __attribute__((packed));
        struct e7 { char a; long long b __attribute__((packed, aligned(2))); };
        union e8 { unsigned long a[15]; u64 f : 64 __attribute__((aligned(1))); };
        union e9 { unsigned long a[15]; u64 f : 64; };
        struct e10 { u64 f : 64 __attribute__((aligned(1))); };
        struct e11 { char a[8]; u64 f : 64 __attribute__((aligned(1))); };
        struct e12 { char a[4]; u64 f : 64 __attribute__((aligned(1))); };
        struct e13 { char a[4]; u64 f : 64 __attribute__((aligned(2))); char z; };
        union e14 { char a; long long f : 64 __attribute__((aligned(2))); } __attribute__((packed));
        struct e15 { char a; int : 0; char b; };
        struct e16 { char a; int : 0; };
        struct e17 { char a; long long b : 40; char c; };
        struct e18 { short a : 3; struct { int x : 5; }; char b : 2; } __attribute__((packed));
        """;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EdgeCasesMatchGcc(bool lp64)
    {
        var schema = SchemaResolver.Resolve(new[] { SchemaParser.Parse("edge.h", EdgeCases) });
        Assert.Empty(schema.Diagnostics);
        var mismatches = GccOracle.Compare(EdgeCases, schema, lp64, WorkDir("edge"));
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RandomStructsMatchGcc(bool lp64)
    {
        var seed = Environment.GetEnvironmentVariable("KVMTYPED_ORACLE_SEED") is { } fixedSeed
            ? int.Parse(fixedSeed, CultureInfo.InvariantCulture)
            : Random.Shared.Next();
        var text = RandomSchema.Generate(seed, 520);
        var unit = SchemaParser.Parse("random.h", text);
        var schema = SchemaResolver.Resolve(new[] { unit });
        Assert.True(schema.Diagnostics.Count == 0, $"seed {seed}: " + string.Join("\n", schema.Diagnostics.Take(5)));
        Assert.True(schema.Structs.Count(s => !s.IsAnonymous) >= 500);
        var mismatches = GccOracle.Compare(text, schema, lp64, WorkDir($"random-{seed}"));
        Assert.True(mismatches.Count == 0,
            $"seed {seed} (rerun with KVMTYPED_ORACLE_SEED={seed}); {mismatches.Count} mismatches:\n" + string.Join("\n", mismatches.Take(30)));
    }
}

/// <summary>Random schema text: nested structs and unions, anonymous members, arrays, bitfields (named, unnamed,
/// zero-width), pointers, enums, packed and aligned, flexible array members.</summary>
internal static class RandomSchema
{
    private static readonly string[] Scalars =
    {
        "char", "signed char", "unsigned char", "short", "unsigned short", "int", "unsigned int", "long", "unsigned long",
        "long long", "unsigned long long", "_Bool", "float", "double", "u8", "s16", "u32", "s64", "__u64", "size_t",
        "uintptr_t", "ssize_t", "int32_t", "uint16_t", "enum rnd_e", "enum rnd_big",
    };

    private static readonly (string Type, int Bits)[] BitTypes =
    {
        ("unsigned char", 8), ("signed char", 8), ("char", 8), ("short", 16), ("unsigned short", 16), ("int", 32), ("unsigned int", 32),
        ("long", 32), ("unsigned long", 32), ("long long", 64), ("unsigned long long", 64), ("_Bool", 1), ("u64", 64), ("u16", 16),
        ("enum rnd_e", 32),
    };

    public static string Generate(int seed, int count)
    {
        var rng = new Random(seed);
        var sb = new StringBuilder();
        sb.AppendLine("enum rnd_e { RND_A, RND_B = 7, RND_C };");
        sb.AppendLine("enum rnd_big { RND_BIG = 0x100000000 };");
        var nestable = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var isUnion = rng.Next(6) == 0;
            var keyword = isUnion ? "union" : "struct";
            var name = $"r{i}";
            var structAttr = rng.Next(8) switch
            {
                0 => " __attribute__((packed))",
                1 => $" __attribute__((aligned({1 << rng.Next(6)})))",
                2 => $" __attribute__((packed, aligned({1 << rng.Next(4)})))",
                _ => string.Empty,
            };
            sb.Append(CultureInfo.InvariantCulture, $"{keyword} {name} {{\n");
            var fieldCount = 1 + rng.Next(8);
            var flexible = !isUnion && rng.Next(10) == 0;
            if (flexible) sb.Append("    int base;\n");
            for (var f = 0; f < fieldCount; f++) sb.Append(Member(rng, nestable, $"f{f}", 0));
            if (flexible) sb.Append(CultureInfo.InvariantCulture, $"    {Scalars[rng.Next(Scalars.Length)]} flex[];\n");
            sb.Append(CultureInfo.InvariantCulture, $"}}{structAttr};\n");
            if (!flexible) nestable.Add($"{keyword} {name}");
        }
        return sb.ToString();
    }

    private static string Member(Random rng, List<string> nestable, string name, int depth)
    {
        var memberAttr = rng.Next(12) switch
        {
            0 => $" __attribute__((aligned({1 << rng.Next(5)})))",
            1 => " __attribute__((packed))",
            _ => string.Empty,
        };
        switch (rng.Next(14))
        {
            case 0 or 1:
                var (type, bits) = BitTypes[rng.Next(BitTypes.Length)];
                var width = rng.Next(bits + 1);
                if (width == 0 || rng.Next(8) == 0) return $"    {type} : {width};\n";
                var bitAttr = rng.Next(10) switch
                {
                    0 => " __attribute__((packed))",
                    1 => $" __attribute__((aligned({1 << rng.Next(4)})))",
                    _ => string.Empty,
                };
                return $"    {type} {name} : {width}{bitAttr};\n";
            case 2 when depth < 2:
                var kw = rng.Next(2) == 0 ? "struct" : "union";
                var inner = new StringBuilder($"    {kw} {{\n");
                var n = 1 + rng.Next(4);
                for (var i = 0; i < n; i++) inner.Append(Member(rng, nestable, $"{name}_{i}", depth + 1));
                var innerAttr = rng.Next(6) switch
                {
                    0 => " __attribute__((packed))",
                    1 => $" __attribute__((aligned({1 << rng.Next(5)})))",
                    _ => string.Empty,
                };
                inner.Append(rng.Next(3) == 0 ? $"    }}{innerAttr} {name}{memberAttr};\n" : $"    }}{innerAttr};\n");
                return inner.ToString();
            case 3 when nestable.Count > 0:
                var nested = nestable[rng.Next(Math.Max(0, nestable.Count - 50), nestable.Count)];
                return rng.Next(3) == 0 ? $"    {nested} {name}[{1 + rng.Next(3)}]{memberAttr};\n" : $"    {nested} {name}{memberAttr};\n";
            case 4:
                return $"    {Scalars[rng.Next(Scalars.Length)]} *{name}{memberAttr};\n";
            case 5:
                return $"    {Scalars[rng.Next(Scalars.Length)]} {name}[{1 + rng.Next(5)}]{(rng.Next(3) == 0 ? $"[{1 + rng.Next(3)}]" : string.Empty)}{memberAttr};\n";
            case 6:
                return $"    int (*{name})(int, void *);\n";
            default:
                return $"    {Scalars[rng.Next(Scalars.Length)]} {name}{memberAttr};\n";
        }
    }
}
