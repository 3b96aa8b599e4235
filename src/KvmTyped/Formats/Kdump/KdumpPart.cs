namespace KvmTyped.Formats.Kdump;

/// <summary>One kdump file: its storage, headers, bitmaps and where its page descriptors start.</summary>
internal sealed class KdumpPart : IDisposable
{
    public const int DescriptorSize = 24;

    public KdumpPart(KdumpStorage storage)
    {
        Storage = storage;
        Header = KdumpHeader.Read(storage);
        Ram = new KdumpBitmap(storage, Header.Bitmap1Offset, Header.MaxMapnr, withRank: false, "RAM bitmap");
        Dumped = new KdumpBitmap(storage, Header.Bitmap2Offset, Header.MaxMapnr, withRank: true, "dump bitmap");
        RankBase = Dumped.Rank(Header.StartPfn);
        DescriptorCount = Dumped.Rank(Header.EndPfn) - RankBase;
        DescriptorsOffset = Header.DescriptorsOffset;
        // The first data block after the descriptors: makedumpfile and QEMU put the one zero page that every
        // zero-filled pfn shares there.
        SharedZeroPageOffset = DescriptorCount <= (ulong)(long.MaxValue / DescriptorSize) - (ulong)DescriptorsOffset / DescriptorSize
            ? DescriptorsOffset + (long)DescriptorCount * DescriptorSize
            : -1;
    }

    private const int BlockShift = 7;               // descriptors per cached block = 128 (3 KiB)
    private const int BlockSlots = 64;
    private readonly DescriptorBlock?[] _blocks = new DescriptorBlock?[BlockSlots];

    public KdumpStorage Storage { get; }

    /// <summary>Copies descriptor <paramref name="index"/> into <paramref name="destination"/> (24 bytes), through a
    /// small cache of descriptor blocks so that reading pages in order costs one file read per 128 pages; false
    /// when the descriptor lies past the end of the file.</summary>
    public bool TryReadDescriptor(ulong index, Span<byte> destination)
    {
        ulong block = index >> BlockShift;
        int slot = (int)(block & (BlockSlots - 1));
        var b = Volatile.Read(ref _blocks[slot]);
        if (b is null || b.Block != block)
        {
            b = LoadBlock(block);
            Volatile.Write(ref _blocks[slot], b);
        }
        int within = (int)(index & ((1UL << BlockShift) - 1));
        if (within >= b.Count)
            return false;
        b.Data.AsSpan(within * DescriptorSize, DescriptorSize).CopyTo(destination);
        return true;
    }

    private DescriptorBlock LoadBlock(ulong block)
    {
        ulong first = block << BlockShift;
        ulong count = Math.Min(1UL << BlockShift, DescriptorCount > first ? DescriptorCount - first : 0);
        long at = DescriptorsOffset + (long)first * DescriptorSize;
        // Only what the file holds: an incomplete dump may end inside the table.
        long available = Storage.Length - at;
        if (available < (long)count * DescriptorSize)
            count = available <= 0 ? 0 : (ulong)(available / DescriptorSize);
        var data = new byte[(int)count * DescriptorSize];
        while (count > 0 && !Storage.TryRead(at, data.AsSpan(0, (int)count * DescriptorSize)))
            count /= 2; // a hole in a flattened file: fall back to fewer descriptors
        return new DescriptorBlock(block, data, (int)count);
    }

    private sealed class DescriptorBlock(ulong block, byte[] data, int count)
    {
        public readonly ulong Block = block;
        public readonly byte[] Data = data;
        public readonly int Count = count;
    }

    public KdumpHeader Header { get; }

    public KdumpBitmap Ram { get; }

    public KdumpBitmap Dumped { get; }

    /// <summary>Set bits of the dump bitmap before <see cref="KdumpHeader.StartPfn"/>.</summary>
    public ulong RankBase { get; }

    /// <summary>Page descriptors this file holds (dumped pfns in its range).</summary>
    public ulong DescriptorCount { get; }

    public long DescriptorsOffset { get; }

    public long SharedZeroPageOffset { get; }

    public string Path => Storage.Path;

    public void Dispose() => Storage.Dispose();
}
