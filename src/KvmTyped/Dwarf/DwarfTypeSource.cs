using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using KvmTyped.Btf;
using KvmTyped.Formats.Elf;
using KvmTyped.IO;

namespace KvmTyped.Dwarf;

/// <summary>Types from an ELF file's DWARF (a <c>-dbg</c> package's vmlinux, a module, an object file) as
/// <see cref="BtfTypes"/>, beside the BTF sources of <see cref="BtfReader"/>: converted by <see cref="DwarfToBtf"/> on
/// first use and kept in the per-user cache of <see cref="DwarfBtfCache"/> for the next.</summary>
internal static class DwarfTypeSource
{
    /// <summary>Loads the types of an ELF file's DWARF.</summary>
    /// <param name="path">The ELF file.</param>
    /// <param name="options">Cache and threading options; null for <see cref="DwarfOptions.Default"/>.</param>
    /// <param name="types">The types, when the file has DWARF.</param>
    /// <param name="source">Where the types came from (the file, converted or from the cache), or why there are none.</param>
    /// <returns>True with types; false when the file is not ELF or has no <c>.debug_info</c>.</returns>
    /// <exception cref="KvmOpenException">The file cannot be opened.</exception>
    /// <exception cref="KvmFormatException">The ELF file or its DWARF is damaged or hostile.</exception>
    public static bool TryLoad(string path, DwarfOptions? options, [NotNullWhen(true)] out BtfTypes? types, out string source)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= DwarfOptions.Default;
        types = null;
        using var file = RandomAccessFile.Open(path, writable: false);
        if (file.Length < 16 || !ElfImage.HasMagic(file.Unchecked(0, 16)))
        {
            source = $"{path}: not an ELF file, so no DWARF";
            return false;
        }
        var image = ElfImage.Parse(file);
        if (!DwarfSections.HasDebugInfo(image))
        {
            source = $"{path}: no DWARF (.debug_info) in this ELF file";
            return false;
        }
        int pointerSize = image.Is64 ? 8 : 4;
        string? directory = options.NoCache || DwarfBtfCache.DisabledByEnvironment ? null : options.CacheDirectory ?? DwarfBtfCache.DefaultDirectory();
        string key = DwarfBtfCache.Key(image);
        if (directory is not null && DwarfBtfCache.TryRead(directory, key) is { } cached)
        {
            var entry = DwarfBtfCache.EntryPath(directory, key);
            try
            {
                types = BtfTypes.Parse(cached, null, entry, pointerSize);
                source = $"{entry} (BTF converted from the DWARF of {path}, cached for {key})";
                return true;
            }
            catch (KvmFormatException)
            {
                // Checksummed, so written so by a converter of the same version: convert again and overwrite it.
            }
        }

        var sw = Stopwatch.StartNew();
        var blob = DwarfToBtf.Convert(image, options.Parallelism, out var stats)
            ?? throw new KvmFormatException(path, null, "no .debug_info");
        var name = $"{path} (BTF converted from DWARF)";
        types = BtfTypes.Parse(blob, null, name, pointerSize);
        string note = "";
        if (directory is not null)
        {
            try
            {
                note = DwarfBtfCache.Write(directory, key, blob, options.MaxCacheBytes) is { } written
                    ? $", cached in {written}" : $", not cached (larger than the cache bound of {options.MaxCacheBytes} bytes)";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                note = $", not cached ({e.Message})";
            }
        }
        source = string.Create(CultureInfo.InvariantCulture,
            $"{path} (DWARF of {stats.Units} units converted to {stats.Types} BTF types in {sw.Elapsed.TotalMilliseconds:F0} ms{note})");
        return true;
    }
}
