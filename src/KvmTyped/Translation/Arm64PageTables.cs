using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using KvmTyped.Formats;
using static KvmTyped.Translation.PageTableWalk;

namespace KvmTyped.Translation;

/// <summary>aarch64 stage-1 translation tables (VMSAv8-64) of one half of the address space, walked in physical memory
/// from a root table: 4, 16 or 64 KiB granules, 25- to 52-bit virtual addresses, 48-bit, LPA or LPA2 output
/// addresses.</summary>
/// <remarks>
/// <para>Arm ARM (DDI 0487) D8: each level resolves granule − 3 bits of the address above the page offset; the walk
/// starts at the level the VA size leaves for it (4 KiB/39 bits: levels 1–3; 4 KiB/48: 0–3; 4 KiB/52 with LPA2: −1–3;
/// 16 KiB/47: 1–3; 16 KiB/48: 0–3, level 0 with two entries; 64 KiB/42: 2–3; 64 KiB/48 or 52: 1–3) and ends at level
/// 3. Descriptor bits 1:0 are 0b11 for a table (levels above 3) or a page (level 3), 0b01 for a block, and bit 0 clear
/// for an invalid entry. Blocks are allowed where the architecture allows them: 4 KiB — levels 1 and 2 (and 0 with
/// LPA2); 16 KiB — level 2 (and 1 with LPA2); 64 KiB — level 2 (and 1 with LPA) — the pseudocode's
/// AArch64.BlockDescSupported, as QEMU's target/arm/ptw.c implements it. A block at another level, 0b01 at
/// level 3, and the bits a descriptor must keep zero (RES0: below the granule where they carry no address, 49:48 or
/// 51:48 where the format has no address there, and the address bits inside a block) are refused, naming the level
/// and the entry.</para>
/// <para>Only the output address is taken from a descriptor: the upper attributes (GP, DBM, the contiguous hint, PXN,
/// UXN, the software and PBHA bits) and the lower attributes (AttrIndx, NS, AP, SH, AF, nG, nT) are never part of
/// it. The contiguous hint (bit 52) does not change the translation; <c>contiguous</c> reports the rest of this
/// descriptor's page or block only, since the neighbouring entries the hint promises are not read (a walk reads at
/// most one entry per level, and a misprogrammed hint must not make unread entries trusted).</para>
/// <para>Linux keeps some valid-bit-clear entries "present" (<see cref="Arm64LinuxPteFormat"/>): PROT_NONE pages
/// (also NUMA-balancing hints) and huge pages being split. Their output address is intact, and pte_present() /
/// pmd_present() are true, so they are translated as if valid, as the x86 walkers translate x86 PROT_NONE entries.
/// drgn (libdrgn/arch_aarch64.c) follows only valid descriptors and crash's arm64 vtop only valid PTEs (its PTE
/// decoder still calls a PROT_NONE PTE present and prints its page), so they report such pages unmapped; reading them
/// here gives the page the process owns. Any other non-empty invalid PTE of a user table is a swap entry, reported as
/// such; the kernel half has no swap, so there it is just not present.</para>
/// <para>Levels are the architecture's lookup levels (−1 to 3) and are named as Linux names them: the first is the
/// PGD, then P4D (level 0 under a level −1), PUD (level 1), PMD (level 2), PTE (level 3). Entries are read
/// little-endian. The root is a physical address (e.g. <c>swapper_pg_dir</c> − <c>kimage_voffset</c>, or a task's
/// <c>mm-&gt;pgd</c> made physical), not a TTBR value with ASID and CnP bits. Linux chooses the VA size for
/// 4 KiB and 16 KiB granules at boot (a 52-bit kernel falls back to 48 or 47 bits without LPA2): pass the size it ran
/// with, 64 − VMCOREINFO <c>NUMBER(TCR_EL1_T1SZ)</c>; with 64 KiB pages <c>NUMBER(VA_BITS)</c> serves both
/// (swapper_pg_dir is laid out for it and the tables are walked alike).</para>
/// </remarks>
internal sealed class Arm64PageTables : IAddressSpace
{

    private const ulong Valid = 1UL << 0;
    private const ulong TableBit = 1UL << 1;
    private const ulong NonTransit = 1UL << 16;
    private const ulong ProtNoneBit58 = 1UL << 58;
    private const ulong PmdPresentInvalidBit59 = 1UL << 59;
    private const ulong PresentInvalidNg = 1UL << 11;
    private const ulong SwapOffsetMask = (1UL << 50) - 1;

