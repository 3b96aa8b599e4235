using System.Diagnostics;
using System.Globalization;
using KvmTyped.Btf;
using KvmTyped.Dwarf;
using KvmTyped.Formats.Elf;
using KvmTyped.IO;

namespace KvmTyped.Tests.Dwarf;

/// <summary>Converting DWARF in tests, and comparing the result with the BTF pahole makes of the same DWARF.</summary>
internal static class DwarfTest
{
    /// <summary>Writes an ELF file to a temporary file and converts its DWARF.</summary>
    public static BtfTypes Convert(byte[] elf, int pointerSize = 8)
    {
        var path = Path.Combine(Path.GetTempPath(), "kvmtyped-dwarf-" + Guid.NewGuid().ToString("N") + ".o");
        File.WriteAllBytes(path, elf);
        try
        {
            return ConvertFile(path, pointerSize);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Converts the DWARF of an ELF file.</summary>
    public static BtfTypes ConvertFile(string path, int? pointerSize = null, int parallelism = 2, bool map = true)
    {
        using var file = RandomAccessFile.Open(path, writable: false, map);
        var image = ElfImage.Parse(file);
        var blob = DwarfToBtf.Convert(image, parallelism) ?? throw new InvalidOperationException($"{path} has no DWARF");
        return BtfTypes.Parse(blob, null, path + " (DWARF)", pointerSize ?? (image.Is64 ? 8 : 4));
    }

    /// <summary>Whether a program is in a folder of PATH.</summary>
    public static bool OnPath(string tool) =>
        Environment.GetEnvironmentVariable("PATH")?.Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, tool))) == true;

    /// <summary>Runs a tool, failing the test with its output when it fails.</summary>
    public static string Run(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{tool} {string.Join(' ', args)} failed ({p.ExitCode}): {stderr}");
        return stdout.Result;
    }

    /// <summary>A struct or union's layout: size, then every member (anonymous members flattened) as
    /// name@bit-offset/bit-size/size.</summary>
    public static string Layout(BtfTypes types, int id) =>
        types.SizeOf(id).ToString(CultureInfo.InvariantCulture) + " {" + string.Join(", ",
            types.GetFlattenedMembers(id).Select(f => string.Create(CultureInfo.InvariantCulture, $"{f.Name}@{f.BitOffset}/{f.BitSize}/{f.Size}"))) + "}";

    /// <summary>Every named struct and union of <paramref name="expected"/> must be in <paramref name="actual"/>, once,
    /// with the same layout; and the other way round; typedef and enum names (and enum values) must agree too.
    /// Returns the differences.</summary>
    public static List<string> CompareAll(BtfTypes expected, BtfTypes actual)
    {
        var problems = new List<string>();
        var names = new HashSet<(BtfKind, string)>();
        for (int id = 1; id <= expected.LastId; id++)
        {
            var kind = expected.KindOf(id);
            if (kind is BtfKind.Struct or BtfKind.Union or BtfKind.Typedef or BtfKind.Enum or BtfKind.Enum64 && expected.NameOf(id).Length > 0)
                names.Add((kind, expected.NameOf(id)));
        }
        var actualNames = new HashSet<(BtfKind, string)>();
        for (int id = 1; id <= actual.LastId; id++)
        {
            var kind = actual.KindOf(id);
            if (kind is BtfKind.Struct or BtfKind.Union or BtfKind.Typedef or BtfKind.Enum or BtfKind.Enum64 && actual.NameOf(id).Length > 0)
                actualNames.Add((kind, actual.NameOf(id)));
        }
        foreach (var missing in names.Except(actualNames).OrderBy(x => x.Item2, StringComparer.Ordinal))
            problems.Add($"{missing.Item1} {missing.Item2}: missing from the DWARF conversion");
        foreach (var extra in actualNames.Except(names).OrderBy(x => x.Item2, StringComparer.Ordinal))
            problems.Add($"{extra.Item1} {extra.Item2}: in the DWARF conversion but not in pahole's BTF");
        foreach (var (kind, name) in names.Intersect(actualNames).OrderBy(x => x.Item2, StringComparer.Ordinal))
        {
            var e = expected.FindAll(name).Where(i => expected.KindOf(i) == kind).ToList();
            var a = actual.FindAll(name).Where(i => actual.KindOf(i) == kind).ToList();
            if (a.Count != 1)
            {
                problems.Add($"{kind} {name}: {a.Count} definitions in the DWARF conversion, expected one");
                continue;
            }
            string want, got;
            switch (kind)
            {
                case BtfKind.Struct or BtfKind.Union:
                    want = Layout(expected, e[0]);
                    got = Layout(actual, a[0]);
                    break;
                case BtfKind.Enum or BtfKind.Enum64:
                    want = expected.SizeOf(e[0]).ToString(CultureInfo.InvariantCulture) + ":" + string.Join(",", expected.GetEnumValues(e[0]));
                    got = actual.SizeOf(a[0]).ToString(CultureInfo.InvariantCulture) + ":" + string.Join(",", actual.GetEnumValues(a[0]));
                    break;
                default:
                    want = Describe(expected, e[0]);
                    got = Describe(actual, a[0]);
                    break;
            }
            if (want != got)
                problems.Add($"{kind} {name}: pahole {want}\n    DWARF {got}");
        }
        return problems;
    }

    /// <summary>What a typedef names: the kind and name of its target, and its size when it has one.</summary>
    private static string Describe(BtfTypes t, int id)
    {
        int target = t.Get(id).TargetId;
        var size = t.TrySizeOf(target, out long s, out _) ? s.ToString(CultureInfo.InvariantCulture) : "-";
        var r = t.Resolve(target);
        return $"{t.KindOf(r)} {t.NameOf(r)} size {size}";
    }
}

/// <summary>A theory that needs gcc and pahole (Debian gcc-multilib and dwarves), skipped naming the one missing.</summary>
public sealed class RequiresGccAndPaholeTheoryAttribute : TheoryAttribute
{
    /// <summary>Creates the attribute.</summary>
    public RequiresGccAndPaholeTheoryAttribute()
    {
        if (!DwarfTest.OnPath("gcc"))
            Skip = "needs gcc (Debian gcc-multilib) to compile the C it compares, which is not installed";
        else if (!DwarfTest.OnPath("pahole"))
            Skip = "needs pahole (Debian dwarves) as the oracle, which is not installed";
    }
}
