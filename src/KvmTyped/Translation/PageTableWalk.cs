using System.Buffers.Binary;
using System.Globalization;
using KvmTyped.Formats;

namespace KvmTyped.Translation;

/// <summary>Pieces shared by the x86 page-table walkers: entry reads and failure texts.</summary>
internal static class PageTableWalk
{
    /// <summary>Present bit (all levels).</summary>
    public const ulong Present = 1UL << 0;

    /// <summary>Page-size bit in directory entries (PS): the entry maps a large page.</summary>
    public const ulong PageSize = 1UL << 7;

    /// <summary>Linux's _PAGE_PROTNONE (bit 8, the global bit reused): a PROT_NONE leaf is still "present" to Linux
    /// (pte_present), with its frame number inverted (L1TF mitigation, arch/x86/include/asm/pgtable-invert.h).</summary>
    public const ulong ProtNone = 1UL << 8;

    /// <summary>Bits 12..51: the frame address of a 64-bit entry (x86-64 and PAE), 52-bit physical addresses.</summary>
    public const ulong FrameMask52 = 0x000f_ffff_ffff_f000UL;

    public static string Hex(ulong value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);

    public static string Fail(ulong virtualAddress, string reason, int level) =>
        $"cannot translate {Hex(virtualAddress)}: {reason} at level {level.ToString(CultureInfo.InvariantCulture)}";

    public static string Fail(ulong virtualAddress, string reason) =>
        $"cannot translate {Hex(virtualAddress)}: {reason}";

    public static bool TryReadEntry64(IPhysicalMemory memory, ulong address, out ulong entry, out string? failure)
    {
        Span<byte> buffer = stackalloc byte[8];
        if (!memory.TryRead(address, buffer, out failure))
        {
            entry = 0;
            return false;
        }
        entry = BinaryPrimitives.ReadUInt64LittleEndian(buffer);
        return true;
    }

    public static bool TryReadEntry32(IPhysicalMemory memory, ulong address, out uint entry, out string? failure)
    {
        Span<byte> buffer = stackalloc byte[4];
        if (!memory.TryRead(address, buffer, out failure))
        {
            entry = 0;
            return false;
        }
        entry = BinaryPrimitives.ReadUInt32LittleEndian(buffer);
        return true;
    }

    /// <summary>Whether a 64-bit leaf entry is in memory by Linux's rule, and the frame it names.</summary>
    public static bool LeafFrame64(ulong entry, ulong frameMask, out ulong frame)
    {
        if ((entry & Present) != 0)
        {
            frame = entry & frameMask;
            return true;
        }
        if ((entry & ProtNone) != 0)
        {
            frame = ~entry & frameMask;
            return true;
        }
        frame = 0;
        return false;
    }

    /// <summary>Linux's _PAGE_KNL_ERRATUM_MASK (dirty and accessed, bits 6 and 5): pte_none ignores them, since some
    /// CPUs may set them in an entry that is otherwise empty.</summary>
    public const ulong KnlErratumMask = 0x60;

    /// <summary>The swap entry in a 64-bit leaf entry (x86-64, and x86 PAE since Linux 4.18): not present, not
    /// PROT_NONE and not empty; the type in bits 59–63, the offset inverted in bits 9–58 (L1TF mitigation, so the
    /// entry never names memory that exists).</summary>
    public static bool SwapEntry64(ulong entry, out int type, out ulong offset)
    {
        if ((entry & ~KnlErratumMask) == 0 || (entry & (Present | ProtNone)) != 0)
        {
            type = 0;
            offset = 0;
            return false;
        }
        type = (int)(entry >> 59);
        offset = (~entry << 5) >> 14;
        return true;
    }

    /// <summary>The swap entry in a 32-bit non-PAE leaf entry: not present, not PROT_NONE and not empty; the type in
    /// bits 1–5, the offset in bits 9–31 (no inversion without PAE).</summary>
    public static bool SwapEntry32(uint entry, out int type, out ulong offset)
    {
        if ((entry & ~(uint)KnlErratumMask) == 0 || (entry & (uint)(Present | ProtNone)) != 0)
        {
            type = 0;
            offset = 0;
            return false;
        }
        type = (int)((entry >> 1) & 31);
        offset = entry >> 9;
        return true;
    }

    /// <summary>The failure text of a swapped-out leaf entry.</summary>
    public static string Swapped(string levelName, ulong entry, int type, ulong offset) =>
        $"{levelName} entry {Hex(entry)} swapped out (swap type {type.ToString(CultureInfo.InvariantCulture)}, offset {Hex(offset)})";
}
