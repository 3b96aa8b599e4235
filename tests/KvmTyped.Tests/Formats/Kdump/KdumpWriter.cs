using System.Buffers.Binary;
using System.Text;
using KvmTyped.Formats.Compression;
using KvmTyped.Formats.Kdump;
using KvmTyped.Tests.Formats.Compression;

namespace KvmTyped.Tests.Formats.Kdump;

/// <summary>Writes synthetic kdump-compressed files the way makedumpfile lays them out (diskdump_mod.h), for
/// every header layout and version, each codec, shared zero pages, split sets, incomplete dumps and the
/// flattened stream. LZO pages come from the real lzop binary.</summary>
internal sealed class KdumpWriter
{
    public KdumpHeaderLayout Layout { get; init; } = KdumpHeaderLayout.Bits64;
    public int Version { get; init; } = 6;
    public bool BigEndian { get; init; }
    public int BlockSize { get; init; } = 4096;
    public ulong MaxMapnr { get; init; } = 64;
    public string Signature { get; init; } = "KDUMP   ";
    public string Machine { get; init; } = "x86_64";
    public string Release { get; init; } = "6.1.0-test";
    public ulong PhysBase { get; init; }
    public int DumpLevel { get; init; } = 31;
    public int CpuCount { get; init; } = 2;
    public uint ExtraStatus { get; init; }

    /// <summary>Dumped pages, by pfn.</summary>
    public SortedDictionary<ulong, byte[]> Pages { get; } = new();

    /// <summary>Pfns that are RAM but excluded; everything else not in <see cref="Pages"/> is not RAM.</summary>
    public HashSet<ulong> Excluded { get; } = [];

    /// <summary>How each page is stored (default raw). Pages that do not shrink are stored raw, as makedumpfile does.</summary>
    public Func<ulong, PageCodec> CodecOf { get; init; } = _ => PageCodec.Raw;

    /// <summary>Write LZO pages with the tests' run-length LZO1X encoder (no lzop needed) instead of lzop.</summary>
    public bool LzoRunLength { get; init; }

    /// <summary>Point every all-zero page at one shared zero block right after the descriptors.</summary>
    public bool ShareZeroPage { get; init; } = true;

    public byte[]? VmcoreInfo { get; init; }
    public byte[]? Notes { get; init; }
    public byte[]? EraseInfo { get; init; }

    /// <summary>For a split file: the pfn range it holds.</summary>
    public (ulong Start, ulong End)? Split { get; init; }

    /// <summary>Mark incomplete and give descriptors from this index on offset 0 (never written).</summary>
    public int? IncompleteAfter { get; init; }

    /// <summary>Where things landed in the last <see cref="Build"/>, for tests that damage them.</summary>
    public long DescriptorsOffset { get; private set; }
    public long Bitmap1Offset { get; private set; }
    public long Bitmap2Offset { get; private set; }
    public long DataOffset { get; private set; }
    public Dictionary<ulong, (long Offset, int Size, PageCodec Codec)> Placed { get; } = new();

    private uint CodecFlag(PageCodec c) => c switch
    {
        PageCodec.Zlib => 1, PageCodec.Lzo => 2, PageCodec.Snappy => 4, PageCodec.Zstd => 0x20, _ => 0,
    };

