using System.Buffers.Binary;
using System.Text;

namespace KvmTyped.Formats.Kdump;

/// <summary>Which C layout a kdump header was written with: the word size of the program that wrote it.</summary>
/// <remarks>Not the kernel's data model: QEMU writes the 64-bit layout for 32-bit x86 guests.</remarks>
internal enum KdumpHeaderLayout
{
    /// <summary>32-bit <c>long</c> (makedumpfile built for i386).</summary>
    Bits32 = 32,

    /// <summary>64-bit <c>long</c>.</summary>
    Bits64 = 64,
}

/// <summary>Page codecs, as flags (the header's status bits and a scan of the page descriptors use these).</summary>
[Flags]
internal enum KdumpCodecs
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>Pages stored uncompressed.</summary>
    Raw = 1,

    /// <summary>zlib.</summary>
    Zlib = 2,

    /// <summary>LZO1X.</summary>
    Lzo = 4,

    /// <summary>Snappy.</summary>
    Snappy = 8,

    /// <summary>Zstandard.</summary>
    Zstd = 16,
}

/// <summary>A kdump file's <c>disk_dump_header</c> and <c>kdump_sub_header</c> (makedumpfile's diskdump_mod.h).</summary>
internal sealed class KdumpHeader
{
    /// <summary>status bit: pages may be zlib-compressed.</summary>
    public const uint StatusZlib = 0x1;

    /// <summary>status bit: pages may be LZO-compressed.</summary>
    public const uint StatusLzo = 0x2;

    /// <summary>status bit: pages may be snappy-compressed.</summary>
    public const uint StatusSnappy = 0x4;

    /// <summary>status bit: the dump is incomplete (writing stopped early, e.g. the disk filled).</summary>
    public const uint StatusIncomplete = 0x8;

    /// <summary>status bit: pages may be zstd-compressed.</summary>
    public const uint StatusZstd = 0x20;

    /// <summary>Largest number of page frames accepted (2^34: 64 TiB of 4 KiB pages). The open reads the dump bitmap
    /// whole to rank it, so this also bounds the work a hostile (e.g. sparse) file can ask for.</summary>
    internal const ulong MaxMapnrCap = 1UL << 34;

    internal KdumpHeader() { }

    /// <summary>"KDUMP   " or "DISKDUMP".</summary>
    public string Signature { get; private init; } = "";

    /// <summary>header_version (1–6 for makedumpfile; fields of later versions are absent in earlier ones).</summary>
    public int Version { get; private init; }

    /// <summary>The layout the header was read with.</summary>
    public KdumpHeaderLayout Layout { get; private init; }

    /// <summary>Whether the file's integers are big-endian (the dumped machine's byte order).</summary>
    public bool IsBigEndian { get; private init; }

    /// <summary>utsname.sysname (may be empty: QEMU leaves utsname blank).</summary>
    public string SysName { get; private init; } = "";

    /// <summary>utsname.nodename.</summary>
    public string NodeName { get; private init; } = "";

    /// <summary>utsname.release.</summary>
    public string Release { get; private init; } = "";

    /// <summary>utsname.version.</summary>
    public string KernelVersion { get; private init; } = "";

    /// <summary>utsname.machine, e.g. "x86_64", "i686" (the best data-model evidence the header has).</summary>
    public string Machine { get; private init; } = "";

    /// <summary>utsname.domainname.</summary>
    public string DomainName { get; private init; } = "";

    /// <summary>timestamp.tv_sec: when the dump was taken.</summary>
    public long TimestampSeconds { get; private init; }

    /// <summary>timestamp.tv_usec.</summary>
    public long TimestampMicroseconds { get; private init; }

    /// <summary>status flags (<see cref="StatusZlib"/> …).</summary>
    public uint Status { get; private init; }

    /// <summary>Whether <see cref="StatusIncomplete"/> is set.</summary>
    public bool IsIncomplete => (Status & StatusIncomplete) != 0;

    /// <summary>block_size: the page size, in bytes.</summary>
    public int BlockSize { get; private init; }