    private readonly IPhysicalMemory _memory;
    private readonly int _pageShift;
    private readonly int _bitsPerLevel;
    private readonly ulong _indexMask;
    private readonly ulong _topIndexMask;
    private readonly ulong _lowAddressMask;
    private readonly ulong _highAddressMask;
    private readonly int _highAddressShift;
    private readonly ulong _tableReserved;
    private readonly ulong _leafReserved;
    private readonly ulong _physicalLimit;
    private readonly int _firstBlockLevel;
    private readonly string[] _names;

    /// <summary>Creates a walker.</summary>
    /// <param name="memory">Physical memory holding the tables.</param>
    /// <param name="rootTable">Physical address of the first-level table (8-byte aligned).</param>
    /// <param name="granule">The translation granule.</param>
    /// <param name="virtualAddressBits">The VA size (64 − TnSZ): 25 to 48, or up to 52 with the 64 KiB granule
    /// (FEAT_LVA) or with LPA2.</param>
    /// <param name="half">Which half the tables translate: user (TTBR0) or kernel (TTBR1) addresses.</param>
    /// <param name="outputAddress">How descriptors hold addresses; LPA needs the 64 KiB granule, LPA2 the 4 or 16 KiB
    /// granule.</param>
    /// <param name="physicalAddressBits">The widest physical address a table or mapping may name: 32 to 48, or to 52
    /// with LPA or LPA2; by default 48, or 52 with LPA or LPA2. A descriptor naming memory beyond it is refused.</param>
    /// <param name="linuxPteFormat">Which Linux layout valid-bit-clear entries follow (the kernel version: before or
    /// from 6.10).</param>
    public Arm64PageTables(IPhysicalMemory memory, ulong rootTable, Arm64Granule granule, int virtualAddressBits,
        Arm64AddressHalf half, Arm64OutputAddressFormat outputAddress = Arm64OutputAddressFormat.Bits48,
        int? physicalAddressBits = null, Arm64LinuxPteFormat linuxPteFormat = Arm64LinuxPteFormat.ProtNoneBit58)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (granule is not (Arm64Granule.Size4K or Arm64Granule.Size16K or Arm64Granule.Size64K))
            throw new ArgumentOutOfRangeException(nameof(granule), granule, "4, 16 or 64 KiB");
        if (half is not (Arm64AddressHalf.User or Arm64AddressHalf.Kernel))
            throw new ArgumentOutOfRangeException(nameof(half), half, "user (TTBR0) or kernel (TTBR1)");
        if (linuxPteFormat is not (Arm64LinuxPteFormat.ProtNoneBit58 or Arm64LinuxPteFormat.PresentInvalidNg))
            throw new ArgumentOutOfRangeException(nameof(linuxPteFormat), linuxPteFormat, "a known Linux PTE layout");
        switch (outputAddress)
        {
            case Arm64OutputAddressFormat.Bits48:
                break;
            case Arm64OutputAddressFormat.Lpa when granule != Arm64Granule.Size64K:
                throw new ArgumentException("LPA (52-bit addresses in descriptor bits 15:12) needs the 64 KiB granule", nameof(outputAddress));
            case Arm64OutputAddressFormat.Lpa2 when granule == Arm64Granule.Size64K:
                throw new ArgumentException("LPA2 needs the 4 or 16 KiB granule", nameof(outputAddress));
            case Arm64OutputAddressFormat.Lpa or Arm64OutputAddressFormat.Lpa2:
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(outputAddress), outputAddress, "a known output address format");
        }
        var maxVa = granule == Arm64Granule.Size64K || outputAddress == Arm64OutputAddressFormat.Lpa2 ? 52 : 48;
        if (virtualAddressBits < 25 || virtualAddressBits > maxVa)
            throw new ArgumentOutOfRangeException(nameof(virtualAddressBits), virtualAddressBits,
                $"between 25 and {maxVa.ToString(CultureInfo.InvariantCulture)} for this granule and output address format");
        var maxPa = outputAddress == Arm64OutputAddressFormat.Bits48 ? 48 : 52;
        var paBits = physicalAddressBits ?? maxPa;
        if (paBits < 32 || paBits > maxPa)
            throw new ArgumentOutOfRangeException(nameof(physicalAddressBits), paBits,
                $"between 32 and {maxPa.ToString(CultureInfo.InvariantCulture)} for this output address format");
        _physicalLimit = 1UL << paBits;
        if ((rootTable & 7) != 0 || rootTable >= _physicalLimit)
            throw new ArgumentOutOfRangeException(nameof(rootTable), rootTable, "an 8-byte aligned physical address within the physical address width");

        _memory = memory;
        RootTable = rootTable;
        Granule = granule;
        VirtualAddressBits = virtualAddressBits;
        Half = half;
        OutputAddressFormat = outputAddress;
        PhysicalAddressBits = paBits;
        LinuxPteFormat = linuxPteFormat;

        _pageShift = (int)granule;
        _bitsPerLevel = _pageShift - 3;
        _indexMask = (1UL << _bitsPerLevel) - 1;
        var levels = (virtualAddressBits - _pageShift + _bitsPerLevel - 1) / _bitsPerLevel;
        StartLevel = 4 - levels;
        _topIndexMask = (1UL << (virtualAddressBits - Shift(StartLevel))) - 1;

        var belowGranule = ((1UL << _pageShift) - 1) & ~0xfffUL;
        switch (outputAddress)
        {
            case Arm64OutputAddressFormat.Lpa:
                _lowAddressMask = Bits(47, 16);
                _highAddressMask = Bits(15, 12);
                _highAddressShift = 36;
                _tableReserved = Bits(51, 48);
                _leafReserved = Bits(49, 48);
                break;
            case Arm64OutputAddressFormat.Lpa2:
                _lowAddressMask = Bits(49, _pageShift);
                _highAddressMask = Bits(9, 8);
                _highAddressShift = 42;
                _tableReserved = Bits(51, 50) | belowGranule;
                _leafReserved = belowGranule;
                break;
            default:
                _lowAddressMask = Bits(47, _pageShift);
                _tableReserved = Bits(51, 48) | belowGranule;
                _leafReserved = Bits(49, 48) | belowGranule;
                break;
        }
        _firstBlockLevel = (granule, outputAddress) switch
        {
            (Arm64Granule.Size4K, Arm64OutputAddressFormat.Lpa2) => 0,
            (Arm64Granule.Size4K, _) => 1,
            (Arm64Granule.Size16K, Arm64OutputAddressFormat.Lpa2) => 1,
            (Arm64Granule.Size64K, Arm64OutputAddressFormat.Lpa) => 1,
            _ => 2,
        };
        _names = new string[levels];
        for (var level = StartLevel; level <= 3; level++)
            _names[level - StartLevel] = NameOf(level);
    }

    /// <summary>Physical address of the first-level table.</summary>
    public ulong RootTable { get; }

    /// <summary>The translation granule.</summary>
    public Arm64Granule Granule { get; }

    /// <summary>The VA size in bits.</summary>
    public int VirtualAddressBits { get; }

    /// <summary>The half of the address space these tables translate.</summary>
    public Arm64AddressHalf Half { get; }

    /// <summary>How descriptors hold output addresses.</summary>
    public Arm64OutputAddressFormat OutputAddressFormat { get; }

    /// <summary>The widest physical address a descriptor may name.</summary>
    public int PhysicalAddressBits { get; }

    /// <summary>The Linux layout of valid-bit-clear entries.</summary>
    public Arm64LinuxPteFormat LinuxPteFormat { get; }

    /// <summary>The first lookup level (−1 to 2); the last is always 3.</summary>
    public int StartLevel { get; }

    /// <summary>Number of entries in the first-level table.</summary>
    public ulong RootEntries => _topIndexMask + 1;

    /// <summary>The Linux name of a level's entries ("PGD", "P4D", "PUD", "PMD", "PTE").</summary>
    public string LevelName(int level)
    {
        if (level < StartLevel || level > 3)
            throw new ArgumentOutOfRangeException(nameof(level), level, "not a lookup level of these tables");
        return _names[level - StartLevel];
    }

    /// <summary>Whether a block descriptor may appear at <paramref name="level"/> with this granule and output address
    /// format.</summary>
    public bool IsBlockLevel(int level) => level >= _firstBlockLevel && level <= 2 && level >= StartLevel;

    /// <summary>Bytes one entry of <paramref name="level"/> maps (a page at level 3, a block above).</summary>
    public ulong EntrySpan(int level) => 1UL << Shift(level);

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
        if (!InHalf(virtualAddress, out failure))
            return false;

        var table = RootTable;
        for (var level = StartLevel; level <= 3; level++)
        {
            var shift = Shift(level);
            var index = (virtualAddress >> shift) & (level == StartLevel ? _topIndexMask : _indexMask);
            var entryAddress = table + (index * 8);
            if (!TryReadEntry64(_memory, entryAddress, out var entry, out var readFailure))
            {
                failure = Fail(virtualAddress, $"cannot read {LevelName(level)} entry at physical {Hex(entryAddress)} ({readFailure})", level);
                return false;
            }

            var last = level == 3;
            if ((entry & Valid) == 0)
            {
                if (!IsPresentInvalid(entry, level))
                {
                    if (last && Half == Arm64AddressHalf.User && TryDecodeSwap(entry, out var swapType, out var swapOffset))
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
            }
            else if (!last && (entry & TableBit) != 0)
            {
                if ((entry & _tableReserved) != 0)
                {
                    failure = Fail(virtualAddress, $"reserved bits set in {LevelName(level)} entry {Hex(entry)}", level);
                    return false;
                }
                table = OutputAddress(entry);
                if (table >= _physicalLimit)
                {
                    failure = Fail(virtualAddress, $"{LevelName(level)} entry {Hex(entry)} points beyond the physical address width", level);
                    return false;
                }
                continue;
            }
            else if (last && (entry & TableBit) == 0)
            {
                failure = Fail(virtualAddress, $"reserved descriptor type 0b01 in {LevelName(level)} entry {Hex(entry)}", level);
                return false;
            }

            // A page (level 3), a block, or a Linux present-invalid entry shaped like one of them.
            if (!last && !IsBlockLevel(level))
            {
                failure = Fail(virtualAddress, $"reserved block descriptor in {LevelName(level)} entry {Hex(entry)}", level);
                return false;
            }
            var span = 1UL << shift;
            var reserved = entry & (_leafReserved | (last ? 0 : _lowAddressMask & (span - 1) & ~NonTransit));
            if (reserved != 0)
            {
                failure = Fail(virtualAddress, $"reserved bits set in {LevelName(level)} entry {Hex(entry)}", level);
                return false;
            }
            // nT (bit 16) may sit inside a block's address field; the block's own address bits are checked above.
            var frame = OutputAddress(entry) & ~(span - 1);
            if (span > _physicalLimit || frame > _physicalLimit - span)
            {
                failure = Fail(virtualAddress, $"{LevelName(level)} entry {Hex(entry)} maps beyond the physical address width", level);
                return false;
            }
            var offset = virtualAddress & (span - 1);
            physicalAddress = frame + offset;
            contiguous = span - offset;
            failure = null;
            return true;
        }

        failure = Fail(virtualAddress, "page walk ended without a leaf");
        return false;
    }

    private bool InHalf(ulong virtualAddress, [NotNullWhen(false)] out string? failure)
    {
        var upper = virtualAddress >> VirtualAddressBits;
        var allOnes = ulong.MaxValue >> VirtualAddressBits;
        var user = upper == 0;
        if (user ? Half == Arm64AddressHalf.User : upper == allOnes && Half == Arm64AddressHalf.Kernel)
        {
            failure = null;
            return true;
        }
        var top = VirtualAddressBits.ToString(CultureInfo.InvariantCulture);
        if (!user && upper != allOnes)
            failure = Fail(virtualAddress, $"in neither half of the {top}-bit address space (bits 63:{top} are neither all zeros nor all ones)");
        else if (user)
            failure = Fail(virtualAddress, $"a user (TTBR0) address, but these are kernel (TTBR1) tables (bits 63:{top} are all zeros)");
        else
            failure = Fail(virtualAddress, $"a kernel (TTBR1) address, but these are user (TTBR0) tables (bits 63:{top} are all ones)");
        return false;
    }

    private int Shift(int level) => _pageShift + (_bitsPerLevel * (3 - level));

    private ulong OutputAddress(ulong entry) =>
        (entry & _lowAddressMask) | ((entry & _highAddressMask) << _highAddressShift);

    private bool IsPresentInvalid(ulong entry, int level)
    {
        var marked = LinuxPteFormat == Arm64LinuxPteFormat.ProtNoneBit58
            ? (entry & ProtNoneBit58) != 0 || (level < 3 && (entry & PmdPresentInvalidBit59) != 0)
            : (entry & PresentInvalidNg) != 0;
        // Above the last level only a block can be present-invalid: a table-shaped entry is not followed.
        return marked && (level == 3 || (entry & TableBit) == 0);
    }

    private bool TryDecodeSwap(ulong entry, out int type, out ulong offset)
    {
        if (entry == 0)
        {
            type = 0;
            offset = 0;
            return false;
        }
        if (LinuxPteFormat == Arm64LinuxPteFormat.ProtNoneBit58)
        {
            type = (int)((entry >> 3) & 31);
            offset = (entry >> 8) & SwapOffsetMask;
        }
        else
        {
            type = (int)((entry >> 6) & 31);
            offset = (entry >> 12) & SwapOffsetMask;
        }
        return true;
    }

    private string NameOf(int level) => level == StartLevel
        ? "PGD"
        : level switch { 3 => "PTE", 2 => "PMD", 1 => "PUD", _ => "P4D" };

    private static ulong Bits(int high, int low) => (ulong.MaxValue >> (63 - high)) & ~((1UL << low) - 1);
}
