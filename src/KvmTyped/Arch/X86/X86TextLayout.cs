using System.Diagnostics.CodeAnalysis;
using KvmTyped.Formats;
using KvmTyped.Symbols;
using KvmTyped.Translation;

namespace KvmTyped.Arch.X86;

/// <summary>An x86 kernel whose page tables are not used (the namelist names none): the kernel text mapping (x86-64)
/// or the low-memory direct map (i386) is linear, and a core that gives virtual addresses (kdump's and
/// makedumpfile's ELF files, section references) adds its own; nothing else translates.</summary>
internal sealed class X86TextLayout : IKernelImageLayout
{
    /// <summary>Size of the i386 lowmem direct map (896 MiB by default).</summary>
    public const ulong I386LowmemSize = 896UL << 20;

    private X86TextLayout(ulong slide, long physBase, ulong imageBase, DataModel model, IAddressSpace space)
    {
        KaslrOffset = slide;
        PhysBase = physBase;
        SymbolRelocation = new SymbolRelocation(slide, imageBase, model);
        AddressSpace = space;
    }

    /// <summary>The layout VMCOREINFO and the core's own virtual addresses give.</summary>
    /// <exception cref="KvmOpenException">VMCOREINFO's phys_base is not page-aligned.</exception>
    public static X86TextLayout Create(DataModel model, VmcoreInfo? vmi, ISymbolTable symbols, IReadOnlyList<(ulong Virt, ulong Phys, ulong Size)> coreMaps)
    {
        ulong slide = 0;
        long physBase = 0;
        IAddressSpace window;
        ulong imageBase;
        if (model == DataModel.LP64)
        {
            slide = vmi?.KernelOffset ?? 0;
            physBase = vmi?.Number("phys_base") ?? 0;
            if ((physBase & 0xfff) != 0)
                throw new KvmOpenException($"phys_base {physBase} (VMCOREINFO NUMBER(phys_base)) is not page-aligned");
            imageBase = KernelLayout.StartKernelMap;
            window = new LinearAddressSpace(imageBase, KernelLayout.KernelImageWindow, unchecked((ulong)physBase), new NoPageTables("kernel text mapping"));
        }
        else
        {
            // i386 VMCOREINFO has no KERNELOFFSET: the slide is SYMBOL(_stext) there minus _stext in the namelist.
            if (vmi?.Symbol("_stext") is { } runStext && symbols.TryLookup("_stext", out var st))
                slide = unchecked((uint)(runStext - st.Address));
            imageBase = KernelLayout.DefaultPageOffsetI386;
            window = new LinearAddressSpace(imageBase, I386LowmemSize, 0, new NoPageTables("lowmem direct map"));
        }
        var space = coreMaps.Count > 0 ? new CoreVirtualMap(coreMaps, window) : window;
        return new X86TextLayout(slide, physBase, imageBase, model, space);
    }

    public ulong KaslrOffset { get; }

    public string? KaslrSource => null;

    public long PhysBase { get; }

    public ulong? PageOffset => null;

    public int? PagingLevels => null;

    public bool Pae => false;

    public ulong? RootTable => null;

    public IAddressSpace AddressSpace { get; }

    public SymbolRelocation SymbolRelocation { get; }

    public IAddressSpace? CreateProcessAddressSpace(ulong rootTablePhysical) => null;

    public void InvalidateTranslations()
    {
    }

    /// <summary>What lies outside the linear window: nothing, and the failure says why.</summary>
    private sealed class NoPageTables(string window) : IAddressSpace
    {
        public bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous, [NotNullWhen(false)] out string? failure)
        {
            physicalAddress = contiguous = 0;
            failure = $"cannot translate 0x{virtualAddress:x}: outside the {window} and page-table translation is not available for this image";
            return false;
        }
    }
}