    /// <summary>sub_hdr_size, in blocks.</summary>
    public int SubHeaderBlocks { get; private init; }

    /// <summary>bitmap_blocks: both bitmaps together, in blocks.</summary>
    public long BitmapBlocks { get; private init; }

    /// <summary>The 32-bit max_mapnr field.</summary>
    public uint MaxMapnr32 { get; private init; }

    /// <summary>Number of page frames the bitmaps describe: max_mapnr_64 from version 6 on (when set), else max_mapnr.</summary>
    public ulong MaxMapnr { get; private init; }

    /// <summary>total_ram_blocks.</summary>
    public uint TotalRamBlocks { get; private init; }

    /// <summary>device_blocks.</summary>
    public uint DeviceBlocks { get; private init; }

    /// <summary>written_blocks.</summary>
    public uint WrittenBlocks { get; private init; }

    /// <summary>current_cpu: the CPU that took the dump.</summary>
    public uint CurrentCpu { get; private init; }

    /// <summary>nr_cpus.</summary>
    public int CpuCount { get; private init; }

    /// <summary>Whether a kdump_sub_header is present (signature "KDUMP   ").</summary>
    public bool HasSubHeader { get; private init; }

    /// <summary>phys_base (a word of the header layout; under x86-64 KASLR it reads as a negative number).</summary>
    public ulong PhysBase { get; private init; }

    /// <summary>dump_level (makedumpfile -d).</summary>
    public int DumpLevel { get; private init; }

    /// <summary>split: whether this file is one of a split set (version 2 on).</summary>
    public bool IsSplit { get; private init; }

    /// <summary>First pfn this file holds: start_pfn_64 from version 6 on, else start_pfn; 0 unless split.</summary>
    public ulong StartPfn { get; private init; }

    /// <summary>One past the last pfn this file holds; max_mapnr unless split.</summary>
    public ulong EndPfn { get; private init; }

    /// <summary>offset_vmcoreinfo (version 3 on; 0 = none).</summary>
    public long OffsetVmcoreInfo { get; private init; }

    /// <summary>size_vmcoreinfo.</summary>
    public ulong SizeVmcoreInfo { get; private init; }

    /// <summary>offset_note: the crashed kernel's ELF notes (version 4 on; 0 = none).</summary>
    public long OffsetNote { get; private init; }

    /// <summary>size_note.</summary>
    public ulong SizeNote { get; private init; }

    /// <summary>offset_eraseinfo (version 5 on; 0 = none).</summary>
    public long OffsetEraseInfo { get; private init; }

    /// <summary>size_eraseinfo.</summary>
    public ulong SizeEraseInfo { get; private init; }

    /// <summary>Plain-file offset of the RAM bitmap (bitmap 1).</summary>
    public long Bitmap1Offset => (1L + SubHeaderBlocks) * BlockSize;

    /// <summary>Bytes in each of the two bitmaps.</summary>
    public long BitmapBytes => BitmapBlocks * BlockSize / 2;

    /// <summary>Plain-file offset of the dump bitmap (bitmap 2).</summary>
    public long Bitmap2Offset => Bitmap1Offset + BitmapBytes;

    /// <summary>Plain-file offset of the first page descriptor.</summary>
    public long DescriptorsOffset => (1L + SubHeaderBlocks + BitmapBlocks) * BlockSize;

    /// <summary>The codecs the status flags declare (raw pages may occur with any of them).</summary>
    public KdumpCodecs DeclaredCodecs =>
        ((Status & StatusZlib) != 0 ? KdumpCodecs.Zlib : 0) | ((Status & StatusLzo) != 0 ? KdumpCodecs.Lzo : 0) |
        ((Status & StatusSnappy) != 0 ? KdumpCodecs.Snappy : 0) | ((Status & StatusZstd) != 0 ? KdumpCodecs.Zstd : 0);

    /// <summary>Size of the 32-bit disk_dump_header.</summary>
    internal const int Size32 = 452;

    /// <summary>Size of the 64-bit disk_dump_header.</summary>
    internal const int Size64 = 464;

