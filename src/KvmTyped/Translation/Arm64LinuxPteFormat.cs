namespace KvmTyped.Translation;

/// <summary>How a Linux arm64 kernel uses the bits of descriptors whose valid bit is clear: which software bit marks a
/// page that is still present (PROT_NONE, NUMA hinting, a huge page being split), and where a swap entry keeps its type
/// and offset.</summary>
/// <remarks>Read from arch/arm64/include/asm/pgtable.h and pgtable-prot.h of Debian's 6.1.176 and 6.12.117 headers;
/// crash (arm64.c) switches between the same two layouts at Linux 6.10. In both, bits 1:0 of a swap entry are zero and
/// bit 2 remembers PG_anon_exclusive.</remarks>
internal enum Arm64LinuxPteFormat
{
    /// <summary>Linux 5.19 to 6.9: PTE_PROT_NONE is bit 58 (pte_present is valid or bit 58), PMD_PRESENT_INVALID is
    /// bit 59 (pmd_present also accepts it: a transparent huge page being split); a swap entry has its type in bits 3–7
    /// and its offset in bits 8–57, bit 58 clear.</summary>
    ProtNoneBit58,

    /// <summary>Linux 6.10 on: PTE_PRESENT_INVALID overlays nG, bit 11, at every level (pte_present is valid or bit
    /// 11); a swap entry has its type in bits 6–10 and its offset in bits 12–61, bit 11 clear (bit 3 is the uffd-wp
    /// marker).</summary>
    PresentInvalidNg,
}
