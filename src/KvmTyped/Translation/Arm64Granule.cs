namespace KvmTyped.Translation;

/// <summary>An aarch64 translation granule: the page size of a stage-1 regime (TCR_EL1.TG0/TG1), which also fixes the
/// size of every table (one granule) and the number of index bits per level (granule bits − 3).</summary>
/// <remarks>The values are the page shift, so <c>(int)granule</c> is log2 of the page size.</remarks>
internal enum Arm64Granule
{
    /// <summary>4 KiB pages, 512 entries per table, 9 index bits per level.</summary>
    Size4K = 12,

    /// <summary>16 KiB pages, 2048 entries per table, 11 index bits per level.</summary>
    Size16K = 14,

    /// <summary>64 KiB pages, 8192 entries per table, 13 index bits per level.</summary>
    Size64K = 16,
}
