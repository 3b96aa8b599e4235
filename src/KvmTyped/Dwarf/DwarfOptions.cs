namespace KvmTyped.Dwarf;

/// <summary>How <see cref="DwarfTypeSource"/> loads types from DWARF.</summary>
internal sealed record DwarfOptions
{
    /// <summary>The defaults: cache on, in the default folder, bounded by <see cref="DwarfBtfCache.DefaultMaxBytes"/>.</summary>
    public static DwarfOptions Default { get; } = new();

    /// <summary>Neither read nor write the cache (also forced by the environment variable
    /// <see cref="DwarfBtfCache.NoCacheVariable"/>).</summary>
    public bool NoCache { get; init; }

    /// <summary>The cache folder; null for the default (<c>$XDG_CACHE_HOME/kvmtyped</c>, else <c>~/.cache/kvmtyped</c>).</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>The most bytes the cache's files may take together; the least recently used go first.</summary>
    public long MaxCacheBytes { get; init; } = DwarfBtfCache.DefaultMaxBytes;

    /// <summary>Threads used to skim the units; 0 for <see cref="DwarfToBtf.DefaultParallelism"/>.</summary>
    public int Parallelism { get; init; }
}
