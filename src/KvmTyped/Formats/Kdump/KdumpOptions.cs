namespace KvmTyped.Formats.Kdump;

/// <summary>How a kdump file is read.</summary>
internal sealed record KdumpOptions
{
    /// <summary>Defaults: excluded pages fail, 1024 pages cached.</summary>
    public static KdumpOptions Default { get; } = new();

    /// <summary>Read pages that makedumpfile excluded (zero, cache, user, free pages) as zeros instead of failing
    /// with "page excluded from dump". Pages that are not RAM still fail.</summary>
    public bool ZeroFillExcluded { get; init; }

    /// <summary>Decoded pages kept (rounded up to a power of two, at most <see cref="PageArena.MaxBytes"/> of them).</summary>
    public int CachePages { get; init; } = 1024;
}
