using System.Globalization;
using KvmTyped.Formats;

namespace KvmTyped.Symbols;

/// <summary>Where the kernel's own symbol table (kallsyms) lies in its memory: the running addresses of the
/// tables that <c>scripts/kallsyms.c</c> generates and <c>kernel/kallsyms.c</c> reads. Since Linux 6.0 the
/// kernel names them in VMCOREINFO (<c>kernel/crash_core.c</c>), so a dump can be read with no System.map.</summary>
/// <remarks>
/// <para>VMCOREINFO keys used (every value a running, KASLR-relocated address in hex):</para>
/// <list type="bullet">
/// <item><c>SYMBOL(kallsyms_num_syms)</c>, <c>SYMBOL(kallsyms_names)</c>, <c>SYMBOL(kallsyms_token_table)</c>,
/// <c>SYMBOL(kallsyms_token_index)</c>: always needed;</item>
/// <item><c>SYMBOL(kallsyms_offsets)</c> and <c>SYMBOL(kallsyms_relative_base)</c> (kernels built with
/// CONFIG_KALLSYMS_BASE_RELATIVE, the default), or else <c>SYMBOL(kallsyms_addresses)</c>;</item>
/// <item><c>SYMBOL(_stext)</c>: optional; when present the decoded <c>_stext</c> must equal it, and it tells the
/// two offset encodings apart;</item>
/// <item><c>OSRELEASE</c>: optional; kernels before 6.1 write every name length in one byte (see
/// <see cref="TwoByteLengths"/>).</item>
/// </list>
/// <para>Kernels before 6.0 write none of these keys: <see cref="MissingKeys"/> then lists them all, and the caller
/// has to ask for a namelist ("give -n System.map or a vmlinux").</para>
/// </remarks>
/// <param name="NumSyms">Address of <c>kallsyms_num_syms</c> (a 32-bit count).</param>
/// <param name="Names">Address of <c>kallsyms_names</c> (the compressed names, one after another).</param>
/// <param name="TokenTable">Address of <c>kallsyms_token_table</c> (256 NUL-terminated tokens).</param>
/// <param name="TokenIndex">Address of <c>kallsyms_token_index</c> (256 16-bit offsets into the token table).</param>
/// <param name="Offsets">Address of <c>kallsyms_offsets</c> (32-bit offsets), or null with <paramref name="Addresses"/>.</param>
/// <param name="RelativeBase">Address of <c>kallsyms_relative_base</c> (a pointer), or null with <paramref name="Addresses"/>.</param>
/// <param name="Addresses">Address of <c>kallsyms_addresses</c> (pointers), for kernels without CONFIG_KALLSYMS_BASE_RELATIVE.</param>
/// <param name="Stext">VMCOREINFO <c>SYMBOL(_stext)</c>, when known.</param>
/// <param name="TwoByteLengths">Whether a name length with its high bit set continues in a second byte (Linux 6.1
/// on, commit "kallsyms: support big kernel symbols"); before that a length is one whole byte.</param>
internal sealed record KallsymsTables(
    ulong NumSyms,
    ulong Names,
    ulong TokenTable,
    ulong TokenIndex,
    ulong? Offsets,
    ulong? RelativeBase,
    ulong? Addresses,
    ulong? Stext = null,
    bool TwoByteLengths = true)
{
    /// <summary>The keys every kallsyms decode needs, in the form VMCOREINFO writes them.</summary>
    public static IReadOnlyList<string> AlwaysNeededKeys { get; } =
    [
        "SYMBOL(kallsyms_num_syms)",
        "SYMBOL(kallsyms_names)",
        "SYMBOL(kallsyms_token_table)",
        "SYMBOL(kallsyms_token_index)",
    ];

    /// <summary>Whether the addresses come as offsets from <c>kallsyms_relative_base</c> (else as plain
    /// <c>kallsyms_addresses</c>).</summary>
    public bool BaseRelative => Offsets is not null && RelativeBase is not null;

    /// <summary>The VMCOREINFO keys that are missing (or not hex) for a decode, in VMCOREINFO's spelling; empty when
    /// every needed key is there. With neither address form complete, the missing keys of the base-relative form
    /// (<c>kallsyms_offsets</c>, <c>kallsyms_relative_base</c>) are listed, as every kernel since 4.6 defaults to it;
    /// <c>SYMBOL(kallsyms_addresses)</c> would do instead. A null <paramref name="info"/> (a core without VMCOREINFO)
    /// misses them all. Optional keys (<c>SYMBOL(_stext)</c>, <c>OSRELEASE</c>) are never listed.</summary>
    public static IReadOnlyList<string> MissingKeys(VmcoreInfo? info)
    {
        var missing = new List<string>();
        foreach (var key in AlwaysNeededKeys)
        {
            if (info?.Symbol(SymbolName(key)) is null)
                missing.Add(key);
        }
        if (info?.Symbol("kallsyms_addresses") is null)
        {
            if (info?.Symbol("kallsyms_offsets") is null)
                missing.Add("SYMBOL(kallsyms_offsets)");
            if (info?.Symbol("kallsyms_relative_base") is null)
                missing.Add("SYMBOL(kallsyms_relative_base)");
        }
        return missing;
    }

    /// <summary>The tables VMCOREINFO names, or false with <paramref name="missing"/> listing what it lacks
    /// (<see cref="MissingKeys"/>).</summary>
    public static bool TryFromVmcoreInfo(VmcoreInfo? info, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out KallsymsTables? tables,
        out IReadOnlyList<string> missing)
    {
        missing = MissingKeys(info);
        if (missing.Count > 0 || info is null)
        {
            tables = null;
            return false;
        }
        var offsets = info.Symbol("kallsyms_offsets");
        var relativeBase = info.Symbol("kallsyms_relative_base");
        var baseRelative = offsets is not null && relativeBase is not null;
        tables = new KallsymsTables(
            info.Symbol("kallsyms_num_syms")!.Value,
            info.Symbol("kallsyms_names")!.Value,
            info.Symbol("kallsyms_token_table")!.Value,
            info.Symbol("kallsyms_token_index")!.Value,
            baseRelative ? offsets : null,
            baseRelative ? relativeBase : null,
            baseRelative ? null : info.Symbol("kallsyms_addresses"),
            info.Symbol("_stext"),
            HasTwoByteLengths(info.OsRelease));
        return true;
    }

    /// <summary>The tables VMCOREINFO names.</summary>
    /// <exception cref="KvmException">VMCOREINFO lacks a needed key (the message lists them); for kernels before 6.0,
    /// which write none, the caller should ask for a namelist instead.</exception>
    public static KallsymsTables FromVmcoreInfo(VmcoreInfo? info, string source) =>
        TryFromVmcoreInfo(info, out var tables, out var missing)
            ? tables
            : throw new KvmException($"{source}: VMCOREINFO does not locate the kernel's symbol table (Linux 6.0 and later write it): missing {string.Join(", ", missing)}");

    /// <summary>Whether a release writes two-byte name lengths: 6.1 and later, or a release that does not parse as
    /// "MAJOR.MINOR…" (then the current format is assumed).</summary>
    internal static bool HasTwoByteLengths(string? osRelease)
    {
        if (osRelease is null)
            return true;
        var parts = osRelease.Split('.', 3);
        if (parts.Length < 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major))
            return true;
        var minorText = parts[1];
        var digits = 0;
        while (digits < minorText.Length && char.IsAsciiDigit(minorText[digits]))
            digits++;
        if (digits == 0 || !int.TryParse(minorText.AsSpan(0, digits), NumberStyles.None, CultureInfo.InvariantCulture, out var minor))
            return true;
        return major > 6 || (major == 6 && minor >= 1);
    }

    private static string SymbolName(string key) => key["SYMBOL(".Length..^1];
}
