using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using KvmTyped.Btf;
using KvmTyped.TestSupport;

namespace KvmTyped.Tests.Dwarf;

/// <summary>pahole is the oracle: C compiled with <c>gcc -g -c</c> (DWARF 4 and 5, <c>-m32</c> and <c>-m64</c>, plain,
/// compressed three ways, and with type units) converted by this reader gives the same structs, unions, typedefs and
/// enums as <c>pahole --btf_encode_detached</c> gives for the plain object of the same flags: every size, and every
/// member's bit offset, bit size and size, anonymous members flattened.</summary>
/// <remarks>pahole runs with <c>--btf_gen_floats</c>, as kernel builds run it (without it, an i386 <c>long double</c>
/// becomes a 4-byte placeholder int). It reads the plain object: Debian's pahole 1.24 writes nothing for a zstd-compressed object and only
/// part of the types of one with type units. Object files are relocatable, so these tests also check the relocations of
/// <c>.debug_info</c> against <c>.debug_str</c> (RELA on x86-64, REL on i386).</remarks>
public sealed partial class PaholeAgreementTests
{
    public static TheoryData<int, int, string> Variants()
    {
        var data = new TheoryData<int, int, string>();
        foreach (int dwarf in new[] { 4, 5 })
            foreach (int bits in new[] { 32, 64 })
                foreach (var variant in new[] { "plain", "zlib", "zlib-gnu", "zstd", "type-units" })
                    data.Add(dwarf, bits, variant);
        return data;
    }

    [GeneratedRegex(@"^\s*(struct|union)\s+(\w+)\s*\{", RegexOptions.Multiline)]
    private static partial Regex NamedComposite();

    [GeneratedRegex(@"typedef\s+(?:struct|union)\s*\{[^}]*\}\s*(\w+)\s*;")]
    private static partial Regex TypedefComposite();

    /// <summary>The shipped schemas (schemas/linux/*.h and the architecture's folder under schemas/linux/arch), each
    /// struct given a variable so gcc emits it.</summary>
    private static string SchemaSource(int bits)
    {
        var linux = Path.Combine(Fixtures.RepoRoot, "schemas", "linux");
        var files = Directory.GetFiles(linux, "*.h")
            .Concat(Directory.GetFiles(Path.Combine(linux, "arch", bits == 64 ? "x86_64" : "i386"), "*.h"))
            .OrderBy(f => f, StringComparer.Ordinal).ToList();
        var c = new StringBuilder();
        int n = 0;
        foreach (var f in files)
            c.AppendLine(CultureInfo.InvariantCulture, $"#include \"{f}\"");
        foreach (var f in files)
        {
            var text = File.ReadAllText(f);
            foreach (Match m in NamedComposite().Matches(text))
                c.AppendLine(CultureInfo.InvariantCulture, $"{m.Groups[1].Value} {m.Groups[2].Value} kvmt_var{n++};");
            foreach (Match m in TypedefComposite().Matches(text))
                c.AppendLine(CultureInfo.InvariantCulture, $"{m.Groups[1].Value} kvmt_var{n++};");
        }
        Assert.True(n >= 10, $"expected the shipped schemas to name at least 10 structs, found {n}");
        return c.ToString();
    }

    [RequiresGccAndPaholeTheory]
    [MemberData(nameof(Variants))]
    public void ShippedSchemasAgreeWithPahole(int dwarf, int bits, string variant)
    {
        using var dir = new TempDir();
        var source = Path.Combine(dir.Path, "schemas.c");
        File.WriteAllText(source, SchemaSource(bits));
        var schemas = Path.Combine(Fixtures.RepoRoot, "schemas");
        string[] include = ["-include", Path.Combine(schemas, "kvmtyped-types.h"), "-I", Path.Combine(schemas, "linux")];
        var problems = Compare(dir.Path, source, dwarf, bits, variant, include, out int compared);
        Assert.True(compared >= 10, $"only {compared} structs compared");
        Assert.True(problems.Count == 0, $"{problems.Count} differences:\n" + string.Join("\n", problems.Take(30)));
    }

    [RequiresGccAndPaholeTheory]
    [MemberData(nameof(Variants))]
    public void RandomTypesAgreeWithPahole(int dwarf, int bits, string variant)
    {
        int seed = Environment.GetEnvironmentVariable("KVMTYPED_ORACLE_SEED") is { } fixedSeed
            ? int.Parse(fixedSeed, CultureInfo.InvariantCulture)
            : Random.Shared.Next();
        using var dir = new TempDir();
        var source = Path.Combine(dir.Path, "random.c");
        File.WriteAllText(source, RandomCTypes.Generate(seed, 300));
        var problems = Compare(dir.Path, source, dwarf, bits, variant, [], out int compared);
        Assert.True(compared >= 300, $"seed {seed}: only {compared} types compared");
        Assert.True(problems.Count == 0,
            $"seed {seed} (rerun with KVMTYPED_ORACLE_SEED={seed}); {problems.Count} differences:\n" + string.Join("\n", problems.Take(30)));
    }

    /// <summary>Compiles the source plain and as the variant, has pahole encode the plain object, converts the variant's
    /// DWARF, and compares.</summary>
    private static List<string> Compare(string dir, string source, int dwarf, int bits, string variant, string[] extra, out int compared)
    {
        string[] common = [$"-m{bits}", $"-gdwarf-{dwarf}", "-g", "-O0", "-w", "-std=gnu11", "-c", .. extra];
        var plain = Path.Combine(dir, "plain.o");
        DwarfTest.Run("gcc", [.. common, "-o", plain, source]);
        var reference = Path.Combine(dir, "plain.btf");
        DwarfTest.Run("pahole", "--btf_gen_floats", $"--btf_encode_detached={reference}", plain);
        var obj = Path.Combine(dir, variant + ".o");
        switch (variant)
        {
            case "plain":
                obj = plain;
                break;
            case "zlib" or "zlib-gnu":
                DwarfTest.Run("gcc", [.. common, $"-gz={variant}", "-o", obj, source]);
                break;
            case "zstd":
                DwarfTest.Run("objcopy", "--compress-debug-sections=zstd", plain, obj);
                break;
            case "type-units":
                DwarfTest.Run("gcc", [.. common, "-fdebug-types-section", "-o", obj, source]);
                break;
        }
        int pointerSize = bits / 8;
        var expected = BtfReader.Load(reference, null, pointerSize);
        var actual = DwarfTest.ConvertFile(obj, pointerSize);
        compared = 0;
        for (int id = 1; id <= expected.LastId; id++)
            if (expected.KindOf(id) is BtfKind.Struct or BtfKind.Union or BtfKind.Typedef && expected.NameOf(id).Length > 0)
                compared++;
        return DwarfTest.CompareAll(expected, actual);
    }
}
