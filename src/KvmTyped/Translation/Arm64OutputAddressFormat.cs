namespace KvmTyped.Translation;

/// <summary>How an aarch64 descriptor holds its output address (the next table, the block or the page).</summary>
/// <remarks>Arm ARM (DDI 0487) D8.3, "Translation table descriptor formats"; Linux names the same split
/// PTE_ADDR_LOW / PTE_ADDR_HIGH in arch/arm64/include/asm/pgtable-hwdef.h.</remarks>
internal enum Arm64OutputAddressFormat
{
    /// <summary>48-bit output addresses: address bits 47 down to the granule in the same descriptor bits.</summary>
    Bits48,

    /// <summary>FEAT_LPA with the 64 KiB granule: bits 47:16 as usual, address bits 51:48 in descriptor bits 15:12.
    /// Level 1 may then hold 4 TiB blocks.</summary>
    Lpa,

    /// <summary>FEAT_LPA2 with the 4 KiB or 16 KiB granule (TCR_ELx.DS = 1): address bits 49 down to the granule in
    /// the same descriptor bits, address bits 51:50 in descriptor bits 9:8 (shareability moves to TCR). 52-bit
    /// virtual addresses add level −1 with 4 KiB pages; level 0 may hold 512 GiB blocks (4 KiB) and level 1 64 GiB
    /// blocks (16 KiB).</summary>
    Lpa2,
}
