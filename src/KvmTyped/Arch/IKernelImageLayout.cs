using KvmTyped.Symbols;
using KvmTyped.Translation;

namespace KvmTyped.Arch;

/// <summary>What an architecture finds out about the kernel in a dump: where its image is (the KASLR slide and where
/// the image's addresses begin), where physical memory is mapped, the paging mode and root table, and the kernel
/// address space built from them. Each architecture folder (Arch/X86, …) makes these; the open uses only this.</summary>
internal interface IKernelImageLayout
{
    /// <summary>The KASLR slide: running address − namelist address of every kernel-image symbol.</summary>
    ulong KaslrOffset { get; }

    /// <summary>How the slide was found ("VMCOREINFO KERNELOFFSET", "linux_banner search", …), or null when it was not
    /// looked for (no namelist symbol names the page tables).</summary>
    string? KaslrSource { get; }

    /// <summary>x86-64 phys_base (0 elsewhere).</summary>
    long PhysBase { get; }

    /// <summary>Start of the direct map of physical memory, when known.</summary>
    ulong? PageOffset { get; }

    /// <summary>Paging levels, when the page tables are used.</summary>
    int? PagingLevels { get; }

    /// <summary>Whether an i386 kernel uses PAE.</summary>
    bool Pae { get; }

    /// <summary>Physical address of the kernel's root page table, when the page tables are used.</summary>
    ulong? RootTable { get; }

    /// <summary>The kernel address space.</summary>
    IAddressSpace AddressSpace { get; }

    /// <summary>The relocation of namelist addresses this layout implies.</summary>
    SymbolRelocation SymbolRelocation { get; }

    /// <summary>An address space walking another root table (a process's page directory, made physical) in the
    /// kernel's paging mode; null when the image's page tables are not used.</summary>
    IAddressSpace? CreateProcessAddressSpace(ulong rootTablePhysical);

    /// <summary>Forgets cached translations (after page tables were written).</summary>
    void InvalidateTranslations();
}
