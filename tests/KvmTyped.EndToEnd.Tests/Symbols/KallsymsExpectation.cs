using System.Globalization;
using KvmTyped.Symbols;

namespace KvmTyped.EndToEnd.Tests.Symbols;

/// <summary>What a kernel's kallsyms should hold, derived from its System.map by the selection rules of the
/// kernel's scripts/kallsyms.c (Linux 6.1): which symbols it ignores, the text ranges it keeps without
/// CONFIG_KALLSYMS_ALL, and the per-CPU symbols it turns absolute (type 'A') on x86-64.</summary>
internal static class KallsymsExpectation
{
    /// <summary>One System.map line.</summary>
    public sealed record MapLine(ulong Address, char Type, string Name);

    private static readonly string[] IgnoredNames =
    [
        "kallsyms_addresses", "kallsyms_offsets", "kallsyms_relative_base", "kallsyms_num_syms", "kallsyms_names",
        "kallsyms_markers", "kallsyms_seqs_of_names", "kallsyms_token_table", "kallsyms_token_index", "_SDA_BASE_", "_SDA2_BASE_",
    ];

    private static readonly string[] IgnoredPrefixes =
    [
        "$", ".L", "__crc_", "__efistub_", "__kvm_nvhe_$", "__kvm_nvhe_.L", "__AArch64ADRPThunk_", "__ARMV5PILongThunk_",
        "__ARMV7PILongThunk_", "__ThumbV7PILongThunk_", "__LA25Thunk_", "__microLA25Thunk_", "__kcfi_typeid_",
    ];

    private static readonly string[] IgnoredSuffixes = ["_from_arm", "_from_thumb", "_veneer"];

    private static readonly string[] KeptAbsolute = ["__kernel_syscall_via_break", "__kernel_syscall_via_epc", "__kernel_sigtramp", "__gp"];

    public static List<MapLine> ReadMap(string path)
    {
        var lines = new List<MapLine>();
        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split(' ', 3);
            if (parts.Length == 3)
                lines.Add(new MapLine(ulong.Parse(parts[0], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture), parts[1][0], parts[2]));
        }
        return lines;
    }

    /// <summary>The symbols kallsyms should carry, with link-time addresses and the type kallsyms gives them.</summary>
    /// <param name="map">The System.map lines.</param>
    /// <param name="allSymbols">CONFIG_KALLSYMS_ALL: every symbol, not only those in the text ranges.</param>
    /// <param name="absolutePerCpu">CONFIG_KALLSYMS_ABSOLUTE_PERCPU: symbols in [__per_cpu_start, __per_cpu_end] get type 'A'.</param>
    public static List<MapLine> Select(List<MapLine> map, bool allSymbols, bool absolutePerCpu)
    {
        ulong At(string name) => map.Single(l => l.Name == name).Address;
        var kept = map.Where(l => !Ignored(l)).ToList();
        if (!allSymbols)
        {
            ulong stext = At("_stext"), etext = At("_etext"), sinit = At("_sinittext"), einit = At("_einittext");
            kept = kept.Where(l =>
                ((l.Address >= stext && l.Address <= etext) || (l.Address >= sinit && l.Address <= einit))
                && !(l.Address == etext && l.Name != "_etext")
                && !(l.Address == einit && l.Name != "_einittext")).ToList();
        }
        if (absolutePerCpu)
        {
            ulong start = At("__per_cpu_start"), end = At("__per_cpu_end");
            kept = kept.Select(l => l.Address >= start && l.Address <= end ? l with { Type = 'A' } : l).ToList();
        }
        return kept;
    }

    private static bool Ignored(MapLine l)
    {
        if (IgnoredNames.Contains(l.Name) || IgnoredPrefixes.Any(p => l.Name.StartsWith(p, StringComparison.Ordinal))
            || IgnoredSuffixes.Any(s => l.Name.EndsWith(s, StringComparison.Ordinal))
            || l.Name.Contains(".long_branch.", StringComparison.Ordinal) || l.Name.Contains(".plt_branch.", StringComparison.Ordinal))
            return true;
        if (l.Type is 'U' or 'u' or 'N' or 'n')
            return true;
        return l.Type is 'A' or 'a' && !KeptAbsolute.Contains(l.Name);
    }

    /// <summary>The differences between two symbol multisets, at most <paramref name="max"/> of each side, for a failure message.</summary>
    public static string Differences(IEnumerable<KernelSymbol> expected, IEnumerable<KernelSymbol> actual, int max = 15)
    {
        var counts = new Dictionary<KernelSymbol, int>();
        foreach (var s in expected)
            counts[s] = counts.GetValueOrDefault(s) + 1;
        foreach (var s in actual)
            counts[s] = counts.GetValueOrDefault(s) - 1;
        var missing = counts.Where(p => p.Value > 0).Take(max).Select(p => $"{p.Key.Address:x} {p.Key.Type} {p.Key.Name}");
        var extra = counts.Where(p => p.Value < 0).Take(max).Select(p => $"{p.Key.Address:x} {p.Key.Type} {p.Key.Name}");
        return $"missing from kallsyms: [{string.Join(", ", missing)}]; only in kallsyms: [{string.Join(", ", extra)}]";
    }
}