    public byte[] Build()
    {
        int bs = BlockSize;
        bool b32 = Layout == KdumpHeaderLayout.Bits32;
        ulong bitmapBytesNeeded = (MaxMapnr + 7) / 8;
        long bitmapBlocksHalf = Math.Max(1, (long)((bitmapBytesNeeded + (ulong)bs - 1) / (ulong)bs));
        long bitmapBlocks = 2 * bitmapBlocksHalf;

        // Sub-header block(s): sub-header, then notes, VMCOREINFO, eraseinfo.
        var sub = new MemoryStream();
        sub.Write(new byte[b32 ? 80 : 104]);
        long notesAt = 0, vmciAt = 0, eraseAt = 0;
        if (Notes is not null) { notesAt = bs + sub.Length; sub.Write(Notes); }
        if (VmcoreInfo is not null) { vmciAt = bs + sub.Length; sub.Write(VmcoreInfo); }
        if (EraseInfo is not null) { eraseAt = bs + sub.Length; sub.Write(EraseInfo); }
        int subBlocks = (int)((sub.Length + bs - 1) / bs);

        var file = new MemoryStream();
        var header = new byte[bs];
        var subBlock = new byte[subBlocks * bs];
        sub.ToArray().CopyTo(subBlock, 0);
        var bitmap1 = new byte[bitmapBlocksHalf * bs];
        var bitmap2 = new byte[bitmapBlocksHalf * bs];
        foreach (var pfn in Pages.Keys.Concat(Excluded))
            bitmap1[pfn / 8] |= (byte)(1 << (int)(pfn % 8));
        foreach (var pfn in Pages.Keys)
            bitmap2[pfn / 8] |= (byte)(1 << (int)(pfn % 8));

        ulong start = Split?.Start ?? 0, end = Split?.End ?? MaxMapnr;
        var mine = Pages.Where(p => p.Key >= start && p.Key < end).ToList();
        Bitmap1Offset = (1L + subBlocks) * bs;
        Bitmap2Offset = Bitmap1Offset + bitmap1.Length;
        DescriptorsOffset = (1L + subBlocks + bitmapBlocks) * bs;
        DataOffset = DescriptorsOffset + 24L * mine.Count;
        var descriptors = new byte[24 * mine.Count];
        var data = new MemoryStream();
        long zeroAt = -1;
        bool anyZero = ShareZeroPage && mine.Any(p => p.Value.All(b => b == 0));
        if (anyZero)
        {
            zeroAt = DataOffset;
            data.Write(new byte[bs]);
        }
        uint usedFlags = 0;
        for (int i = 0; i < mine.Count; i++)
        {
            var (pfn, page) = (mine[i].Key, mine[i].Value);
            long offset;
            int size;
            var codec = CodecOf(pfn);
            if (anyZero && page.All(b => b == 0))
            {
                (offset, size, codec) = (zeroAt, bs, PageCodec.Raw);
            }
            else
            {
                byte[]? c = codec == PageCodec.Raw ? null
                    : codec == PageCodec.Lzo && LzoRunLength ? Lzo1xTests.RunLengthEncode(page)
                    : TryCompress(codec, page);
                if (c is null || c.Length >= bs)
                {
                    c = page;
                    codec = PageCodec.Raw;
                }
                offset = DataOffset + data.Length;
                size = c.Length;
                data.Write(c);
            }
            usedFlags |= CodecFlag(codec);
            Placed[pfn] = (offset, size, codec);
            var d = descriptors.AsSpan(i * 24, 24);
            bool written = IncompleteAfter is null || i < IncompleteAfter;
            I64(d, written ? offset : 0);
            U32(d[8..], (uint)size);
            U32(d[12..], CodecFlag(codec));
            I64(d[16..], 0);
        }

        // disk_dump_header.
        var h = header.AsSpan();
        Encoding.ASCII.GetBytes(Signature.PadRight(8)[..8]).CopyTo(h);
        U32(h[8..], (uint)Version);
        string[] uts = ["Linux", "synthetic", Release, "#1 SMP", Machine, "(none)"];
        for (int i = 0; i < 6; i++)
            Encoding.ASCII.GetBytes(uts[i]).CopyTo(h[(12 + 65 * i)..]);
        int o = b32 ? 0 : 12;
        if (b32) { U32(h[404..], 1_700_000_000); U32(h[408..], 123); }
        else { U64(h[408..], 1_700_000_000); U64(h[416..], 123); }
        uint status = usedFlags | ExtraStatus | (IncompleteAfter is null ? 0u : KdumpHeader.StatusIncomplete);
        U32(h[(412 + o)..], status);
        U32(h[(416 + o)..], (uint)bs);
        U32(h[(420 + o)..], (uint)subBlocks);
        U32(h[(424 + o)..], (uint)bitmapBlocks);
        U32(h[(428 + o)..], (uint)Math.Min(MaxMapnr, uint.MaxValue));
        U32(h[(432 + o)..], (uint)Pages.Count);
        U32(h[(448 + o)..], (uint)CpuCount);

        // kdump_sub_header.
        var s = subBlock.AsSpan();
        Word(s, 0, PhysBase);
        U32(s[(b32 ? 4 : 8)..], (uint)DumpLevel);
        if (Version >= 2)
        {
            U32(s[(b32 ? 8 : 12)..], Split is null ? 0u : 1u);
            Word(s, b32 ? 12 : 16, Split is null ? 0 : start);
            Word(s, b32 ? 16 : 24, Split is null ? 0 : end);
        }
        if (Version >= 3 && VmcoreInfo is not null)
        {
            U64(s[(b32 ? 20 : 32)..], (ulong)vmciAt);
            Word(s, b32 ? 28 : 40, (ulong)VmcoreInfo.Length);
        }
        if (Version >= 4 && Notes is not null)
        {
            U64(s[(b32 ? 32 : 48)..], (ulong)notesAt);
            Word(s, b32 ? 40 : 56, (ulong)Notes.Length);
        }
        if (Version >= 5 && EraseInfo is not null)
        {
            U64(s[(b32 ? 44 : 64)..], (ulong)eraseAt);
            Word(s, b32 ? 52 : 72, (ulong)EraseInfo.Length);
        }
        if (Version >= 6)
        {
            U64(s[(b32 ? 56 : 80)..], Split is null ? 0 : start);
            U64(s[(b32 ? 64 : 88)..], Split is null ? 0 : end);
            U64(s[(b32 ? 72 : 96)..], MaxMapnr);
        }

        file.Write(header);
        file.Write(subBlock);
        file.Write(bitmap1);
        file.Write(bitmap2);
        file.Write(descriptors);
        file.Write(data.ToArray());
        return file.ToArray();

        void Word(Span<byte> b, int at, ulong v)
        {
            if (b32) U32(b[at..], (uint)v);
            else U64(b[at..], v);
        }
    }

