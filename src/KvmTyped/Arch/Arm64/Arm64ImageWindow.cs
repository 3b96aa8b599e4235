using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using KvmTyped.Formats;
using KvmTyped.Symbols;

namespace KvmTyped.Arch.Arm64;

/// <summary>The arm64 kernel image as VMCOREINFO alone places it, before any namelist is known: the image is mapped
/// linearly at <c>kimage_voffset</c> above its physical pages, so an image address is read at address −
/// kimage_voffset without the page tables (whose root, swapper_pg_dir, only a symbol table names). This is what reads
/// the kernel's own kallsyms out of a dump opened without a namelist.</summary>
internal sealed class Arm64ImageWindow
{
    /// <summary>The most an arm64 kernel image spans from its start (<c>_text</c>): the kernel's own limit for the image
    /// (KIMAGE_VSIZE is at most 2^31 for any VA_BITS) bounds every read through the window.</summary>
    public const ulong MaxImageBytes = 1UL << 31;

    private readonly IPhysicalMemory _memory;

    private Arm64ImageWindow(IPhysicalMemory memory, ulong slide, ulong linkImageBase, ulong kimageVoffset)
    {
        _memory = memory;
        KimageVoffset = kimageVoffset;
        Relocation = new SymbolRelocation(slide, linkImageBase, DataModel.LP64);
        RunningImageBase = unchecked(linkImageBase + slide);
    }

    /// <summary>kimage_voffset: image virtual address − physical address.</summary>
    public ulong KimageVoffset { get; }

    /// <summary>The KASLR slide (<c>KERNELOFFSET</c>) and the image's link-time start, 2 MiB below <c>_stext</c>'s
    /// link address rounded down (the arm64 image is aligned to 2 MiB and begins with its 64 KiB head before
    /// <c>_stext</c>).</summary>
    public SymbolRelocation Relocation { get; }

    /// <summary>Where the image begins in the running kernel.</summary>
    public ulong RunningImageBase { get; }

    /// <summary>The window VMCOREINFO gives: NUMBER(kimage_voffset), KERNELOFFSET (0 when absent: no KASLR) and
    /// SYMBOL(_stext).</summary>
    /// <exception cref="KvmOpenException">One of them is missing or not a number, or _stext is not above the slide.</exception>
    public static Arm64ImageWindow Create(IPhysicalMemory memory, VmcoreInfo info, string core)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(info);
        var kimageVoffset = (info["NUMBER(kimage_voffset)"] is null ? null : VmcoreNumber.Get(info, "kimage_voffset"))
            ?? throw new KvmOpenException($"{core}: VMCOREINFO has no usable NUMBER(kimage_voffset): the arm64 kernel image cannot be placed in physical memory");
        var stext = info.Symbol("_stext")
            ?? throw new KvmOpenException($"{core}: VMCOREINFO has no SYMBOL(_stext): the arm64 kernel image cannot be found");
        var slide = info.KernelOffset ?? 0;
        if (stext < slide || stext < kimageVoffset)
            throw new KvmOpenException($"{core}: VMCOREINFO SYMBOL(_stext)=0x{stext.ToString("x", CultureInfo.InvariantCulture)} lies below KERNELOFFSET or kimage_voffset: not an arm64 kernel image address");
        var linkBase = (stext - slide) & ~((2UL << 20) - 1);
        return new Arm64ImageWindow(memory, slide, linkBase, kimageVoffset);
    }

    /// <summary>Reads running kernel-image memory at <paramref name="address"/> − kimage_voffset.</summary>
    public bool TryReadVirtual(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        if (address < RunningImageBase || address - RunningImageBase > MaxImageBytes - (ulong)destination.Length)
        {
            failure = $"0x{address.ToString("x", CultureInfo.InvariantCulture)} is outside the arm64 kernel image (from 0x{RunningImageBase.ToString("x", CultureInfo.InvariantCulture)}), the only memory readable before the page tables are known";
            return false;
        }
        return _memory.TryRead(address - KimageVoffset, destination, out failure);
    }
}
