using System.Diagnostics;
using System.Globalization;
using System.Text;
using KvmTyped.Generators.Schema;

namespace KvmTyped.Generators.Tests;

/// <summary>aarch64 kernels use the LP64 views: for the C the schemas use, AAPCS64 lays structs out as x86-64 does
/// (plain <c>char</c> is unsigned there, which changes values, not offsets). clang checks it: the LP64 layout the
/// generator computes for every shipped schema is written as <c>_Static_assert</c>s on sizeof, _Alignof and offsetof
/// and compiled with <c>clang --target=aarch64-linux-gnu -ffreestanding -fsyntax-only</c> — nothing is built or
/// run, so no aarch64 libc or cross gcc is needed.</summary>
public sealed class ClangAarch64OracleTests
{
    private const string Target = "aarch64-linux-gnu";

    /// <summary>kvmtyped-types.h with its &lt;sys/types.h&gt; (a host libc header) replaced by the four names the schemas
    /// take from it, as Linux's generic ABI defines them on both machines.</summary>
    private static string FreestandingPrelude()
    {
        var text = File.ReadAllText(Path.Combine(Repo.Schemas, "kvmtyped-types.h"));
        const string include = "#include <sys/types.h>";
        Assert.Contains(include, text, StringComparison.Ordinal);
        return text.Replace(include,
            "typedef unsigned int uid_t;\ntypedef unsigned int gid_t;\ntypedef int pid_t;\ntypedef long ssize_t;", StringComparison.Ordinal);
    }

    /// <summary>One C file: the prelude, the schema text, and a static assertion per number the LP64 layout gives.
    /// Returns the file and how many assertions it holds.</summary>
    private static (string Source, int Assertions, int Bitfields) Build(string schemaText, ResolvedSchema schema, Func<string, long, long>? alter = null)
    {
        var layout = new SchemaLayout(schema, lp64: true);
        var c = new StringBuilder();
        c.AppendLine(FreestandingPrelude());
        c.AppendLine(schemaText);
        // The ABI facts the equality rests on, and the one known difference (plain char's sign).
        c.AppendLine("_Static_assert(sizeof(long) == 8 && sizeof(void *) == 8 && _Alignof(long long) == 8, \"LP64\");");
        c.AppendLine("_Static_assert((char)-1 > 0, \"plain char is unsigned under AAPCS64\");");
        var assertions = 0;
        var bitfields = 0;
        foreach (var s in schema.Structs)
        {
            // preserve_access_index structs have no layout here: relocation places them at open (from BTF).
            if (s.IsAnonymous || s.PreserveAccessIndex || schema.Broken.Contains(s.Name)) continue;
            var l = layout.Get(s.Name)!;
            Check(s.Spelling, "sizeof", $"sizeof({s.Spelling})", l.Size);
            Check(s.Spelling, "_Alignof", $"_Alignof({s.Spelling})", l.Align);
            foreach (var f in l.Fields)
            {
                // offsetof cannot name a bitfield; none is in the shipped schemas (the gcc oracle checks their bits).
                if (f.BitSize != 0)
                {
                    bitfields++;
                    continue;
                }
                Check(s.Spelling, f.Name, $"offsetof({s.Spelling}, {f.Name})", f.Offset);
            }
        }
        return (c.ToString(), assertions, bitfields);

        void Check(string type, string what, string expression, long value)
        {
            var key = $"{type}.{what}";
            var expected = alter?.Invoke(key, value) ?? value;
            c.AppendLine(CultureInfo.InvariantCulture, $"_Static_assert({expression} == {expected}, \"{key} is {expected} in the LP64 views\");");
            assertions++;
        }
    }

    private static (int Code, string Errors) Clang(string source)
    {
        var dir = Path.Combine(Path.GetTempPath(), "kvmtyped-clang-aarch64", Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, $"layout-{Guid.NewGuid():N}.c");
        File.WriteAllText(file, source);
        var psi = new ProcessStartInfo("clang", [$"--target={Target}", "-ffreestanding", "-fsyntax-only", "-std=gnu11", "-I", Path.Combine(Repo.Schemas, "linux"), file])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("clang is needed for the aarch64 layout check (apt-get install clang; .ci/run installs it)", e);
        }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            _ = stdout.Result;
            if (p.ExitCode == 0)
                File.Delete(file);
            return (p.ExitCode, stderr);
        }
    }

    private static (string Text, ResolvedSchema Schema) Shipped()
    {
        var files = Repo.ShippedSchemaFiles("x86_64").ToList();
        Assert.NotEmpty(files);
        var schema = SchemaResolver.Resolve(files.Select(f => SchemaParser.Parse(f, File.ReadAllText(f))).ToList());
        Assert.Empty(schema.Diagnostics);
        return (string.Concat(files.Select(f => $"#include \"{f}\"\n")), schema);
    }

    [Fact]
    public void Shipped_schemas_have_their_lp64_layouts_under_aapcs64()
    {
        var (text, schema) = Shipped();
        var (source, assertions, bitfields) = Build(text, schema);
        var (code, errors) = Clang(source);
        Assert.True(code == 0, $"clang --target={Target} disagrees with the LP64 layouts:\n{errors}");
        Assert.Equal(0, bitfields);
        // Every struct the generator lays out had its size, alignment and each member's offset checked.
        var laidOut = schema.Structs.Where(s => !s.IsAnonymous && !s.PreserveAccessIndex && !schema.Broken.Contains(s.Name)).ToList();
        var layout = new SchemaLayout(schema, lp64: true);
        Assert.Equal(laidOut.Sum(s => 2 + layout.Get(s.Name)!.Fields.Count()), assertions);
        Assert.Contains(laidOut, s => s.Name == "list_head");
    }

    [Fact]
    public void A_wrong_number_is_reported_by_clang_naming_it()
    {
        var (text, schema) = Shipped();
        var (source, _, _) = Build(text, schema, (key, value) => key == "struct list_head.prev" ? value + 8 : value);
        var (code, errors) = Clang(source);
        Assert.NotEqual(0, code);
        Assert.Contains("struct list_head.prev is 16 in the LP64 views", errors, StringComparison.Ordinal);
        Assert.Single(errors.Split('\n'), l => l.Contains("error:", StringComparison.Ordinal));
    }
}
