using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using KvmTyped.Tools;

namespace KvmTyped.Generators.Tests;

/// <summary>schemas/kvmtyped-types.h lets gcc compile a schema: it must declare the built-in names the generator knows
/// (one list, <see cref="BuiltinTypeNames"/>, shared with schema import) with the same size and signedness, and no
/// others.</summary>
public sealed partial class BuiltinTypeNamesTests
{
    [GeneratedRegex(@"^typedef\s+[^;]*?\b(\w+)\s*;", RegexOptions.Multiline)]
    private static partial Regex Typedef();

    [Fact]
    public void The_header_declares_no_name_the_generator_lacks()
    {
        var header = File.ReadAllText(Path.Combine(Repo.Schemas, "kvmtyped-types.h"));
        var declared = Typedef().Matches(header).Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(declared);
        var known = BuiltinTypeNames.All.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        Assert.DoesNotContain(declared, n => !known.Contains(n));
        Assert.Equal(known.Count, BuiltinTypeNames.All.Length);
    }

    [Theory]
    [InlineData("-m32")]
    [InlineData("-m64")]
    public void Every_built_in_name_has_its_size_and_sign_under_gcc(string model)
    {
        var c = new StringBuilder();
        foreach (var (name, ctype) in BuiltinTypeNames.All)
            c.AppendLine($"_Static_assert(sizeof({name}) == sizeof({ctype}) && (({name})-1 < ({name})0) == (({ctype})-1 < ({ctype})0), \"{name} is not {ctype}\");");
        var dir = Path.Combine(Path.GetTempPath(), "kvmtyped-builtins", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, $"builtins{model}.c");
        File.WriteAllText(file, c.ToString());
        var psi = new ProcessStartInfo("gcc", [model, "-std=gnu11", "-fsyntax-only", "-include", Path.Combine(Repo.Schemas, "kvmtyped-types.h"), file])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, err);
        Directory.Delete(dir, recursive: true);
    }
}
