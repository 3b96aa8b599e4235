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
internal sealed class X86NonPaeTables : IAddressSpace
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
            if (SwapEntry32(pte, out var swapType, out var swapOffset))
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
        physicalAddress = (ulong)(pte & 0xffff_f000u) + pageOffset;
        contiguous = 0x1000UL - pageOffset;
        failure = null;
        return true;
    }

}