    private const int UtsLength = 65;

    // makedumpfile has reached version 6; anything beyond a few hundred is a damaged or foreign file.
    private const int MaxVersion = 1024;

    /// <summary>Whether <paramref name="first"/> starts with a kdump signature.</summary>
    internal static bool HasSignature(ReadOnlySpan<byte> first) =>
        first.StartsWith("KDUMP   "u8) || first.StartsWith("DISKDUMP"u8);

    /// <summary>Reads and checks the headers through <paramref name="storage"/>.</summary>
    /// <exception cref="KvmFormatException">No layout gives a consistent header, or the sub-header is damaged.</exception>
    internal static KdumpHeader Read(KdumpStorage storage)
    {
        var path = storage.Path;
        long length = storage.Length;
        var hdr = new byte[Size64];
        if (length < Size32)
            throw new KvmFormatException(path, 0, $"disk_dump_header is truncated: file has {length} bytes, the header needs {Size32}");
        storage.ReadOrThrow(0, hdr.AsSpan(0, (int)Math.Min(Size64, length)), "disk_dump_header");
        if (!HasSignature(hdr))
            throw new KvmFormatException(path, 0, "no \"KDUMP   \" or \"DISKDUMP\" signature");

        int leVersion = BinaryPrimitives.ReadInt32LittleEndian(hdr.AsSpan(8));
        int beVersion = BinaryPrimitives.ReadInt32BigEndian(hdr.AsSpan(8));
        bool big;
        if (leVersion is >= 0 and <= MaxVersion)
            big = false;
        else if (beVersion is >= 0 and <= MaxVersion)
            big = true;
        else
            throw new KvmFormatException(path, 8, $"header_version 0x{leVersion:x} is not plausible in either byte order");

        string? why32 = null, why64;
        KdumpHeader? h = null;
        if (length >= Size32)
            h = TryLayout(hdr, KdumpHeaderLayout.Bits32, big, length, storage.BackedLength, out why32);
        if (h is null)
        {
            if (length < Size64)
                why64 = $"file has {length} bytes, the 64-bit header needs {Size64}";
            else
                h = TryLayout(hdr, KdumpHeaderLayout.Bits64, big, length, storage.BackedLength, out why64);
            if (h is null)
                throw new KvmFormatException(path, 0, $"disk_dump_header is not consistent in the 32-bit layout ({why32}) nor in the 64-bit layout ({why64})");
        }
        return h.WithSubHeader(storage);
    }

