using System.Globalization;
using System.Text;

namespace KvmTyped.Tests.Dwarf;

/// <summary>Random C declarations for the DWARF oracle tests: structs and unions with nested and anonymous members,
/// bitfields (named, unnamed, zero-width, of enum type), arrays of one to three dimensions, flexible arrays, pointers,
/// function pointers, qualifiers, typedefs, enums (negative, 64-bit), packed and aligned attributes. Every type gets a
/// variable, so gcc emits it. The same seed gives the same text.</summary>
internal static class RandomCTypes
{
    private static readonly string[] Scalars =
    [
        "char", "signed char", "unsigned char", "short", "unsigned short", "int", "unsigned int", "long", "unsigned long",
        "long long", "unsigned long long", "_Bool", "float", "double", "long double", "enum rnd_e", "enum rnd_neg",
        "enum rnd_big", "rnd_u8", "rnd_s64", "rnd_fn", "const int", "volatile unsigned short", "const volatile long",
    ];

    private static readonly (string Type, int Bits)[] BitTypes =
    [
        ("unsigned char", 8), ("signed char", 8), ("char", 8), ("short", 16), ("unsigned short", 16), ("int", 32),
        ("unsigned int", 32), ("long long", 64), ("unsigned long long", 64), ("_Bool", 1), ("enum rnd_e", 32), ("rnd_u8", 8),
    ];

    public static string Generate(int seed, int count)
    {
        var rng = new Random(seed);
        var sb = new StringBuilder();
        sb.AppendLine("enum rnd_e { RND_A, RND_B = 7, RND_C };");
        sb.AppendLine("enum rnd_neg { RND_N = -5, RND_P = 100000 };");
        sb.AppendLine("enum rnd_big { RND_BIG = 0x100000000ULL, RND_BIGGER };");
        sb.AppendLine("enum { RND_ANON_X = 3, RND_ANON_Y };");
        sb.AppendLine("typedef unsigned char rnd_u8;");
        sb.AppendLine("typedef long long rnd_s64;");
        sb.AppendLine("typedef int (*rnd_fn)(int, const char *, ...);");
        sb.AppendLine("struct rnd_opaque;");
        var vars = new StringBuilder("enum rnd_e rnd_ve; enum rnd_neg rnd_vn; enum rnd_big rnd_vb; rnd_fn rnd_vf; struct rnd_opaque *rnd_vo;\n");
        var nestable = new List<string>();
        for (int i = 0; i < count; i++)
        {
            bool isUnion = rng.Next(6) == 0;
            string keyword = isUnion ? "union" : "struct";
            string name = $"r{i}";
            string attr = rng.Next(8) switch
            {
                0 => " __attribute__((packed))",
                1 => $" __attribute__((aligned({1 << rng.Next(6)})))",
                _ => "",
            };
            bool typedefd = rng.Next(5) == 0;
            bool flexible = !isUnion && rng.Next(10) == 0;
            sb.Append(typedefd ? $"typedef {keyword} {{\n" : $"{keyword} {name} {{\n");
            if (flexible)
                sb.Append("    int base;\n");
            int fields = 1 + rng.Next(8);
            for (int f = 0; f < fields; f++)
                sb.Append(Member(rng, nestable, $"f{f}", 0, name));
            if (flexible)
                sb.Append(CultureInfo.InvariantCulture, $"    {Scalars[rng.Next(Scalars.Length)]} flex[];\n");
            string spelled = typedefd ? $"{name}_t" : $"{keyword} {name}";
            sb.Append(typedefd ? $"}}{attr} {name}_t;\n" : $"}}{attr};\n");
            vars.Append(CultureInfo.InvariantCulture, $"{spelled} rnd_v{i};\n");
            if (!flexible)
                nestable.Add(spelled);
        }
        return sb.Append(vars).ToString();
    }

    private static string Member(Random rng, List<string> nestable, string name, int depth, string owner)
    {
        string attr = rng.Next(12) switch
        {
            0 => $" __attribute__((aligned({1 << rng.Next(5)})))",
            1 => " __attribute__((packed))",
            _ => "",
        };
        switch (rng.Next(16))
        {
            case 0 or 1:
            {
                var (type, bits) = BitTypes[rng.Next(BitTypes.Length)];
                int width = rng.Next(bits + 1);
                if (width == 0 || rng.Next(8) == 0)
                    return $"    {type} : {width};\n";
                return $"    {type} {name} : {width};\n";
            }
            case 2 when depth < 2:
            {
                string kw = rng.Next(2) == 0 ? "struct" : "union";
                var inner = new StringBuilder($"    {kw} {{\n");
                int n = 1 + rng.Next(4);
                for (int i = 0; i < n; i++)
                    inner.Append(Member(rng, nestable, $"{name}_{i}", depth + 1, owner));
                inner.Append(rng.Next(3) == 0 ? $"    }} {name}{attr};\n" : "    };\n");
                return inner.ToString();
            }
            case 3 when nestable.Count > 0:
            {
                string nested = nestable[rng.Next(Math.Max(0, nestable.Count - 50), nestable.Count)];
                return rng.Next(3) == 0 ? $"    {nested} {name}[{1 + rng.Next(3)}]{attr};\n" : $"    {nested} {name}{attr};\n";
            }
            case 4:
                return $"    {Scalars[rng.Next(Scalars.Length)]} *{name}{attr};\n";
            case 5:
            {
                string dims = $"[{1 + rng.Next(5)}]";
                if (rng.Next(3) == 0)
                    dims += $"[{1 + rng.Next(3)}]";
                if (rng.Next(5) == 0)
                    dims += $"[{1 + rng.Next(2)}]";
                return $"    {Scalars[rng.Next(Scalars.Length)]} {name}{dims}{attr};\n";
            }
            case 6:
                return $"    int (*{name})(int, void *);\n";
            case 7:
                return $"    struct rnd_opaque *{name};\n";
            case 8 when depth == 0:
                return $"    struct {owner}_{name}_named {{ short a; long b; }} {name};\n";
            default:
                return $"    {Scalars[rng.Next(Scalars.Length)]} {name}{attr};\n";
        }
    }
}
