using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using ELFSharp.ELF;
using ELFSharp.ELF.Sections;
using KvmTyped.Generators.Schema;

namespace KvmTyped.Generators.Tests;

/// <summary>Compiles schema text with gcc -m32 / -m64 and reads back sizeof, _Alignof, offsetof and bitfield
/// positions of every complete, named struct, to compare with <see cref="SchemaLayout"/>.</summary>
/// <remarks>Nothing gcc builds is run: the program is only compiled (<c>gcc -c</c>) and the numbers are read
/// from the object file's data. Sizes, alignments and offsets are the constant initializers of one global
/// array; each bitfield gets a constant instance of its struct with only that field set to all ones, whose
/// bytes give the field's first bit and width. So the oracle works for both models on a host that runs no
/// 32-bit programs, and does not depend on the host's ABI at all.</remarks>
internal static class GccOracle
{
    private const string ValuesSymbol = "kvmt_oracle_values";

    /// <summary>Builds one C file for all structs, compiles it once for the model and reads the object file.
    /// Returns the mismatches (empty when gcc agrees with every number).</summary>
    public static List<string> Compare(string schemaText, ResolvedSchema schema, bool lp64, string workDir)
    {
        var layout = new SchemaLayout(schema, lp64);
        var c = new StringBuilder();
        c.AppendLine("#include <stddef.h>");
        c.AppendLine(schemaText);
        var values = new StringBuilder();
        var instances = new StringBuilder();
        var expected = new List<(string Key, long Value)>();
        var scalarKeys = new List<string>();
        var bitfields = new List<(string Symbol, string Key)>();
        foreach (var s in schema.Structs)
        {
            if (s.IsAnonymous || s.PreserveAccessIndex || schema.Broken.Contains(s.Name)) continue;
            var l = layout.Get(s.Name)!;
            var spell = s.Spelling;
            AddValue($"{s.Name}.sizeof", $"sizeof({spell})", l.Size);
            AddValue($"{s.Name}.alignof", $"_Alignof({spell})", l.Align);
            foreach (var f in l.Fields)
            {
                if (f.BitSize == 0)
                {
                    AddValue($"{s.Name}.{f.Name}.offset", $"offsetof({spell}, {f.Name})", f.Offset);
                    continue;
                }
                var symbol = $"kvmt_oracle_bits{bitfields.Count}";
                instances.AppendLine(CultureInfo.InvariantCulture, $"const {spell} {symbol} = {{ .{f.Name} = ~0ull }};");
                bitfields.Add((symbol, $"{s.Name}.{f.Name}"));
                expected.Add(($"{s.Name}.{f.Name}.bitOffset", f.BitOffset));
                expected.Add(($"{s.Name}.{f.Name}.bitSize", f.BitSize));
            }
        }
        if (expected.Count == 0) return ["no struct was compared"];
        c.AppendLine(CultureInfo.InvariantCulture, $"const unsigned long long {ValuesSymbol}[] = {{");
        c.Append(values);
        c.AppendLine("};");
        c.Append(instances);

        Directory.CreateDirectory(workDir);
        var model = lp64 ? "64" : "32";
        var source = Path.Combine(workDir, $"oracle{model}.c");
        var obj = Path.Combine(workDir, $"oracle{model}.o");
        File.WriteAllText(source, c.ToString());
        var types = Path.Combine(Repo.Schemas, "kvmtyped-types.h");
        Run("gcc", $"-m{model} -std=gnu11 -w -O0 -c -include \"{types}\" -I \"{Path.Combine(Repo.Schemas, "linux")}\" -o \"{obj}\" \"{source}\"");

        var actual = new Dictionary<string, long>(StringComparer.Ordinal);
        using (var elf = ELFReader.Load(obj))
        {
            var expectedClass = lp64 ? Class.Bit64 : Class.Bit32;
            if (elf.Class != expectedClass) throw new InvalidOperationException($"gcc -m{model} wrote an ELF of class {elf.Class}");
            var symbols = SymbolBytes(elf);
            var array = symbols[ValuesSymbol];
            if (array.Length != 8 * scalarKeys.Count)
                throw new InvalidOperationException($"{ValuesSymbol} has {array.Length} bytes, expected {8 * scalarKeys.Count}");
            for (int i = 0; i < scalarKeys.Count; i++)
                actual[scalarKeys[i]] = checked((long)BinaryPrimitives.ReadUInt64LittleEndian(array.AsSpan(8 * i)));
            foreach (var (symbol, key) in bitfields)
            {
                var bytes = symbols[symbol];
                int first = -1, count = 0;
                for (int i = 0; i < bytes.Length * 8; i++)
                {
                    if ((bytes[i / 8] >> (i % 8) & 1) == 0) continue;
                    if (first < 0) first = i;
                    count++;
                }
                actual[$"{key}.bitOffset"] = first;
                actual[$"{key}.bitSize"] = count;
            }
        }

        var mismatches = new List<string>();
        foreach (var (key, value) in expected)
        {
            if (!actual.TryGetValue(key, out var got)) mismatches.Add($"{key}: gcc gave no value");
            else if (got != value) mismatches.Add($"{key}: computed {value}, gcc -m{model} says {got}");
        }
        if (mismatches.Count == 0) Directory.Delete(workDir, recursive: true);
        else mismatches.Insert(0, $"(the C file and its object are kept in {workDir})");
        return mismatches;

        void AddValue(string key, string expression, long computed)
        {
            values.AppendLine(CultureInfo.InvariantCulture, $"  {expression},");
            scalarKeys.Add(key);
            expected.Add((key, computed));
        }
    }

    /// <summary>The initialized bytes of every defined data symbol of a relocatable object, by name.</summary>
    private static Dictionary<string, byte[]> SymbolBytes(IELF elf)
    {
        var result = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var symtab = elf.Sections.OfType<ISymbolTable>().Single(s => s.Name == ".symtab");
        foreach (var entry in symtab.Entries)
        {
            if (entry.Type != SymbolType.Object || entry.PointedSection is not { } section) continue;
            var (value, size) = entry switch
            {
                SymbolEntry<uint> e32 => ((long)e32.Value, (long)e32.Size),
                SymbolEntry<ulong> e64 => (checked((long)e64.Value), checked((long)e64.Size)),
                _ => throw new InvalidOperationException($"unexpected symbol entry {entry.GetType()}"),
            };
            var contents = section.GetContents();
            if (value + size > contents.Length)
                throw new InvalidOperationException($"{entry.Name} lies outside {section.Name}");
            result[entry.Name] = contents.AsSpan((int)value, (int)size).ToArray();
        }
        return result;
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
