using System.Diagnostics.CodeAnalysis;

namespace KvmTyped.Translation;

/// <summary>A virtual address space: "translate V, or say why not".</summary>
internal interface IAddressSpace
{
    /// <summary>Translates a virtual address.</summary>
    /// <param name="virtualAddress">The address to translate.</param>
    /// <param name="physicalAddress">The physical address that backs it.</param>
    /// <param name="contiguous">How many bytes from <paramref name="virtualAddress"/> on are backed contiguously
    /// by the same mapping (at least 1; typically up to the end of the page).</param>
    /// <param name="failure">Why not, as "cannot translate 0x…: &lt;reason&gt;".</param>
    bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous,
        [NotNullWhen(false)] out string? failure);

    /// <summary>Translates a virtual address; when its page is swapped out (a page table's leaf entry holds a Linux
    /// swap entry), <paramref name="swap"/> says where it is in swap — found by the same walk that failed.</summary>
    bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous,
        [NotNullWhen(false)] out string? failure, out SwapEntry? swap)
    {
        swap = null;
        return TryTranslate(virtualAddress, out physicalAddress, out contiguous, out failure);
    }
}

/// <summary>Where Linux put a swapped-out page: the swap area's index (the kernel's swap type) and the page's index in
/// that area.</summary>
/// <param name="Type">The swap type.</param>
/// <param name="Offset">The page's offset, in pages.</param>
internal readonly record struct SwapEntry(int Type, ulong Offset);
