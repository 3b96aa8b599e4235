using System.Diagnostics.CodeAnalysis;
using KvmTyped.Formats;
using static KvmTyped.Translation.PageTableWalk;

namespace KvmTyped.Translation;

/// <summary>x86-64 page tables, 4-level (PML4) or 5-level (LA57), walked in physical memory from a root table.</summary>
/// <remarks>
/// Follows the Intel SDM vol. 3A §4.5: 9 index bits per level above a 12-bit page offset; the PS bit maps a
/// 1 GiB page at the third level (PUD/PDPT) and a 2 MiB page at the second (PMD/PD). Entry frames are bits 12–51
/// (52-bit physical addresses); the NX bit 63, the software bits 52–62 and, when given, the memory-encryption bit
/// (<c>sme_mask</c> from VMCOREINFO) are not part of the address. Levels are named as Linux names them: PGD, P4D
/// (5-level only), PUD, PMD, PTE, numbered from the top (5 or 4) down to 1. A walk reads at most one entry per
/// level, so it is bounded by construction; a table cannot loop. The same class serves a process's address space:
/// pass that process's root (its <c>mm-&gt;pgd</c>, made physical) instead of the kernel's.
/// </remarks>
internal sealed class X86_64PageTables : IAddressSpace
{
    private readonly IPhysicalMemory _memory;
    private readonly ulong _frameMask;
    private readonly ulong _physicalLimit;

    /// <summary>Creates a walker.</summary>
    /// <param name="memory">Physical memory holding the tables.</param>
    /// <param name="rootTable">Physical address of the top-level table (what CR3 holds; low 12 bits are ignored).</param>
    /// <param name="levels">4 (PML4) or 5 (LA57).</param>
    /// <param name="smeMask">The memory-encryption mask (VMCOREINFO NUMBER(sme_mask)), removed from every entry's
    /// frame; 0 when memory is not encrypted.</param>
    /// <param name="physicalAddressBits">The widest physical address a mapping may name (at most 52); a frame above it
    /// is reported as reserved bits set.</param>
    public X86_64PageTables(IPhysicalMemory memory, ulong rootTable, int levels = 4, ulong smeMask = 0, int physicalAddressBits = 52)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (levels is not (4 or 5))
            throw new ArgumentOutOfRangeException(nameof(levels), levels, "x86-64 paging has 4 or 5 levels");
        if (physicalAddressBits is < 32 or > 52)
            throw new ArgumentOutOfRangeException(nameof(physicalAddressBits), physicalAddressBits, "between 32 and 52");
        _memory = memory;
        Levels = levels;
        SmeMask = smeMask;
        _frameMask = FrameMask52 & ~smeMask;
        _physicalLimit = 1UL << physicalAddressBits;
        RootTable = rootTable & _frameMask;
    }

    /// <summary>Physical address of the top-level table.</summary>
    public ulong RootTable { get; }

    /// <summary>4 or 5.</summary>
    public int Levels { get; }

    /// <summary>The memory-encryption mask removed from entries.</summary>
    public ulong SmeMask { get; }

    /// <summary>The Linux name of a level's entries ("PGD", "P4D", "PUD", "PMD", "PTE").</summary>
    public string LevelName(int level) => level switch
    {
        1 => "PTE",
        2 => "PMD",
        3 => "PUD",
        4 => Levels == 5 ? "P4D" : "PGD",
        5 => "PGD",
        _ => throw new ArgumentOutOfRangeException(nameof(level)),
    };

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
        var topBit = Levels == 5 ? 56 : 47;
        var upper = (long)virtualAddress >> topBit;
        if (upper is not (0 or -1))
        {
            failure = Fail(virtualAddress, $"non-canonical address for {Levels}-level paging");
            return false;
        }

        var table = RootTable;
        for (var level = Levels; level >= 1; level--)
        {
            var shift = 12 + (9 * (level - 1));
            var index = (virtualAddress >> shift) & 511;
            var entryAddress = table + (index * 8);
            if (!TryReadEntry64(_memory, entryAddress, out var entry, out var readFailure))
            {
                failure = Fail(virtualAddress, $"cannot read {LevelName(level)} entry at physical {Hex(entryAddress)} ({readFailure})", level);
                return false;
            }

            var large = level is 2 or 3 && (entry & PageSize) != 0;
            if (level == 1 || large)
            {
                if (!LeafFrame64(entry, _frameMask, out var frame))
                {
                    if (level == 1 && SwapEntry64(entry, out var swapType, out var swapOffset))
                    {
                        swap = new SwapEntry(swapType, swapOffset);
                        failure = Fail(virtualAddress, Swapped(LevelName(level), entry, swapType, swapOffset), level);
                    }
                    else
                    {
                        failure = Fail(virtualAddress, $"{LevelName(level)} entry not present ({Hex(entry)})", level);
                    }
                    return false;
                }
                var pageBytes = 1UL << shift;
                if (large && (frame & (pageBytes - 1)) != 0)
                {
                    // Bits 13..(shift-1) of a large-page entry are reserved (bit 12 is PAT). A PROT_NONE large entry
                    // has only its frame bits inverted (Linux pgtable-invert.h), so those bits read back set there.
                    var reserved = (entry & Present) != 0 ? frame & (pageBytes - 1) & ~0x1000UL : 0;
                    if (reserved != 0)
                    {
                        failure = Fail(virtualAddress, $"reserved bits set in {LevelName(level)} entry {Hex(entry)}", level);
                        return false;
                    }
                    frame &= ~(pageBytes - 1);
                }
                if (frame >= _physicalLimit)
                {
                    failure = Fail(virtualAddress, $"{LevelName(level)} entry {Hex(entry)} maps beyond the physical address width", level);
                    return false;
                }
                var offset = virtualAddress & (pageBytes - 1);
                physicalAddress = frame + offset;
                contiguous = pageBytes - offset;
                failure = null;
                return true;
            }

            if ((entry & Present) == 0)
            {
                failure = Fail(virtualAddress, $"{LevelName(level)} entry not present ({Hex(entry)})", level);
                return false;
            }
            if ((entry & PageSize) != 0)
            {
                failure = Fail(virtualAddress, $"reserved bit PS set in {LevelName(level)} entry {Hex(entry)}", level);
                return false;
            }
            table = entry & _frameMask;
            if (table >= _physicalLimit)
            {
                failure = Fail(virtualAddress, $"{LevelName(level)} entry {Hex(entry)} points beyond the physical address width", level);
                return false;
            }
        }

        failure = Fail(virtualAddress, "page walk ended without a leaf");
        return false;
    }

}
