using KvmTyped.Translation;

namespace KvmTyped.Tests.Translation;

/// <summary>The swap entry a walk reports for a page, in the shape the swap tests assert on.</summary>
internal static class SwapEntryExtensions
{
    /// <summary>The swap entry of the page holding <paramref name="virtualAddress"/>; false when the walk finds none
    /// (the page is mapped, its entry is empty, or a table above it is not present).</summary>
    public static bool TryGetSwapEntry(this IAddressSpace space, ulong virtualAddress, out int type, out ulong offset)
    {
        space.TryTranslate(virtualAddress, out _, out _, out _, out var swap);
        (type, offset) = swap is { } s ? (s.Type, s.Offset) : (0, 0UL);
        return swap is not null;
    }
}
