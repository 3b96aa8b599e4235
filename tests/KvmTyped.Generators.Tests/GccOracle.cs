using System.Diagnostics;
using System.Globalization;
using System.Text;
using KvmTyped.Generators.Schema;

namespace KvmTyped.Generators.Tests;

/// <summary>Compiles schema text with gcc -m32 / -m64 and reads back sizeof, _Alignof, offsetof and bitfield
/// positions of every complete, named struct, to compare with <see cref="SchemaLayout"/>.</summary>
internal static class GccOracle
{
    /// <summary>Builds one C program for all structs, compiles it once for the model and runs it.
    /// Returns the mismatches (empty when gcc agrees with every number).</summary>
    public static List<string> Compare(string schemaText, ResolvedSchema schema, bool lp64, string workDir)
    {
        var layout = new SchemaLayout(schema, lp64);
        var c = new StringBuilder();
        c.AppendLine("#include <stdio.h>");
        c.AppendLine("#include <string.h>");
        c.AppendLine(schemaText);
        var bitHelpers = new StringBuilder();
        var main = new StringBuilder();
        var expected = new List<(string Key, long Value)>();
        var n = 0;
        foreach (var s in schema.Structs)
        {
            if (s.IsAnonymous || s.PreserveAccessIndex || schema.Broken.Contains(s.Name)) continue;
            var l = layout.Get(s.Name)!;
            var spell = s.Spelling;
            main.AppendLine(CultureInfo.InvariantCulture, $"  printf(\"{s.Name}.sizeof %zu\\n{s.Name}.alignof %zu\\n\", sizeof({spell}), _Alignof({spell}));");
            expected.Add(($"{s.Name}.sizeof", l.Size));
            expected.Add(($"{s.Name}.alignof", l.Align));
            foreach (var f in l.Fields)
            {
                if (f.BitSize == 0)
                {
                    main.AppendLine(CultureInfo.InvariantCulture, $"  printf(\"{s.Name}.{f.Name}.offset %zu\\n\", offsetof({spell}, {f.Name}));");
                    expected.Add(($"{s.Name}.{f.Name}.offset", f.Offset));
                    continue;
                }
                n++;
                bitHelpers.AppendLine(CultureInfo.InvariantCulture, $$"""
                    static void bits{{n}}(void) {
                      {{spell}} v; unsigned char *p = (unsigned char *)&v; int first = -1, count = 0;
                      memset(&v, 0, sizeof v); v.{{f.Name}} = ~0ull;
                      for (int i = 0; i < (int)sizeof v * 8; i++) if (p[i / 8] >> (i % 8) & 1) { if (first < 0) first = i; count++; }
                      printf("{{s.Name}}.{{f.Name}}.bitOffset %d\n{{s.Name}}.{{f.Name}}.bitSize %d\n", first, count);
                    }
                    """);
                main.AppendLine(CultureInfo.InvariantCulture, $"  bits{n}();");
                expected.Add(($"{s.Name}.{f.Name}.bitOffset", f.BitOffset));
                expected.Add(($"{s.Name}.{f.Name}.bitSize", f.BitSize));
            }
        }
        c.Append(bitHelpers);
        c.AppendLine("int main(void) {");
        c.Append(main);
        c.AppendLine("  return 0;\n}");

        Directory.CreateDirectory(workDir);
        var model = lp64 ? "64" : "32";
        var source = Path.Combine(workDir, $"oracle{model}.c");
        var exe = Path.Combine(workDir, $"oracle{model}");
        File.WriteAllText(source, c.ToString());
        var types = Path.Combine(Repo.Schemas, "kvmtyped-types.h");
        Run("gcc", $"-m{model} -std=gnu11 -w -O0 -include \"{types}\" -I \"{Path.Combine(Repo.Schemas, "linux")}\" -o \"{exe}\" \"{source}\"");
        var output = Run(exe, string.Empty);
        var actual = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ');
            actual[parts[0]] = long.Parse(parts[1], CultureInfo.InvariantCulture);
        }
        var mismatches = new List<string>();
        foreach (var (key, value) in expected)
        {
            if (!actual.TryGetValue(key, out var got)) mismatches.Add($"{key}: gcc printed nothing");
            else if (got != value) mismatches.Add($"{key}: computed {value}, gcc -m{model} says {got}");
        }
        if (expected.Count == 0) mismatches.Add("no struct was compared");
        if (mismatches.Count == 0) Directory.Delete(workDir, recursive: true);
        else mismatches.Insert(0, $"(the C program is kept in {workDir})");
        return mismatches;
    }

    private static string Run(string file, string args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {args} failed ({p.ExitCode}): {stderr}");
        return stdout.Result;
    }
}
