namespace KvmTyped.Formats.Kdump;

/// <summary>How a kdump file is read.</summary>
internal sealed record KdumpOptions
{
    /// <summary>Defaults: excluded pages fail, 256 pages cached.</summary>
    public static KdumpOptions Default { get; } = new();

    /// <summary>Read pages that makedumpfile excluded (zero, cache, user, free pages) as zeros instead of failing
    /// with "page excluded from dump". Pages that are not RAM still fail.</summary>
    public bool ZeroFillExcluded { get; init; }

    /// <summary>Decoded pages kept (rounded up to a power of two, at most <see cref="PageArena.MaxBytes"/> of them).
    /// Reads of a few fields each (a task's) come back to the same page soon or not at all: 256 pages (1 MiB of 4 KiB
    /// pages) keep what ps reads of one task while the next is read, and touch little fresh memory (on the README's
    /// sample, ps took 29.8 ms with 1,024 pages cached and 28.3 ms with 64; on a 10,000-task kdump 180 and 130 ms,
    /// with 256).</summary>
    public int CachePages { get; init; } = 256;
}
