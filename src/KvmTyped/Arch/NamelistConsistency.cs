using System.Text;
using KvmTyped.Formats;
using KvmTyped.Symbols;
using static KvmTyped.Translation.PageTableWalk;

namespace KvmTyped.Arch;

/// <summary>Whether a namelist belongs to a dump, once a layout has found the slide: every VMCOREINFO SYMBOL(…) of a
/// static kernel symbol equals the namelist's address moved by the slide, and <c>linux_banner</c> read at the moved
/// address says the dump's release (and equals the namelist's own banner when it has one).</summary>
internal static class NamelistConsistency
{
    private const string BannerPrefix = "Linux version ";

    /// <summary>Longest banner read from memory.</summary>
    public const int MaxBannerBytes = 1024;

    /// <summary>Static kernel-image symbols VMCOREINFO may carry (mem_section and others are heap pointers).</summary>
    public static readonly string[] CheckedVmcoreSymbols =
        ["_stext", "swapper_pg_dir", "init_top_pgt", "init_uts_ns", "prb", "printk_rb_static", "node_online_map", "vmap_area_list"];

    /// <summary>Checks the namelist against the dump and returns the banner read from memory (no trailing newline), or
    /// null when the namelist has no linux_banner.</summary>
    /// <param name="info">The dump's VMCOREINFO, or null.</param>
    /// <param name="symbols">The namelist, at link addresses.</param>
    /// <param name="relocation">The relocation the layout found.</param>
    /// <param name="read">Reads the kernel's virtual memory.</param>
    /// <param name="core">The dump's name, for messages.</param>
    /// <param name="namelistBanner">The namelist's own banner text, when the caller has it.</param>
    /// <exception cref="KvmOpenException">The namelist does not belong to the dump.</exception>
    public static string? Check(VmcoreInfo? info, ISymbolTable symbols, SymbolRelocation relocation, TryReadMemory read, string core,
        string? namelistBanner)
    {
        if (info is not null)
        {
            foreach (var name in CheckedVmcoreSymbols)
            {
                if (info.Symbol(name) is not ulong running || !symbols.TryLookup(name, out var linked))
                    continue;
                var expected = relocation.ToRunning(linked.Address);
                if (expected != running)
                    throw new KvmOpenException(
                        $"{symbols.Source} does not match {core}: {name} is at {Hex(running)} in the dump's VMCOREINFO (release {info.OsRelease ?? "unknown"}), " +
                        $"but at {Hex(linked.Address)} + KASLR offset {Hex(relocation.Slide)} = {Hex(expected)} in the namelist");
            }
        }

        if (!symbols.TryLookup("linux_banner", out var bannerSymbol))
        {
            if (namelistBanner is not null)
                throw new KvmOpenException($"{symbols.Source}: no linux_banner symbol to compare with the namelist's banner");
            return null;
        }
        var address = relocation.ToRunning(bannerSymbol.Address);
        var ok = CStringReader.TryRead(read, address, MaxBannerBytes, out var bytes, out var failure);
        if (!ok && bytes.Length == 0)
            throw new KvmOpenException($"{symbols.Source} does not match {core}: cannot read linux_banner at {Hex(address)}: {failure}");
        var banner = Encoding.Latin1.GetString(bytes).TrimEnd('\n');

        if (info?.OsRelease is string release && !banner.StartsWith(BannerPrefix + release + " ", StringComparison.Ordinal))
            throw new KvmOpenException(
                $"{symbols.Source} does not match {core}: the dump is release {release} (VMCOREINFO OSRELEASE), " +
                $"but linux_banner at the namelist's address {Hex(address)} reads \"{Printable(banner)}\"");
        if (!banner.StartsWith(BannerPrefix, StringComparison.Ordinal))
            throw new KvmOpenException($"{symbols.Source} does not match {core}: linux_banner at the namelist's address {Hex(address)} reads \"{Printable(banner)}\"");
        if (namelistBanner is not null && !string.Equals(namelistBanner.TrimEnd('\n', '\0'), banner, StringComparison.Ordinal))
            throw new KvmOpenException(
                $"{symbols.Source} does not match {core}: the namelist's banner is \"{Printable(namelistBanner.TrimEnd('\n', '\0'))}\", the dump's is \"{Printable(banner)}\"");
        return banner;
    }

    private static string Printable(string s)
    {
        var sb = new StringBuilder(Math.Min(s.Length, 200));
        foreach (var c in s.Length > 200 ? s[..200] : s)
            sb.Append(c is >= ' ' and < '\x7f' ? c : '?');
        return sb.ToString();
    }
}