    private static byte[]? TryCompress(PageCodec codec, byte[] page) =>
        codec == PageCodec.Lzo ? Lzop.CompressPage(page) : PageCompressionTests.Compress(codec, page);

    private void U32(Span<byte> b, uint v)
    {
        if (BigEndian) BinaryPrimitives.WriteUInt32BigEndian(b, v);
        else BinaryPrimitives.WriteUInt32LittleEndian(b, v);
    }

    private void U64(Span<byte> b, ulong v)
    {
        if (BigEndian) BinaryPrimitives.WriteUInt64BigEndian(b, v);
        else BinaryPrimitives.WriteUInt64LittleEndian(b, v);
    }

    private void I64(Span<byte> b, long v) => U64(b, (ulong)v);

    /// <summary>makedumpfile's flattened stream of <paramref name="plain"/>: records of at most
    /// <paramref name="recordSize"/> bytes, optionally shuffled, optionally preceded by garbage records that
    /// later records overwrite.</summary>
    public static byte[] Flatten(byte[] plain, int recordSize, int? shuffleSeed = null, bool garbageFirst = false)
    {
        var records = new List<(long Offset, byte[] Data)>();
        for (long at = 0; at < plain.Length; at += recordSize)
            records.Add((at, plain.AsSpan((int)at, (int)Math.Min(recordSize, plain.Length - at)).ToArray()));
        if (shuffleSeed is int seed)
        {
            var rnd = new Random(seed);
            for (int i = records.Count - 1; i > 0; i--)
            {
                int j = rnd.Next(i + 1);
                (records[i], records[j]) = (records[j], records[i]);
            }
        }
        if (garbageFirst)
        {
            var rnd = new Random(99);
            var garbage = new List<(long, byte[])>();
            for (int i = 0; i < 20; i++)
            {
                var g = new byte[rnd.Next(1, 3 * recordSize)];
                rnd.NextBytes(g);
                garbage.Add((rnd.Next(0, Math.Max(1, plain.Length - g.Length)), g));
            }
            records.InsertRange(0, garbage);
        }
        var ms = new MemoryStream();
        var head = new byte[4096];
        "makedumpfile"u8.CopyTo(head);
        BinaryPrimitives.WriteInt64BigEndian(head.AsSpan(16), 1);
        BinaryPrimitives.WriteInt64BigEndian(head.AsSpan(24), 1);
        ms.Write(head);
        var rec = new byte[16];
        foreach (var (offset, data) in records)
        {
            BinaryPrimitives.WriteInt64BigEndian(rec, offset);
            BinaryPrimitives.WriteInt64BigEndian(rec.AsSpan(8), data.Length);
            ms.Write(rec);
            ms.Write(data);
        }
        BinaryPrimitives.WriteInt64BigEndian(rec, -1);
        BinaryPrimitives.WriteInt64BigEndian(rec.AsSpan(8), 0);
        ms.Write(rec);
        return ms.ToArray();
    }
}
