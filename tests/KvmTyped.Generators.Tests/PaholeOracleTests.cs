using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using KvmTyped.Generators.Schema;
using KvmTyped.TestSupport;

namespace KvmTyped.Generators.Tests;

/// <summary>pahole is the BTF oracle: against the real Debian kernels in the fixtures (i386 PAE = ILP32, amd64 =
/// LP64), every complete shipped struct has the kernel's size and offsets, and every member of a relocated subset
/// exists in the kernel's struct with the size the schema gives it.</summary>
public sealed partial class PaholeOracleTests
{
    [GeneratedRegex(@"^(?<indent>\t+)(?<decl>[^/]*?)\s*;\s*/\*\s*(?<off>\d+)(?::\s*\d+)?\s+(?<size>\d+)\s*\*/")]
    private static partial Regex MemberLine();

    [GeneratedRegex(@"\(\s*\*\s*(?<name>\w+)\s*\)|(?<name>\w+)\s*(\[[^\]]*\]\s*)*(:\s*\d+)?$")]
    private static partial Regex MemberName();

    [GeneratedRegex(@"size: (?<size>\d+)")]
    private static partial Regex SizeLine();

    private sealed record Member(string Name, long Offset, long Size, bool TopLevel);

    private static Dictionary<string, (long Size, List<Member> Members)> Pahole(string file, IEnumerable<string> names)
    {
        var psi = new ProcessStartInfo("pahole", $"-C {string.Join(",", names)} \"{file}\"") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEnd();
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"pahole failed: {err}");
        var result = new Dictionary<string, (long, List<Member>)>(StringComparer.Ordinal);
        string? current = null;
        var members = new List<Member>();
        long size = -1;
        foreach (var line in text.Split('\n'))
        {
            if (current is null)
            {
                var m = Regex.Match(line, @"^(struct|union) (\w+) \{");
                if (m.Success)
                {
                    current = m.Groups[2].Value;
                    members = new List<Member>();
                    size = -1;
                }
                continue;
            }
            var member = MemberLine().Match(line);
            if (member.Success)
            {
                var name = MemberName().Match(member.Groups["decl"].Value).Groups["name"].Value;
                members.Add(new Member(name, long.Parse(member.Groups["off"].Value, CultureInfo.InvariantCulture),
                    long.Parse(member.Groups["size"].Value, CultureInfo.InvariantCulture), member.Groups["indent"].Value.Length == 1));
            }
            var sizeMatch = SizeLine().Match(line);
            if (sizeMatch.Success && size < 0) size = long.Parse(sizeMatch.Groups["size"].Value, CultureInfo.InvariantCulture);
            if (line.StartsWith('}')) // "};" or "} __attribute__((__aligned__(64)));"
            {
                result[current] = (size, members);
                current = null;
            }
        }
        return result;
    }

    [Theory]
    [InlineData(false, "i386/vmlinux-6.1.0-50-686-pae.btf")]
    [InlineData(true, "amd64/vmlinux-6.1.0-56-amd64.gz")]
    public void ShippedSchemasAgreeWithTheKernelsBtf(bool lp64, string fixture)
    {
        var units = Repo.ShippedSchemaFiles(lp64 ? "x86_64" : "i386").Select(f => SchemaParser.Parse(f, File.ReadAllText(f))).ToList();
        var schema = SchemaResolver.Resolve(units);
        Assert.Empty(schema.Diagnostics);
        var layout = new SchemaLayout(schema, lp64);
        // A flavor (task_struct___pre_5_14) names the kernel's struct without its ___ suffix; its members are those other
        // kernels have, so only the struct must exist here.
        static string Kernel(string name) => name.IndexOf("___", StringComparison.Ordinal) is var at and > 0 ? name[..at] : name;
        var structs = schema.Structs.Where(s => !s.IsAnonymous && s.Spelling.StartsWith("struct ", StringComparison.Ordinal)).ToList();
        // pahole stops at the first name it cannot find: the structs only some kernels have (__kvmt_optional) are asked
        // for one by one.
        var kernel = Pahole(Fixtures.Get(fixture), structs.Where(s => !s.Optional).Select(s => Kernel(s.Name)).Distinct());
        foreach (var s in structs.Where(s => s.Optional && !kernel.ContainsKey(Kernel(s.Name))))
        {
            foreach (var (name, k) in Pahole(Fixtures.Get(fixture), [Kernel(s.Name)]))
                kernel[name] = k;
        }
        var problems = new List<string>();
        foreach (var s in structs)
        {
            if (!kernel.TryGetValue(Kernel(s.Name), out var k))
            {
                if (!s.Optional)
                    problems.Add($"{s.Name}: not in the kernel's BTF");
                continue;
            }
            if (Kernel(s.Name) != s.Name)
                continue;
            if (!s.PreserveAccessIndex)
            {
                var l = layout.Get(s.Name)!;
                if (l.Size != k.Size) problems.Add($"{s.Name}: size {l.Size}, kernel {k.Size}");
                foreach (var f in l.Fields)
                {
                    var km = k.Members.FirstOrDefault(m => m.Name == f.Name && m.TopLevel);
                    if (km is null) problems.Add($"{s.Name}.{f.Name}: not in the kernel");
                    else if (km.Offset != f.Offset || km.Size != f.Size) problems.Add($"{s.Name}.{f.Name}: at {f.Offset} size {f.Size}, kernel at {km.Offset} size {km.Size}");
                }
                continue;
            }
            foreach (var f in s.Fields)
            {
                var km = k.Members.FirstOrDefault(m => m.Name == f.Name);
                if (km is null)
                {
                    if (!f.Optional)
                        problems.Add($"{s.Name}.{f.Name}: not in the kernel's struct");
                    continue;
                }
                var element = SchemaResolver.Element(f.Type);
                if (element.IsRecord && schema.StructsByName[element.Name].PreserveAccessIndex) continue;
                var size = layout.SizeAlign(f.Type).Size;
                if (f.Type.Kind == CTypeKind.Array && f.Type.Length < 0) continue;
                if (size != km.Size) problems.Add($"{s.Name}.{f.Name}: schema size {size}, kernel {km.Size}");
            }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
