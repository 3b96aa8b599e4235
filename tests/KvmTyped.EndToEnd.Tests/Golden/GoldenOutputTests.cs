using System.Text;
using KvmTyped.Cli;
using KvmTyped.EndToEnd.Tests.Linux;
using KvmTyped.TestSupport;

namespace KvmTyped.EndToEnd.Tests.Golden;

/// <summary>The whole output of <c>info</c>, <c>ps</c>, <c>log</c> and <c>uname</c> (text and JSON, exit code and
/// standard error included) on every fixture and the sample, compared byte for byte with files checked in under
/// Golden/. A change that alters an output on purpose refreshes them with <c>KVMTYPED_UPDATE_GOLDEN=1</c> and the
/// diff is read in review. Paths are written as $REPO, $FIXTURES and $CACHE so the files do not depend on the
/// machine.</summary>
public class GoldenOutputTests
{
    /// <summary>A dump, its namelist (null: the dump's own symbols), and an optional BTF file, by the name its golden
    /// files use.</summary>
    public sealed record GoldenCase(string Name, string Core, string? Namelist, string? Btf)
    {
        public override string ToString() => Name;
    }

    private static readonly string Sample = Path.Combine("$REPO", "samples", "linux-amd64");

    private static readonly GoldenCase[] Cases =
    [
        new("sample", Path.Combine(Sample, "vmcore.kdump"), Path.Combine(Sample, "System.map-6.1.0-56-amd64"), null),
        new("amd64-nokaslr-elf-map", Dumps.NoKaslrElf, Dumps.Amd64Map, null),
        new("amd64-nokaslr-elf-vmlinux", Dumps.NoKaslrElf, Dumps.Amd64Vmlinux, null),
        new("amd64-kdump-elf-map", Dumps.Amd64KdumpElf, Dumps.Amd64Map, null),
        new("amd64-kdump-elf-vmlinux", Dumps.Amd64KdumpElf, Dumps.Amd64Vmlinux, null),
        new("amd64-kdump-lzo-map", Dumps.Amd64Kdump, Dumps.Amd64Map, null),
        new("amd64-kdump-lzo-vmlinux", Dumps.Amd64Kdump, Dumps.Amd64Vmlinux, null),
        new("amd64-panic-zlib-map", "amd64/panic-kaslr/dump.kdump-zlib", Dumps.Amd64Map, null),
        new("i386-kdump-elf-map-btf", Dumps.I386KdumpElf, Dumps.I386Map, DumpCase.I386Btf),
        new("i386-kdump-zlib-map-btf", Dumps.I386Kdump, Dumps.I386Map, DumpCase.I386Btf),
        new("i386-kdump-zlib-vmlinux-btf", Dumps.I386Kdump, Dumps.I386Vmlinux, DumpCase.I386Btf),
        new("i386-kdump-zlib-map", Dumps.I386Kdump, Dumps.I386Map, null),
        new("arm64-zlib-map", "arm64/dump.kdump-zlib", "arm64/System.map-6.1.0-50-arm64", null),
        new("sample-dump", Path.Combine(Sample, "vmcore.kdump"), null, null),
        new("amd64-panic-zlib-dump", "amd64/panic-kaslr/dump.kdump-zlib", null, null),
        new("i386-kdump-zlib-dump-btf", Dumps.I386Kdump, null, DumpCase.I386Btf),
    ];

    private static readonly string[][] Commands =
    [
        ["info"], ["info", "--json"], ["ps"], ["ps", "--json"], ["log"], ["log", "--json"], ["uname"], ["uname", "--json"],
    ];

    public static TheoryData<GoldenCase> All() => new(Cases);

    private static string GoldenDir => Path.Combine(Fixtures.RepoRoot, "tests", "KvmTyped.EndToEnd.Tests", "Golden");

    private static string Resolve(string path) =>
        path.StartsWith("$REPO", StringComparison.Ordinal) ? Fixtures.RepoRoot + path["$REPO".Length..] : Fixtures.Get(path);

    /// <summary>Machine-specific paths replaced by names, longest first.</summary>
    private static string Normalize(string text)
    {
        var cache = Fixtures.CacheDir;
        foreach (var (path, name) in new[] { (cache, "$CACHE"), (Fixtures.Root, "$FIXTURES"), (Fixtures.RepoRoot, "$REPO") }
                     .OrderByDescending(p => p.Item1.Length))
            text = text.Replace(path.TrimEnd('/'), name, StringComparison.Ordinal);
        return text;
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Outputs_equal_their_golden_files(GoldenCase c)
    {
        var args = new List<string> { "-c", Resolve(c.Core) };
        if (c.Namelist is not null)
            args.InsertRange(0, ["-n", Resolve(c.Namelist)]);
        if (c.Btf is not null)
            args.AddRange(["--btf", Resolve(c.Btf)]);
        var update = Environment.GetEnvironmentVariable("KVMTYPED_UPDATE_GOLDEN") == "1";
        var dir = Path.Combine(GoldenDir, c.Name);
        var differ = new List<string>();
        foreach (var command in Commands)
        {
            var o = new StringWriter();
            var e = new StringWriter();
            var code = CommandLine.Run([.. command, .. args], o, e);
            var actual = Normalize($"exit {code}\n--- stdout\n{o}--- stderr\n{e}");
            var file = Path.Combine(dir, string.Join('-', command).Replace("--", "", StringComparison.Ordinal) + ".txt");
            if (update)
            {
                Directory.CreateDirectory(dir);
                File.WriteAllText(file, actual, new UTF8Encoding(false));
                continue;
            }
            Assert.True(File.Exists(file), $"{file} is missing: run the tests once with KVMTYPED_UPDATE_GOLDEN=1 and check the new files in");
            var expected = File.ReadAllText(file);
            if (expected != actual)
                differ.Add($"{string.Join(' ', command)}: {FirstDifference(expected, actual)}");
        }
        Assert.True(differ.Count == 0, $"{c.Name} differs from {dir} (refresh with KVMTYPED_UPDATE_GOLDEN=1 if intended):\n" + string.Join('\n', differ));
    }

    private static string FirstDifference(string expected, string actual)
    {
        var a = expected.Split('\n');
        var b = actual.Split('\n');
        for (var i = 0; i < Math.Max(a.Length, b.Length); i++)
        {
            var x = i < a.Length ? a[i] : "<end>";
            var y = i < b.Length ? b[i] : "<end>";
            if (x != y)
                return $"line {i + 1}: expected \"{x}\", got \"{y}\"";
        }
        return "equal lines, different bytes";
    }
}