    private static KdumpHeader? TryLayout(byte[] b, KdumpHeaderLayout layout, bool big, long fileLength, long backedLength, out string? why)
    {
        int o = layout == KdumpHeaderLayout.Bits32 ? 0 : 12;
        int word = layout == KdumpHeaderLayout.Bits32 ? 4 : 8;
        uint U32(int at) => big ? BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(at)) : BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at));
        long Word(int at) => word == 4 ? (int)U32(at) : (long)(big ? BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(at)) : BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(at)));

        int tsAt = layout == KdumpHeaderLayout.Bits32 ? 404 : 408;
        uint status = U32(412 + o);
        uint blockSize = U32(416 + o);
        int subHdr = (int)U32(420 + o);
        int bitmapBlocks = (int)U32(424 + o);
        uint maxMapnr = U32(428 + o);

        why = null;
        if (blockSize < 4096 || blockSize > 65536 || (blockSize & (blockSize - 1)) != 0)
            why = $"block_size {blockSize} is not a power of two in 4096..65536";
        else if (subHdr < 1 || (long)subHdr > fileLength / blockSize)
            why = $"sub_hdr_size {subHdr} blocks does not fit a {fileLength}-byte file";
        else if (bitmapBlocks < 2 || (long)bitmapBlocks > fileLength / blockSize)
            why = $"bitmap_blocks {bitmapBlocks} does not fit a {fileLength}-byte file";
        else if ((1L + subHdr + bitmapBlocks) * blockSize > fileLength)
            why = $"header, sub-header and bitmaps ({1L + subHdr + bitmapBlocks} blocks of {blockSize}) pass the end of the {fileLength}-byte file";
        else if ((long)bitmapBlocks * blockSize > backedLength)
            why = $"bitmaps ({bitmapBlocks} blocks of {blockSize}) are larger than the {backedLength} bytes the file holds";
        else if ((ulong)bitmapBlocks * (ulong)blockSize / 2 * 8 > MaxMapnrCap * 2)
            why = $"bitmaps of {bitmapBlocks} blocks of {blockSize} describe more than {MaxMapnrCap} page frames (64 TiB of 4 KiB pages)";
        else if ((ulong)maxMapnr > (ulong)bitmapBlocks * blockSize / 2 * 8)
            why = $"max_mapnr {maxMapnr} needs more bits than the bitmaps hold ({(long)bitmapBlocks * blockSize / 2 * 8})";
        if (why is not null)
            return null;

        return new KdumpHeader
        {
            Signature = Encoding.ASCII.GetString(b, 0, 8),
            Version = big ? BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(8)) : BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(8)),
            Layout = layout,
            IsBigEndian = big,
            SysName = Uts(b, 0),
            NodeName = Uts(b, 1),
            Release = Uts(b, 2),
            KernelVersion = Uts(b, 3),
            Machine = Uts(b, 4),
            DomainName = Uts(b, 5),
            TimestampSeconds = Word(tsAt),
            TimestampMicroseconds = Word(tsAt + word),
            Status = status,
            BlockSize = (int)blockSize,
            SubHeaderBlocks = subHdr,
            BitmapBlocks = bitmapBlocks,
            MaxMapnr32 = maxMapnr,
            MaxMapnr = maxMapnr,
            TotalRamBlocks = U32(432 + o),
            DeviceBlocks = U32(436 + o),
            WrittenBlocks = U32(440 + o),
            CurrentCpu = U32(444 + o),
            CpuCount = (int)U32(448 + o),
            EndPfn = maxMapnr,
        };
    }

    private static string Uts(ReadOnlySpan<byte> b, int index)
    {
        var field = b.Slice(12 + index * UtsLength, UtsLength);
        int nul = field.IndexOf((byte)0);
        if (nul >= 0)
            field = field[..nul];
        return Encoding.Latin1.GetString(field);
    }

    // kdump_sub_header field offsets, 32-bit / 64-bit layout (FORMATS.md; i386 aligns 8-byte fields to 4).
    private KdumpHeader WithSubHeader(KdumpStorage storage)
    {
        var path = storage.Path;
        bool b32 = Layout == KdumpHeaderLayout.Bits32;
        int subSize = b32 ? 80 : 104;
        long subAt = BlockSize;
        if (!Signature.StartsWith("KDUMP", StringComparison.Ordinal))
            return this;
        var s = new byte[104];
        storage.ReadOrThrow(subAt, s.AsSpan(0, subSize), "kdump_sub_header");
        bool big = IsBigEndian;
        uint U32(int at) => big ? BinaryPrimitives.ReadUInt32BigEndian(s.AsSpan(at)) : BinaryPrimitives.ReadUInt32LittleEndian(s.AsSpan(at));
        ulong U64(int at) => big ? BinaryPrimitives.ReadUInt64BigEndian(s.AsSpan(at)) : BinaryPrimitives.ReadUInt64LittleEndian(s.AsSpan(at));
        ulong Word(int at) => b32 ? U32(at) : U64(at);

        int v = Version;
        ulong physBase = Word(0);
        int dumpLevel = v >= 1 ? (int)U32(b32 ? 4 : 8) : 0;
        bool split = v >= 2 && U32(b32 ? 8 : 12) != 0;
        ulong start = v >= 2 ? Word(b32 ? 12 : 16) : 0;
        ulong end = v >= 2 ? Word(b32 ? 16 : 24) : 0;
        long offVmci = v >= 3 ? (long)U64(b32 ? 20 : 32) : 0;
        ulong sizeVmci = v >= 3 ? Word(b32 ? 28 : 40) : 0;
        long offNote = v >= 4 ? (long)U64(b32 ? 32 : 48) : 0;
        ulong sizeNote = v >= 4 ? Word(b32 ? 40 : 56) : 0;
        long offErase = v >= 5 ? (long)U64(b32 ? 44 : 64) : 0;
        ulong sizeErase = v >= 5 ? Word(b32 ? 52 : 72) : 0;
        ulong maxMapnr = MaxMapnr32;
        if (v >= 6)
        {
            ulong start64 = U64(b32 ? 56 : 80);
            ulong end64 = U64(b32 ? 64 : 88);
            ulong max64 = U64(b32 ? 72 : 96);
            if (max64 != 0)
                maxMapnr = max64;
            if (split && (start64 != 0 || end64 != 0))
            {
                start = start64;
                end = end64;
            }
        }

        long subField = b32 ? 72 : 96;
        if (maxMapnr > MaxMapnrCap || maxMapnr > ulong.MaxValue / (ulong)BlockSize)
            throw new KvmFormatException(path, subAt + subField, $"max_mapnr_64 {maxMapnr} is absurd");
        if (maxMapnr > (ulong)BitmapBytes * 8)
            throw new KvmFormatException(path, subAt + subField, $"max_mapnr_64 {maxMapnr} needs more bits than the bitmaps hold ({BitmapBytes * 8})");
        if (split)
        {
            // An empty range is legitimate: makedumpfile --split gives the surplus files nothing when few pages remain.
            if (start > end || end > maxMapnr)
                throw new KvmFormatException(path, subAt + (b32 ? 12 : 16), $"split file's pfn range [0x{start:x}, 0x{end:x}) is reversed or passes max_mapnr 0x{maxMapnr:x}");
        }
        else
        {
            start = 0;
            end = maxMapnr;
        }
        CheckRange(path, subAt + (b32 ? 20 : 32), "vmcoreinfo", offVmci, sizeVmci, storage.Length);
        CheckRange(path, subAt + (b32 ? 32 : 48), "notes", offNote, sizeNote, storage.Length);
        // eraseinfo is written after the pages: an incomplete (cut-short) dump may not have it.
        if (IsIncomplete && (offErase < 0 || offErase > storage.Length || sizeErase > (ulong)(storage.Length - offErase)))
            (offErase, sizeErase) = (0, 0);
        CheckRange(path, subAt + (b32 ? 44 : 64), "eraseinfo", offErase, sizeErase, storage.Length);

        return new KdumpHeader
        {
            Signature = Signature, Version = Version, Layout = Layout, IsBigEndian = IsBigEndian,
            SysName = SysName, NodeName = NodeName, Release = Release, KernelVersion = KernelVersion,
            Machine = Machine, DomainName = DomainName, TimestampSeconds = TimestampSeconds,
            TimestampMicroseconds = TimestampMicroseconds, Status = Status, BlockSize = BlockSize,
            SubHeaderBlocks = SubHeaderBlocks, BitmapBlocks = BitmapBlocks, MaxMapnr32 = MaxMapnr32,
            TotalRamBlocks = TotalRamBlocks, DeviceBlocks = DeviceBlocks, WrittenBlocks = WrittenBlocks,
            CurrentCpu = CurrentCpu, CpuCount = CpuCount,
            HasSubHeader = true, MaxMapnr = maxMapnr, PhysBase = physBase, DumpLevel = dumpLevel, IsSplit = split,
            StartPfn = start, EndPfn = end, OffsetVmcoreInfo = offVmci, SizeVmcoreInfo = sizeVmci,
            OffsetNote = offNote, SizeNote = sizeNote, OffsetEraseInfo = offErase, SizeEraseInfo = sizeErase,
        };
    }

    private static void CheckRange(string path, long fieldAt, string what, long offset, ulong size, long length)
    {
        if (offset == 0 && size == 0)
            return;
        if (offset < 0 || offset > length || size > (ulong)(length - offset))
            throw new KvmFormatException(path, fieldAt, $"{what} at offset {offset} with size {size} passes the end of the {length}-byte file");
    }
}
