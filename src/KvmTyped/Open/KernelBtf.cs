using System.Diagnostics.CodeAnalysis;
using KvmTyped.Btf;
using KvmTyped.Dwarf;
using KvmTyped.Formats;

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

    private KernelBtf(BtfTypes types, string source, bool imageMemory = false)
    {
        Types = types;
        Source = source;
        _imageMemory = imageMemory;
    }

    /// <summary>Whether the types are the kernel's own, read from its memory through its own symbols.</summary>
    private readonly bool _imageMemory;

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
            throw new KvmException($"{path}: {IO.RandomAccessFile.Describe(e, path)}", e);
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

    /// <summary>Looks for the BTF of an opened image, in the order the remarks give, and refuses one that does not fit the
    /// kernel (<see cref="Fits"/>).</summary>
    internal static bool TryFind(Kvm kvm, [NotNullWhen(true)] out KernelBtf? btf, [NotNullWhen(false)] out string? why)
    {
        if (!TryFindAny(kvm, out btf, out why))
            return false;
        // The kernel's own BTF is this kernel's: only its word is checked. Comparing it with VMCOREINFO's sizes would
        // read nearly all of it (the printk structs are far in), where a tool's structs are among its first types.
        if (Fits(btf.Types, kvm.DataModel, btf._imageMemory ? null : kvm.VmcoreInfoData, out var misfit))
            return true;
        why = $"{btf.Source}: the BTF does not fit this kernel ({kvm.ImageName}): {misfit}";
        btf = null;
        return false;
    }

    /// <summary>The most contradictions a refusal lists.</summary>
    private const int MaxMisfitsNamed = 4;

    /// <summary>Whether <paramref name="types"/> can describe a kernel of <paramref name="model"/> whose VMCOREINFO is
    /// <paramref name="vmcoreInfo"/>: the size of <c>long</c> the types record is the kernel's pointer size, and every
    /// struct size (<c>SIZE(list_head)</c>, <c>SIZE(page)</c>…) and member offset (<c>OFFSET(uts_namespace.name)</c>…)
    /// VMCOREINFO gives is the one the types give, where they name that struct and member. VMCOREINFO is written by
    /// the kernel itself, so where they disagree the types are another kernel's (another architecture's, another
    /// build's). Names the types lack are not evidence either way.</summary>
    internal static bool Fits(BtfTypes types, DataModel model, VmcoreInfo? vmcoreInfo, [NotNullWhen(false)] out string? why)
    {
        int pointer = model == DataModel.LP64 ? 8 : 4;
        if (types.LongSize is int word && word != pointer)
        {
            why = $"its long is {word} bytes, but the kernel is {model} ({pointer}-byte pointers)";
            return false;
        }
        var misfits = new List<string>();
        if (vmcoreInfo is not null)
        {
            foreach (var (key, value) in vmcoreInfo.Entries.OrderBy(e => e.Key, StringComparer.Ordinal))
            {
                if (misfits.Count >= MaxMisfitsNamed)
                    break;
                if (key.StartsWith("SIZE(", StringComparison.Ordinal) && key.EndsWith(')'))
                {
                    var name = key[5..^1];
                    if (vmcoreInfo.Size(name) is not ulong size || !types.TryFindComposite(name, out int id))
                        continue;
                    long btfSize = types.SizeOf(id);
                    if ((ulong)btfSize != size)
                        misfits.Add($"struct {name} is {btfSize} bytes, but VMCOREINFO's SIZE({name}) is {size}");
                }
                else if (key.StartsWith("OFFSET(", StringComparison.Ordinal) && key.EndsWith(')'))
                {
                    var path = key[7..^1];
                    var dot = path.IndexOf('.', StringComparison.Ordinal);
                    if (dot <= 0 || path.IndexOf('.', dot + 1) >= 0 || vmcoreInfo.Offset(path) is not ulong offset
                        || !types.TryFindComposite(path[..dot], out int id))
                        continue;
                    var member = path[(dot + 1)..];
                    foreach (var field in types.GetFlattenedMembers(id))
                    {
                        if (field.Name != member || field.IsBitfield)
                            continue;
                        if ((ulong)field.Offset != offset)
                            misfits.Add($"{path} is at offset {field.Offset}, but VMCOREINFO's OFFSET({path}) is {offset}");
                        break;
                    }
                }
            }
        }
        why = misfits.Count == 0 ? null : string.Join("; ", misfits);
        return why is null;
    }

    /// <summary>The first BTF found, in the order the remarks give.</summary>
    private static bool TryFindAny(Kvm kvm, [NotNullWhen(true)] out KernelBtf? btf, [NotNullWhen(false)] out string? why)
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
                // The namelist is named once: the readers' messages start with its path too.
                var namelistWhy = $"namelist {kvm.NamelistPath}: {WithoutPath(e.Message, kvm.NamelistPath)}";
                try
                {
                    if (TryDwarf(kvm.NamelistPath, out btf, out var noDwarf))
                    {
                        why = null;
                        return true;
                    }
                    tried.Add($"{namelistWhy}; {WithoutPath(noDwarf, kvm.NamelistPath)}");
                }
                catch (Exception d) when (d is KvmException or IOException or UnauthorizedAccessException)
                {
                    tried.Add($"{namelistWhy}; its DWARF: {WithoutPath(d.Message, kvm.NamelistPath)}");
                }
            }
        }
        else
        {
            tried.Add($"namelist {kvm.NamelistPath} ({kvm.Symbols.Kind}) is not an ELF vmlinux");
        }
        if (TryFromMemory(kvm, out btf, out var fromMemory, out var fromMemoryIsRead))
        {
            why = null;
            return true;
        }
        tried.Add($"image memory: {fromMemory}");
        why = $"no BTF for this kernel (give a type file with {nameof(KvmOpenOptions)}.{nameof(KvmOpenOptions.TypesPath)}: BTF, e.g. from `pahole --btf_encode_detached`, or the kernel's DWARF vmlinux): {string.Join("; ", tried)}";
        // A dump cut short loses the kernel's own BTF with the rest: that is the cause to name first.
        if (fromMemoryIsRead && kvm.Truncation is { } truncated)
            why = $"{truncated}: {why}";
        return false;
    }

    /// <summary><paramref name="message"/> without a leading "<paramref name="path"/>: ".</summary>
    private static string WithoutPath(string message, string path) =>
        message.StartsWith(path + ": ", StringComparison.Ordinal) ? message[(path.Length + 2)..] : message;

    private static bool TryFromMemory(Kvm kvm, [NotNullWhen(true)] out KernelBtf? btf, [NotNullWhen(false)] out string? why, out bool readFailed)
    {
        btf = null;
        readFailed = false;
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
                // Only a read of the dump's memory gives no types without an exception.
                why = failure!;
                readFailed = true;
                return false;
            }
            btf = new KernelBtf(types, name, imageMemory: true);
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
