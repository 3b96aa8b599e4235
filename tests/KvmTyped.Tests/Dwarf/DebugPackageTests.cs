using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using KvmTyped.Btf;
using KvmTyped.Dwarf;
using KvmTyped.Formats.Elf;
using KvmTyped.IO;
using KvmTyped.TestSupport;
using KvmTyped.Tools;
using Xunit.Abstractions;

namespace KvmTyped.Tests.Dwarf;

/// <summary>The DWARF vmlinux of the fixture kernels, from their Debian -dbg packages, as
/// <c>tests/Shared/fetch-dbg.sh</c> caches them outside the repository.</summary>
internal static class DebugPackages
{
    public const string Amd64 = "vmlinux-6.1.0-56-amd64";
    public const string I386 = "vmlinux-6.1.0-50-686-pae";

    /// <summary>$KVMTYPED_DBG_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/kvmtyped-dbg (as the fetch script).</summary>
    public static string CacheDirectory
    {
        get
        {
            if (Environment.GetEnvironmentVariable("KVMTYPED_DBG_CACHE") is { Length: > 0 } dir)
                return dir;
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var root = string.IsNullOrEmpty(xdg) ? Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/", ".cache") : xdg;
            return Path.Combine(root, "kvmtyped-dbg");
        }
    }

    public static string PathOf(string vmlinux) => Path.Combine(CacheDirectory, vmlinux);

    /// <summary>Why a test of <paramref name="vmlinux"/> cannot run, or null when the file is there.</summary>
    public static string? SkipReason(string vmlinux)
    {
        var path = PathOf(vmlinux);
        return File.Exists(path) ? null
            : $"{path} is missing: fetch the -dbg package's vmlinux with tests/Shared/fetch-dbg.sh {(vmlinux == Amd64 ? "amd64" : "i386")} (about 800 MB download)";
    }

    /// <summary>The kernel's own BTF, made by pahole from the same DWARF when the kernel was built (amd64: its .BTF
    /// section) or afterwards (i386: the fixture's detached BTF).</summary>
    public static BtfTypes KernelBtf(string vmlinux) => vmlinux == Amd64
        ? BtfReader.Load(Fixtures.Get("amd64/vmlinux-6.1.0-56-amd64.gz"), null, 8)
        : BtfReader.Load(Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf"), null, 4);

    private static readonly Dictionary<string, Lazy<(BtfTypes Types, DwarfConversionStats Stats, TimeSpan Total, long PeakMiB)>> Converted = new()
    {
        [Amd64] = new(() => Convert(Amd64)),
        [I386] = new(() => Convert(I386)),
    };

    /// <summary>The conversion of a kernel's DWARF, done once per test run, with how long it took.</summary>
    public static (BtfTypes Types, DwarfConversionStats Stats, TimeSpan Total, long PeakMiB) Conversion(string vmlinux) => Converted[vmlinux].Value;

    private static (BtfTypes, DwarfConversionStats, TimeSpan, long) Convert(string vmlinux)
    {
        var path = PathOf(vmlinux);
        var sw = Stopwatch.StartNew();
        using var file = RandomAccessFile.Open(path, writable: false);
        var image = ElfImage.Parse(file);
        var blob = DwarfToBtf.Convert(image, 0, out var stats)!;
        var types = BtfTypes.Parse(blob, null, path + " (DWARF)", image.Is64 ? 8 : 4);
        sw.Stop();
        return (types, stats, sw.Elapsed, Process.GetCurrentProcess().PeakWorkingSet64 >> 20);
    }
}

/// <summary>A fact about a Debian -dbg vmlinux, skipped (naming the file and how to fetch it) when it is not cached.</summary>
public sealed class DebugPackageFactAttribute : FactAttribute
{
    /// <summary>Creates the attribute for one of <see cref="DebugPackages"/>' file names.</summary>
    public DebugPackageFactAttribute(string vmlinux)
    {
        if (DebugPackages.SkipReason(vmlinux) is { } why)
            Skip = why;
    }
}

/// <summary>Opt-in (category DebugPackage): the DWARF of the real Debian kernels, converted, agrees with the BTF pahole
/// made of the same DWARF for every struct the shipped schemas name and for every named struct and union both have;
/// the conversion's time is printed. Run <c>tests/Shared/fetch-dbg.sh</c> first, then
/// <c>dotnet test tests/KvmTyped.Tests -c Release --filter Category=DebugPackage</c>.</summary>
[Trait("Category", "DebugPackage")]
[Collection(DwarfEnvironmentCollection.Name)]
public sealed partial class DebugPackageTests(ITestOutputHelper output)
{
    [GeneratedRegex(@"^\s*struct\s+(\w+)\s*\{", RegexOptions.Multiline)]
    private static partial Regex NamedStruct();

