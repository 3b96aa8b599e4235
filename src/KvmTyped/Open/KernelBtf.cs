using System.Diagnostics.CodeAnalysis;
using KvmTyped.Btf;
using KvmTyped.Dwarf;

namespace KvmTyped;

/// <summary>The BTF type information of a kernel, with where it came from.</summary>
/// <remarks>For an opened image (<see cref="Kvm.Btf"/>) it is looked for in this order: the file given at open
/// (<see cref="KvmOpenOptions.TypesPath"/>: raw BTF, an ELF file with a .BTF section, or an ELF file with DWARF); the
/// .BTF section of an ELF namelist (vmlinux), else its DWARF; the image's own memory between <c>__start_BTF</c> and
/// <c>__stop_BTF</c> (kernels built with CONFIG_DEBUG_INFO_BTF keep their BTF there). DWARF is converted to BTF on
/// first use and cached per build ID (docs/cache.md), so everything downstream reads one kind of type information. It
/// is found once per image, kept by the <see cref="Kvm"/>, and dropped by <see cref="Kvm.Close"/>.</remarks>
public sealed class KernelBtf
{
    /// <summary>The largest BTF read from the image's memory.</summary>
    public const long MaxImageBtfLength = 64L << 20;

    private KernelBtf(BtfTypes types, string source)
    {
        Types = types;
        Source = source;
    }

    /// <summary>The kernel's types.</summary>
    internal BtfTypes Types { get; }

    /// <summary>Where the types were read: "file PATH", "namelist .BTF (PATH)", "DWARF PATH (…)" or "image memory
    /// (0x…-0x…)".</summary>
    public string Source { get; }

    /// <summary>The size of a pointer the types describe (4 or 8), when they say.</summary>
    public int? PointerSize => Types.PointerSize;

    /// <summary>Reads the types of a file: raw BTF (e.g. /sys/kernel/btf/vmlinux, <c>pahole --btf_encode_detached</c>
    /// output), an ELF file with a .BTF section, or else an ELF file's DWARF (converted, and cached per build ID).</summary>
    /// <param name="path">The file.</param>
    /// <param name="pointerSize">The kernel's pointer size when known (else taken from the types).</param>
    /// <exception cref="KvmException">The file cannot be read or holds neither valid BTF nor DWARF.</exception>
    public static KernelBtf Load(string path, int? pointerSize = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            return new KernelBtf(BtfReader.Load(path, pointerSize: pointerSize), $"file {path}");
        }
        catch (KvmException btfError) when (btfError is not KvmOpenException)
        {
            if (TryDwarf(path, out var dwarf, out var why))
                return dwarf;
            throw new KvmException($"{btfError.Message}; {why}", btfError);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KvmException($"{path}: cannot read BTF: {e.Message}", e);
        }
    }

    /// <summary>The types of an ELF file's DWARF, or false with why there are none.</summary>
    /// <exception cref="KvmException">The DWARF is damaged.</exception>
    private static bool TryDwarf(string path, [NotNullWhen(true)] out KernelBtf? btf, out string why)
    {
        if (DwarfTypeSource.TryLoad(path, null, out var types, out var source))
        {
            btf = new KernelBtf(types, $"DWARF {source}");
            why = "";
            return true;
        }
        btf = null;
        why = source;
        return false;
    }

    /// <summary>The kernel BTF of <paramref name="kvm"/> (<see cref="Kvm.Btf"/>).</summary>
    /// <exception cref="KvmException">No source has BTF; the message names each one tried and why it failed.</exception>
    public static KernelBtf For(Kvm kvm)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        return kvm.Btf;
    }

    /// <summary>Looks for the BTF of an opened image, in the order the remarks give.</summary>
    internal static bool TryFind(Kvm kvm, [NotNullWhen(true)] out KernelBtf? btf, [NotNullWhen(false)] out string? why)
    {
        if (kvm.TypesPath is { } btfPath)
        {
            // An explicit file is what the user asked for: its failure is the answer, not a reason to look elsewhere.
            try
            {
                btf = Load(btfPath, kvm.PointerSize);
                why = null;
                return true;
            }
            catch (KvmException e)
            {
                btf = null;
                why = e.Message;
                return false;
            }
        }
        var tried = new List<string>();
        if (kvm.Symbols.Kind == "ELF" && File.Exists(kvm.NamelistPath))
        {
            try
            {
                btf = new KernelBtf(BtfReader.Load(kvm.NamelistPath, pointerSize: kvm.PointerSize), $"namelist .BTF ({kvm.NamelistPath})");
                why = null;
                return true;
            }
            catch (Exception e) when (e is KvmException or IOException or UnauthorizedAccessException)
            {
                tried.Add($"namelist {kvm.NamelistPath}: {e.Message}");
                try
                {
                    if (TryDwarf(kvm.NamelistPath, out btf, out var noDwarf))
                    {
                        why = null;
                        return true;
                    }
                    tried.Add(noDwarf);
                }
                catch (Exception d) when (d is KvmException or IOException or UnauthorizedAccessException)
                {
                    tried.Add($"namelist {kvm.NamelistPath} DWARF: {d.Message}");
                }
            }
        }
        else
        {
            tried.Add($"namelist {kvm.NamelistPath} ({kvm.Symbols.Kind}) is not an ELF vmlinux");
        }
        if (TryFromMemory(kvm, out btf, out var fromMemory))
        {
            why = null;
            return true;
        }
        tried.Add($"image memory: {fromMemory}");
        why = $"no BTF for this kernel (give a type file with --types: BTF, e.g. from `pahole --btf_encode_detached`, or the kernel's DWARF vmlinux): {string.Join("; ", tried)}";
        return false;
    }

    private static bool TryFromMemory(Kvm kvm, [NotNullWhen(true)] out KernelBtf? btf, [NotNullWhen(false)] out string? why)
    {
        btf = null;
        if (!kvm.TryGetSymbol("__start_BTF", out var start) || !kvm.TryGetSymbol("__stop_BTF", out var stop))
        {
            why = "the namelist has no __start_BTF/__stop_BTF (kernel built without CONFIG_DEBUG_INFO_BTF)";
            return false;
        }
        if (stop <= start || stop - start > MaxImageBtfLength)
        {
            why = $"__start_BTF 0x{start:x} .. __stop_BTF 0x{stop:x} is not a plausible BTF size (at most {MaxImageBtfLength >> 20} MiB)";
            return false;
        }
        var name = $"image memory (0x{start:x}-0x{stop:x})";
        try
        {
            // Read section by section into the arrays the types keep: the blob is never held whole beside them.
            var types = BtfTypes.Read(kvm.TryReadVirtual, start, (long)(stop - start), name, kvm.PointerSize, out var failure);
            if (types is null)
            {
                why = failure!;
                return false;
            }
            btf = new KernelBtf(types, name);
            why = null;
            return true;
        }
        catch (KvmException e)
        {
            why = e.Message;
            return false;
        }
    }
}
