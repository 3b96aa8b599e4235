using System.Diagnostics.CodeAnalysis;
using static KvmTyped.Translation.PageTableWalk;

namespace KvmTyped.Translation;

/// <summary>An offset mapping of one virtual range, physical = virtual − <see cref="VirtualStart"/> +
/// <see cref="PhysicalStart"/>, with an optional address space that handles every address outside the range.</summary>
/// <remarks>
/// Linux maps its image this way: on x86-64 the kernel text mapping, physical = virtual − __START_KERNEL_map
/// (0xffffffff80000000) + phys_base; on i386 the low-memory direct map, physical = virtual − PAGE_OFFSET. Chaining
/// a page-table walk as the fallback gives "the text mapping first, else the page tables".
/// </remarks>
internal sealed class LinearAddressSpace : IAddressSpace
{
    /// <summary>Creates the mapping.</summary>
    /// <param name="virtualStart">First virtual address of the range.</param>
    /// <param name="length">Length of the range in bytes (at least 1).</param>
    /// <param name="physicalStart">The physical address <paramref name="virtualStart"/> maps to.</param>
    /// <param name="fallback">Where addresses outside the range go, or null to fail them.</param>
    /// <remarks>The range is whole 4 KiB pages (start, length and physical start are multiples of 4096), so a page
    /// is either wholly in it or wholly outside, as <see cref="TranslationCache"/> assumes.</remarks>
    public LinearAddressSpace(ulong virtualStart, ulong length, ulong physicalStart, IAddressSpace? fallback = null)
    {
        if (length == 0 || virtualStart + (length - 1) < virtualStart)
            throw new ArgumentOutOfRangeException(nameof(length), length, "the range must be non-empty and must not wrap");
        if (((virtualStart | length | physicalStart) & 0xfff) != 0)
            throw new ArgumentException("the linear range must be whole 4 KiB pages");
        VirtualStart = virtualStart;
        Length = length;
        PhysicalStart = physicalStart;
        Fallback = fallback;
    }

    /// <summary>First virtual address of the range.</summary>
    public ulong VirtualStart { get; }

    /// <summary>Length of the range in bytes.</summary>
    public ulong Length { get; }

    /// <summary>The physical address <see cref="VirtualStart"/> maps to.</summary>
    public ulong PhysicalStart { get; }

    /// <summary>Where addresses outside the range go, or null.</summary>
    public IAddressSpace? Fallback { get; }

    /// <inheritdoc />
    public bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous,
        [NotNullWhen(false)] out string? failure)
    {
        var offset = virtualAddress - VirtualStart;
        if (virtualAddress >= VirtualStart && offset < Length)
        {
            physicalAddress = PhysicalStart + offset;
            contiguous = Length - offset;
            failure = null;
            return true;
        }
        if (Fallback is not null)
            return Fallback.TryTranslate(virtualAddress, out physicalAddress, out contiguous, out failure);
        physicalAddress = 0;
        contiguous = 0;
        failure = Fail(virtualAddress, $"outside the linear mapping {Hex(VirtualStart)}-{Hex(VirtualStart + (Length - 1))}");
        return false;
    }
}
