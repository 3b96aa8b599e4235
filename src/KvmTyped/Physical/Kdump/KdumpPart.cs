namespace KvmTyped.Physical.Kdump;

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

    public KdumpStorage Storage { get; }

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
