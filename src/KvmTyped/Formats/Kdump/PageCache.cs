namespace KvmTyped.Formats.Kdump;

/// <summary>A bounded, thread-safe cache of decoded pages: a direct-mapped table of immutable entries.</summary>
/// <remarks>An entry is published only once its page is fully decoded, and never changed afterwards, so a
/// reader sees a whole page or none. Replacing a slot drops the old page to the garbage collector rather than
/// reusing its buffer, because another thread may still be copying from it.</remarks>
internal sealed class PageCache
{
    private readonly Entry?[] _slots;
    private readonly int _mask;
    private long _generation;

    public PageCache(int pages)
    {
        int size = 1;
        while (size < pages && size < (1 << 20))
            size <<= 1;
        _slots = new Entry?[size];
        _mask = size - 1;
    }

    /// <summary>Capacity in pages.</summary>
    public int Capacity => _slots.Length;

    /// <summary>Bumped by every invalidation; a page read from the file before a write must not be published
    /// after it.</summary>
    public long Generation => Volatile.Read(ref _generation);

    public byte[]? TryGet(ulong pfn)
    {
        var e = Volatile.Read(ref _slots[(int)pfn & _mask]);
        return e is not null && e.Pfn == pfn ? e.Data : null;
    }

    /// <summary>Publishes a decoded page that was read while <see cref="Generation"/> was <paramref name="generation"/>.</summary>
    public void Add(ulong pfn, byte[] data, long generation)
    {
        var entry = new Entry(pfn, data);
        ref var slot = ref _slots[(int)pfn & _mask];
        Volatile.Write(ref slot, entry);
        if (Generation != generation)
            Interlocked.CompareExchange(ref slot, null, entry);
    }

    /// <summary>Drops <paramref name="pfn"/> (after a write changed its bytes in the file).</summary>
    public void Invalidate(ulong pfn)
    {
        Interlocked.Increment(ref _generation);
        ref var slot = ref _slots[(int)pfn & _mask];
        var e = Volatile.Read(ref slot);
        if (e is not null && e.Pfn == pfn)
            Interlocked.CompareExchange(ref slot, null, e);
    }

    /// <summary>Drops everything.</summary>
    public void Clear()
    {
        Interlocked.Increment(ref _generation);
        Array.Clear(_slots);
    }

    private sealed class Entry(ulong pfn, byte[] data)
    {
        public readonly ulong Pfn = pfn;
        public readonly byte[] Data = data;
    }
}