    [GeneratedRegex(@"typedef\s+struct\s*\{[^}]*\}\s*(\w+)\s*;")]
    private static partial Regex TypedefStruct();

    private void Report(string vmlinux)
    {
        var (types, stats, total, peak) = DebugPackages.Conversion(vmlinux);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{vmlinux}: first conversion {total.TotalMilliseconds:F0} ms (index {stats.IndexTime.TotalMilliseconds:F0} ms wall, {stats.IndexCpuTime.TotalMilliseconds:F0} ms CPU, over {stats.Units} units and {stats.EntriesSkimmed} top-level entries, convert {stats.ConvertTime.TotalMilliseconds:F0} ms); {stats.Definitions} definitions, {types.Count} BTF types; process peak working set {peak} MiB"));
    }

    [GeneratedRegex(@"^\s*struct\s+(\w+)\s*\{[^{}]*\}[^;{}]*__kvmt_optional\s*;", RegexOptions.Multiline)]
    private static partial Regex OptionalStruct();

    /// <summary>The structs the shipped schemas name for the kernel's architecture (schemas/linux/*.h and its
    /// schemas/linux/arch folder), by the name relocation looks up: a <c>___flavor</c> suffix dropped. A struct marked
    /// <c>__kvmt_optional</c> (only some kernels have it) is left out where <paramref name="kernel"/> lacks it.</summary>
    private static List<string> SchemaStructs(string vmlinux, BtfTypes kernel)
    {
        var linux = Path.Combine(Fixtures.RepoRoot, "schemas", "linux");
        var files = Directory.GetFiles(linux, "*.h")
            .Concat(Directory.GetFiles(Path.Combine(linux, "arch", vmlinux == DebugPackages.Amd64 ? "x86_64" : "i386"), "*.h"));
        var names = new List<string>();
        var optional = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in files.OrderBy(f => f, StringComparer.Ordinal))
        {
            var text = File.ReadAllText(f);
            names.AddRange(NamedStruct().Matches(text).Select(m => BtfRelocator.EssentialName(m.Groups[1].Value)));
            names.AddRange(TypedefStruct().Matches(text).Select(m => m.Groups[1].Value));
            optional.UnionWith(OptionalStruct().Matches(text).Select(m => m.Groups[1].Value));
        }
        return names.Distinct().Where(n => !optional.Contains(n) || kernel.TryFind(n, BtfKind.Struct, out int _)).ToList();
    }

    private static int Named(BtfTypes t, string name)
    {
        if (t.TryFind(name, BtfKind.Struct, out int id))
            return id;
        Assert.True(t.TryFind(name, BtfKind.Typedef, out id), $"{t.SourceName} has no struct or typedef {name}");
        return t.Resolve(id);
    }

