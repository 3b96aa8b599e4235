using System.Diagnostics.CodeAnalysis;
using System.Numerics;

namespace KvmTyped.Translation;

/// <summary>A bounded, thread-safe cache of successful translations in front of another address space.</summary>
/// <remarks>
/// Direct-mapped by 4 KiB virtual page: each slot holds one immutable (virtual page → physical page, bytes mapped
/// to the end of the mapping) record, published with a single reference write, so readers on other threads see a
/// whole record or none and a hit allocates nothing. Failures are never cached (a later read may succeed once the
/// caller supplies what was missing). The inner space must map whole 4 KiB pages, as page tables and
/// <see cref="LinearAddressSpace"/> do. Call <see cref="Clear"/> after writing page tables.
/// </remarks>
internal sealed class TranslationCache : IAddressSpace
{
    private const int PageShift = 12;
    private const ulong PageMask = (1UL << PageShift) - 1;

    private readonly IAddressSpace _inner;
    private readonly Slot?[] _slots;
    private readonly int _mask;
    private readonly int _shift;

    // Bumped by Clear: a slot from an older generation is never a hit, so a lookup that raced a Clear and
    // published its answer afterwards cannot serve a stale translation.
    private int _generation;

    /// <summary>Creates the cache.</summary>
    /// <param name="inner">The address space whose answers are cached.</param>
    /// <param name="slots">Number of pages remembered, a power of two between 16 and 2^22.</param>
    public TranslationCache(IAddressSpace inner, int slots = 8192)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (slots is < 16 or > (1 << 22) || !BitOperations.IsPow2(slots))
            throw new ArgumentOutOfRangeException(nameof(slots), slots, "a power of two between 16 and 2^22");
        _inner = inner;
        _slots = new Slot?[slots];
        _mask = slots - 1;
        _shift = BitOperations.Log2((uint)slots);
    }

    /// <summary>Number of slots.</summary>
    public int Capacity => _slots.Length;

    /// <inheritdoc />
    public bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous,
        [NotNullWhen(false)] out string? failure) =>
        TryTranslate(virtualAddress, out physicalAddress, out contiguous, out failure, out _);

    /// <inheritdoc />
    public bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous,
        [NotNullWhen(false)] out string? failure, out SwapEntry? swap)
    {
        swap = null;
        var page = virtualAddress >> PageShift;
        // Consecutive pages take consecutive slots; the bits above the index move whole regions by a pseudo-random
        // amount, so regions aligned alike (the direct map and the text mapping of the same memory) do not collide.
        var index = (int)(page + ((page >> _shift) * 0x9E37_79B1UL)) & _mask;
        var slot = Volatile.Read(ref _slots[index]);
        var offset = virtualAddress & PageMask;
        var generation = Volatile.Read(ref _generation);
        if (slot is not null && slot.VirtualPage == page && slot.Generation == generation)
        {
            physicalAddress = slot.PhysicalPage + offset;
            contiguous = slot.Mapped - offset;
            failure = null;
            return true;
        }

        if (!_inner.TryTranslate(virtualAddress, out physicalAddress, out contiguous, out failure, out swap))
            return false;
        // Bytes mapped from the page's start: the inner answer's run, measured back to the page boundary.
        var mapped = contiguous > ulong.MaxValue - offset ? ulong.MaxValue : contiguous + offset;
        if (physicalAddress >= offset)
            Volatile.Write(ref _slots[index], new Slot(page, physicalAddress - offset, mapped, generation));
        return true;
    }

    /// <summary>Forgets every cached translation.</summary>
    public void Clear()
    {
        Interlocked.Increment(ref _generation);
        for (var i = 0; i < _slots.Length; i++)
            Volatile.Write(ref _slots[i], null);
    }

    private sealed class Slot(ulong virtualPage, ulong physicalPage, ulong mapped, int generation)
    {
        public readonly int Generation = generation;
        public readonly ulong VirtualPage = virtualPage;
        public readonly ulong PhysicalPage = physicalPage;
        public readonly ulong Mapped = mapped;
    }
}
