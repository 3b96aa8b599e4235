using System.Diagnostics.CodeAnalysis;
using KvmTyped.Formats;
using static KvmTyped.Translation.PageTableWalk;

namespace KvmTyped.Translation;

/// <summary>32-bit x86 PAE page tables: a four-entry page-directory-pointer table, page directories and page tables
/// of 512 64-bit entries; 2 MiB large pages.</summary>
/// <remarks>
/// Intel SDM vol. 3A §4.4: virtual bits 31–30 pick the PDPTE (Linux's PGD, level 3), 29–21 the PDE (PMD, level 2;
/// PS maps 2 MiB), 20–12 the PTE (level 1). A PDPTE has reserved bits 1–2 and 7–8 and no NX bit. Frames are bits
/// 12–51; NX (bit 63) is not part of the address. A walk reads at most three entries. The accessed and dirty bits
/// (5, 6) of a PDPTE are not treated as reserved: QEMU sets the accessed bit there.
/// </remarks>
internal sealed class X86PaeTables : IAddressSpace
{
    private const ulong PdpteReserved = 0x186UL | (1UL << 63);

    private readonly IPhysicalMemory _memory;

    /// <summary>Creates a walker.</summary>
    /// <param name="memory">Physical memory holding the tables.</param>
    /// <param name="rootTable">Physical address of the page-directory-pointer table (CR3; 32-byte aligned).</param>
    public X86PaeTables(IPhysicalMemory memory, ulong rootTable)
    {
        ArgumentNullException.ThrowIfNull(memory);
        _memory = memory;
        RootTable = rootTable & ~0x1fUL;
    }

    /// <summary>Physical address of the page-directory-pointer table.</summary>
    public ulong RootTable { get; }

    /// <inheritdoc />
    public bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous,
        [NotNullWhen(false)] out string? failure) =>
        TryTranslate(virtualAddress, out physicalAddress, out contiguous, out failure, out _);

    /// <inheritdoc />
    public bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous,
        [NotNullWhen(false)] out string? failure, out SwapEntry? swap)
    {
        physicalAddress = 0;
        contiguous = 0;
        swap = null;
        if (virtualAddress > uint.MaxValue)
        {
            failure = Fail(virtualAddress, "address beyond the 32-bit address space");
            return false;
        }

        var pdpteAddress = RootTable + (((virtualAddress >> 30) & 3) * 8);
        if (!TryReadEntry64(_memory, pdpteAddress, out var pdpte, out var readFailure))
        {
            failure = Fail(virtualAddress, $"cannot read PGD entry at physical {Hex(pdpteAddress)} ({readFailure})", 3);
            return false;
        }
        if ((pdpte & Present) == 0)
        {
            failure = Fail(virtualAddress, $"PGD entry not present ({Hex(pdpte)})", 3);
            return false;
        }
        if ((pdpte & PdpteReserved) != 0)
        {
            failure = Fail(virtualAddress, $"reserved bits set in PGD entry {Hex(pdpte)}", 3);
            return false;
        }

        var pdeAddress = (pdpte & FrameMask52) + (((virtualAddress >> 21) & 511) * 8);
        if (!TryReadEntry64(_memory, pdeAddress, out var pde, out readFailure))
        {
            failure = Fail(virtualAddress, $"cannot read PMD entry at physical {Hex(pdeAddress)} ({readFailure})", 2);
            return false;
        }
        if ((pde & PageSize) != 0)
        {
            if (!LeafFrame64(pde, FrameMask52, out var frame))
            {
                failure = Fail(virtualAddress, $"PMD entry not present ({Hex(pde)})", 2);
                return false;
            }
            // A PROT_NONE large entry has only its frame bits (21 up) inverted (Linux pgtable-invert.h): the bits below
            // read back set and are not reserved bits.
            if ((pde & Present) != 0 && (frame & 0x1f_e000UL) != 0)
            {
                failure = Fail(virtualAddress, $"reserved bits set in PMD entry {Hex(pde)}", 2);
                return false;
            }
            var offset = virtualAddress & 0x1f_ffffUL;
            physicalAddress = (frame & ~0x1f_ffffUL) + offset;
            contiguous = 0x20_0000UL - offset;
            failure = null;
            return true;
        }
        if ((pde & Present) == 0)
        {
            failure = Fail(virtualAddress, $"PMD entry not present ({Hex(pde)})", 2);
            return false;
        }

        var pteAddress = (pde & FrameMask52) + (((virtualAddress >> 12) & 511) * 8);
        if (!TryReadEntry64(_memory, pteAddress, out var pte, out readFailure))
        {
            failure = Fail(virtualAddress, $"cannot read PTE entry at physical {Hex(pteAddress)} ({readFailure})", 1);
            return false;
        }
        if (!LeafFrame64(pte, FrameMask52, out var pageFrame))
        {
            if (TryDecodeSwap(pte, out var swapType, out var swapOffset))
            {
                swap = new SwapEntry(swapType, swapOffset);
                failure = Fail(virtualAddress, Swapped("PTE", pte, swapType, swapOffset), 1);
            }
            else
            {
                failure = Fail(virtualAddress, $"PTE entry not present ({Hex(pte)})", 1);
            }
            return false;
        }
        var pageOffset = virtualAddress & 0xfffUL;
        physicalAddress = pageFrame + pageOffset;
        contiguous = 0x1000UL - pageOffset;
        failure = null;
        return true;
    }

    // A 32-bit kernel keeps the offset in an unsigned long (__pteval_swp_offset), so its top bits are cut off.
    private static bool TryDecodeSwap(ulong pte, out int type, out ulong offset)
    {
        var ok = SwapEntry64(pte, out type, out offset);
        offset &= uint.MaxValue;
        return ok;
    }

    /// <summary>Whether a page looks like a PAE page-directory-pointer table: its first four entries are empty or
    /// present with only the present, cache, accessed and dirty bits and a page-aligned frame below 2^52, at least one is present, and the rest of the
    /// page is zero (Linux allocates the table a whole page, head_32.S <c>swapper_pg_dir</c>).</summary>
    internal static bool LooksLikePdpt(ReadOnlySpan<byte> page)
    {
        if (page.Length < 4096)
            return false;
        var present = 0;
        for (var i = 0; i < 4; i++)
        {
            var e = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(page[(i * 8)..]);
            if (e == 0)
                continue;
            if ((e & Present) == 0 || (e & PdpteReserved) != 0 || (e & ~(FrameMask52 | 0xe79UL)) != 0)
                return false;
            present++;
        }
        return present > 0 && !page[32..4096].ContainsAnyExcept((byte)0);
    }
}
