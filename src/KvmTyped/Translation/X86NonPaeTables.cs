using System.Diagnostics.CodeAnalysis;
using KvmTyped.Formats;
using static KvmTyped.Translation.PageTableWalk;

namespace KvmTyped.Translation;

/// <summary>32-bit x86 two-level page tables without PAE: a page directory and page tables of 1024 32-bit entries;
/// 4 MiB large pages (PSE).</summary>
/// <remarks>
/// Intel SDM vol. 3A §4.3: virtual bits 31–22 pick the PDE (Linux's PGD, level 2; PS maps 4 MiB), 21–12 the PTE
/// (level 1). A 4 MiB entry carries physical bits 32–39 in its bits 13–20 (PSE-36/PSE-40) and has bit 21 reserved.
/// A walk reads at most two entries.
/// </remarks>
public sealed class X86NonPaeTables : IAddressSpace, ISwapEntries
{
    private readonly IPhysicalMemory _memory;

    /// <summary>Creates a walker.</summary>
    /// <param name="memory">Physical memory holding the tables.</param>
    /// <param name="rootTable">Physical address of the page directory (CR3; low 12 bits ignored).</param>
    public X86NonPaeTables(IPhysicalMemory memory, ulong rootTable)
    {
        ArgumentNullException.ThrowIfNull(memory);
        _memory = memory;
        RootTable = rootTable & 0xffff_f000UL;
    }

    /// <summary>Physical address of the page directory.</summary>
    public ulong RootTable { get; }

    /// <inheritdoc />
    public bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous,
        [NotNullWhen(false)] out string? failure)
    {
        physicalAddress = 0;
        contiguous = 0;
        if (virtualAddress > uint.MaxValue)
        {
            failure = Fail(virtualAddress, "address beyond the 32-bit address space");
            return false;
        }

        var pdeAddress = RootTable + ((virtualAddress >> 22) * 4);
        if (!TryReadEntry32(_memory, pdeAddress, out var pde, out var readFailure))
        {
            failure = Fail(virtualAddress, $"cannot read PGD entry at physical {Hex(pdeAddress)} ({readFailure})", 2);
            return false;
        }
        if ((pde & Present) == 0)
        {
            failure = Fail(virtualAddress, $"PGD entry not present ({Hex(pde)})", 2);
            return false;
        }
        if ((pde & PageSize) != 0)
        {
            if ((pde & (1u << 21)) != 0)
            {
                failure = Fail(virtualAddress, $"reserved bits set in PGD entry {Hex(pde)}", 2);
                return false;
            }
            var frame = (ulong)(pde & 0xffc0_0000u) | ((ulong)((pde >> 13) & 0xff) << 32);
            var offset = virtualAddress & 0x3f_ffffUL;
            physicalAddress = frame + offset;
            contiguous = 0x40_0000UL - offset;
            failure = null;
            return true;
        }

        var pteAddress = (ulong)(pde & 0xffff_f000u) + (((virtualAddress >> 12) & 1023) * 4);
        if (!TryReadEntry32(_memory, pteAddress, out var pte, out readFailure))
        {
            failure = Fail(virtualAddress, $"cannot read PTE entry at physical {Hex(pteAddress)} ({readFailure})", 1);
            return false;
        }
        // Linux's 2-level PROT_NONE PTEs keep their frame as is (no L1TF inversion without PAE).
        if ((pte & (Present | ProtNone)) == 0)
        {
            failure = SwapEntry32(pte, out var swapType, out var swapOffset)
                ? Fail(virtualAddress, Swapped("PTE", pte, swapType, swapOffset), 1)
                : Fail(virtualAddress, $"PTE entry not present ({Hex(pte)})", 1);
            return false;
        }
        var pageOffset = virtualAddress & 0xfffUL;
        physicalAddress = (ulong)(pte & 0xffff_f000u) + pageOffset;
        contiguous = 0x1000UL - pageOffset;
        failure = null;
        return true;
    }

    /// <summary>The Linux swap entry (swap area type and page offset in it) of a swapped-out page: its PTE is neither
    /// present nor PROT_NONE nor empty.</summary>
    /// <param name="virtualAddress">An address in the page.</param>
    /// <param name="type">The swap area's index (the kernel's swap type).</param>
    /// <param name="offset">The page's index in the swap area.</param>
    /// <returns>False when the page is mapped, its PTE is empty, the directory entry above it is not present or maps
    /// a large page, or a table cannot be read.</returns>
    public bool TryGetSwapEntry(ulong virtualAddress, out int type, out ulong offset)
    {
        type = 0;
        offset = 0;
        if (virtualAddress > uint.MaxValue)
            return false;
        if (!TryReadEntry32(_memory, RootTable + ((virtualAddress >> 22) * 4), out var pde, out _)
            || (pde & Present) == 0 || (pde & PageSize) != 0)
            return false;
        if (!TryReadEntry32(_memory, (ulong)(pde & 0xffff_f000u) + (((virtualAddress >> 12) & 1023) * 4), out var pte, out _))
            return false;
        return SwapEntry32(pte, out type, out offset);
    }
}