    private void SchemaStructsMatch(string vmlinux)
    {
        Report(vmlinux);
        var dwarf = DebugPackages.Conversion(vmlinux).Types;
        var kernel = DebugPackages.KernelBtf(vmlinux);
        var names = SchemaStructs(vmlinux, kernel);
        Assert.True(names.Count >= 10, $"the shipped schemas name only {names.Count} structs");
        var problems = new List<string>();
        foreach (var name in names)
        {
            string want = DwarfTest.Layout(kernel, Named(kernel, name)), got = DwarfTest.Layout(dwarf, Named(dwarf, name));
            output.WriteLine($"{name}: {got.Length} characters of layout, {(want == got ? "equal" : "DIFFERENT")}");
            if (want != got)
                problems.Add($"{name}:\n  kernel BTF {want}\n  DWARF      {got}");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [DebugPackageFact(DebugPackages.Amd64)]
    public void Amd64SchemaStructsMatchTheKernelBtf() => SchemaStructsMatch(DebugPackages.Amd64);

    [DebugPackageFact(DebugPackages.I386)]
    public void I386SchemaStructsMatchTheKernelBtf() => SchemaStructsMatch(DebugPackages.I386);

    /// <summary>Every named struct and union of the kernel's BTF that the conversion has (the same set of layouts when a
    /// name has several). What the conversion lacks are types defined inside function bodies, which it does not read.</summary>
    private void EveryStructMatches(string vmlinux)
    {
        Report(vmlinux);
        var dwarf = DebugPackages.Conversion(vmlinux).Types;
        var kernel = DebugPackages.KernelBtf(vmlinux);
        var seen = new HashSet<(BtfKind, string)>();
        int compared = 0;
        var missing = new List<string>();
        var different = new List<string>();
        for (int id = 1; id <= kernel.LastId; id++)
        {
            var kind = kernel.KindOf(id);
            var name = kernel.NameOf(id);
            if (kind is not (BtfKind.Struct or BtfKind.Union) || name.Length == 0 || !seen.Add((kind, name)))
                continue;
            var mine = dwarf.FindAll(name).Where(i => dwarf.KindOf(i) == kind).Select(i => DwarfTest.Layout(dwarf, i)).ToHashSet();
            if (mine.Count == 0)
            {
                missing.Add($"{kind} {name}");
                continue;
            }
            compared++;
            var theirs = kernel.FindAll(name).Where(i => kernel.KindOf(i) == kind).Select(i => DwarfTest.Layout(kernel, i)).ToHashSet();
            if (!mine.SetEquals(theirs))
                different.Add($"{kind} {name}:\n  kernel BTF {string.Join(" | ", theirs)}\n  DWARF      {string.Join(" | ", mine)}");
        }
        output.WriteLine($"{compared} named structs and unions compared; {missing.Count} not in the conversion (defined inside functions): {string.Join(", ", missing)}");
        Assert.True(compared > 5000, $"only {compared} structs compared");
        Assert.True(different.Count == 0, $"{different.Count} differ:\n" + string.Join("\n", different.Take(20)));
        // Function-local types are rare in a kernel; many missing would mean the skim lost top-level entries.
        Assert.True(missing.Count * 100 < compared, $"{missing.Count} structs missing");
    }

    [DebugPackageFact(DebugPackages.Amd64)]
    public void Amd64EveryStructMatchesTheKernelBtf() => EveryStructMatches(DebugPackages.Amd64);

    [DebugPackageFact(DebugPackages.I386)]
    public void I386EveryStructMatchesTheKernelBtf() => EveryStructMatches(DebugPackages.I386);

    /// <summary>The BTF consumers give the same answers from the DWARF as from the kernel's BTF: the pahole-style dump
    /// of every schema struct, and the C that schema import writes for them.</summary>
    private void ConsumersAgree(string vmlinux)
    {
        var dwarf = DebugPackages.Conversion(vmlinux).Types;
        var kernel = DebugPackages.KernelBtf(vmlinux);
        var names = SchemaStructs(vmlinux, kernel);
        foreach (var name in names)
            Assert.Equal(BtfDump.ToText(kernel, Named(kernel, name)), BtfDump.ToText(dwarf, Named(dwarf, name)));
        static string Body(string c) => string.Join('\n', c.Split('\n').Where(l => !l.Contains("imported from the BTF of", StringComparison.Ordinal)));
        var complete = names.Where(n => n is "list_head" or "hlist_node" or "new_utsname" or "upid").ToList();
        Assert.Equal(Body(SchemaImport.Complete(kernel, complete)), Body(SchemaImport.Complete(dwarf, complete)));
        Assert.Equal(Body(SchemaImport.Subset(kernel, ["task_struct"], ["pid", "tgid", "comm", "tasks", "__state"])),
            Body(SchemaImport.Subset(dwarf, ["task_struct"], ["pid", "tgid", "comm", "tasks", "__state"])));
    }

    [DebugPackageFact(DebugPackages.Amd64)]
    public void Amd64BtfConsumersAgree() => ConsumersAgree(DebugPackages.Amd64);

    [DebugPackageFact(DebugPackages.I386)]
    public void I386BtfConsumersAgree() => ConsumersAgree(DebugPackages.I386);

    [DebugPackageFact(DebugPackages.Amd64)]
    public void TheSecondLoadOfAKernelComesFromTheCache()
    {
        using var dir = new TempDir();
        var options = new DwarfOptions { CacheDirectory = dir.Path };
        var path = DebugPackages.PathOf(DebugPackages.Amd64);
        var sw = Stopwatch.StartNew();
        Assert.True(DwarfTypeSource.TryLoad(path, options, out var first, out var source1));
        var convert = sw.Elapsed;
        sw.Restart();
        Assert.True(DwarfTypeSource.TryLoad(path, options, out var second, out var source2));
        var cached = sw.Elapsed;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"converted and cached: {convert.TotalMilliseconds:F0} ms ({source1}); from the cache: {cached.TotalMilliseconds:F0} ms ({source2})"));
        Assert.Contains("build-id:eb4fbcd037e7253717950bf2b93bd5566f47c56f", source2, StringComparison.Ordinal);
        Assert.Equal(first.LastId, second.LastId);
        int task = first.Find("task_struct", BtfKind.Struct);
        Assert.Equal(DwarfTest.Layout(first, task), DwarfTest.Layout(second, second.Find("task_struct", BtfKind.Struct)));
    }
}
