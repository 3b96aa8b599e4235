using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using KvmTyped.Formats.Compression;
using KvmTyped.IO;

namespace KvmTyped.Formats.Kdump;

/// <summary>A kdump-compressed dump (makedumpfile, QEMU dump-guest-memory kdump-*): plain or flattened, one file
/// or a split set, pages raw or compressed with zlib, LZO, snappy or zstd.</summary>
/// <remarks>
/// <para>Layout (makedumpfile's diskdump_mod.h): block 0 holds <c>disk_dump_header</c>, block 1 the
/// <c>kdump_sub_header</c>; then two bitmaps (pages that are RAM; pages that were dumped), then one 24-byte
/// <c>page_desc</c> per dumped page, then page data. A page's descriptor index is the number of dumped pages
/// before it in the file's pfn range.</para>
/// <para>Opening reads the headers, VMCOREINFO and notes, and streams the dump bitmap once to build a small
/// rank table; pages are read and decoded only when asked for, into a bounded cache shared by all threads.</para>
/// </remarks>
internal sealed class KdumpFile : IPhysicalMemory
{
    /// <summary>Largest ELF notes blob read (per-CPU registers of thousands of CPUs fit easily).</summary>
    public const int MaxNoteBytes = 64 << 20;

    private readonly KdumpPart[] _parts;
    private readonly KdumpPart[] _lookup;       // parts with a non-empty pfn range, in pfn order
    private readonly ulong[] _partStarts;
    private readonly PageArena _cache;
    private readonly KdumpOptions _options;
    private readonly int _pageShift;
    private readonly ulong _pageMask;
    private readonly Lazy<IReadOnlyList<PhysicalRange>> _ranges;
    private readonly object _writeLock = new();
    private int _disposed;

    private KdumpFile(KdumpPart[] parts, bool writable, KdumpOptions options)
    {
        _parts = parts;
        _lookup = parts.Where(p => p.Header.StartPfn < p.Header.EndPfn).ToArray();
        _partStarts = _lookup.Select(p => p.Header.StartPfn).ToArray();
        _options = options;
        IsWritable = writable;
        var h = parts[0].Header;
        PageSize = h.BlockSize;
        _pageShift = BitOperations.Log2((uint)h.BlockSize);
        _pageMask = (ulong)h.BlockSize - 1;
        _cache = new PageArena(Math.Max(1, options.CachePages), h.BlockSize);
        _ranges = new Lazy<IReadOnlyList<PhysicalRange>>(ComputeRanges, LazyThreadSafetyMode.ExecutionAndPublication);
        (VmcoreInfoBytes, NoteBytes) = ReadNotes(parts[0]);
        VmcoreInfo = VmcoreInfoBytes.Length > 0 ? VmcoreInfo.Parse(VmcoreInfoBytes.Span) : null;
        Truncation = parts.Select(FindTruncation).FirstOrDefault(t => t is not null);
    }

    /// <summary>How many descriptors, from the last one back, <see cref="FindTruncation"/> reads for the end of the data.</summary>
    internal const int TruncationProbeDescriptors = 1024;

    /// <summary>Why a file is shorter than its own tables say, or null when it is not: its page descriptor table runs past
    /// the end of the file, or its last pages' data does. makedumpfile and QEMU write page data in pfn order after the
    /// table, so the last descriptor holds the end of the data: it is read instead of the whole table, passing over (at
    /// most <see cref="TruncationProbeDescriptors"/> of) those that say nothing of the end, the shared zero page and the
    /// unwritten (offset 0) descriptors of an incomplete dump. One damaged descriptor elsewhere is not a truncation: it
    /// fails its own page only.</summary>
    private static string? FindTruncation(KdumpPart part)
    {
        long length = part.Storage.Length;
        if (part.DescriptorCount == 0)
            return null;
        ulong tableBytes = part.DescriptorCount * KdumpPart.DescriptorSize;
        if (part.DescriptorCount > (ulong)long.MaxValue / KdumpPart.DescriptorSize || (ulong)part.DescriptorsOffset + tableBytes > (ulong)length)
        {
            if (part.Header.IsIncomplete)
                return null;
            return $"{part.Path} is truncated: the file ends at byte {length}, but its {part.DescriptorCount} page descriptors alone run to byte {(ulong)part.DescriptorsOffset + tableBytes}";
        }
        bool big = part.Header.IsBigEndian;
        Span<byte> d = stackalloc byte[KdumpPart.DescriptorSize];
        long end = 0;
        ulong first = part.DescriptorCount > TruncationProbeDescriptors ? part.DescriptorCount - TruncationProbeDescriptors : 0;
        for (ulong i = part.DescriptorCount; i-- > first;)
        {
            if (!part.TryReadDescriptor(i, d))
                continue;
            long offset = big ? BinaryPrimitives.ReadInt64BigEndian(d) : BinaryPrimitives.ReadInt64LittleEndian(d);
            uint size = big ? BinaryPrimitives.ReadUInt32BigEndian(d[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(d[8..]);
            if (offset <= 0 || offset == part.SharedZeroPageOffset || size == 0 || offset > long.MaxValue - size)
                continue;
            end = offset + size;
            break;
        }
        return end > length
            ? $"{part.Path} is truncated: the file ends at byte {length}, but its last pages are stored up to byte {end}"
            : null;
    }

    /// <summary>Why the dump is shorter than its own tables say (<see cref="FindTruncation"/>), or null: pages stored past
    /// the end cannot be read, and a failure to read one names this first.</summary>
    public string? Truncation { get; }

    /// <inheritdoc/>
    public string FormatName => IsFlattened ? "kdump-compressed (flattened)" : "kdump-compressed";

    /// <summary>The file (the first file of a split set).</summary>
    public string Path => _parts[0].Path;

    /// <summary>Every file, in pfn order.</summary>
    public IReadOnlyList<string> Paths => _parts.Select(p => p.Path).ToArray();

    /// <summary>The headers of the (first) file.</summary>
    public KdumpHeader Header => _parts[0].Header;

    /// <summary>The headers of every file, in pfn order.</summary>
    public IReadOnlyList<KdumpHeader> Headers => _parts.Select(p => p.Header).ToArray();

    /// <summary>Whether the (first) file is makedumpfile's flattened stream.</summary>
    public bool IsFlattened => _parts[0].Storage.IsFlattened;

    /// <summary>Page size in bytes (block_size).</summary>
    public int PageSize { get; }

    /// <summary>Number of page frames described (max_mapnr).</summary>
    public ulong MaxMapnr => Header.MaxMapnr;

    /// <summary>Pages present in the dump (all files).</summary>
    public ulong DumpedPageCount
    {
        get
        {
            ulong n = 0;
            foreach (var p in _parts)
                n += p.DescriptorCount;
            return n;
        }
    }

    /// <summary>The VMCOREINFO text (at most <see cref="VmcoreInfo.MaxBytes"/>), from offset_vmcoreinfo or,
    /// failing that, the VMCOREINFO ELF note; empty when the dump has none.</summary>
    public ReadOnlyMemory<byte> VmcoreInfoBytes { get; }

    /// <summary>The parsed VMCOREINFO, or null.</summary>
    public VmcoreInfo? VmcoreInfo { get; }

    /// <summary>The crashed kernel's ELF notes (offset_note), or empty.</summary>
    public ReadOnlyMemory<byte> NoteBytes { get; }

    /// <summary>Whether the status flags mark the dump incomplete.</summary>
    public bool IsIncomplete => _parts.Any(p => p.Header.IsIncomplete);

    /// <summary>The options the file was opened with.</summary>
    public KdumpOptions Options => _options;

    /// <summary>The machine the dump describes, from utsname.machine; <see cref="KernelMachine.Unknown"/> when
    /// the header does not say (the header layout's word size is no evidence: QEMU writes the 64-bit layout for
    /// i386 guests).</summary>
    public KernelMachine Machine => MachineFromUts(Header.Machine);

    /// <summary>The kernel's data model as far as this file shows it: from utsname.machine, else from the width
    /// of VMCOREINFO's symbol addresses (a kernel address above 4 GiB means LP64); null when neither says.</summary>
    public DataModel? DataModelEvidence
    {
        get
        {
            var m = Machine.DataModel() ?? DataModelFromUts(Header.Machine);
            if (m is not null)
                return m;
            if (VmcoreInfo is { } vi)
            {
                foreach (var name in new[] { "swapper_pg_dir", "init_uts_ns", "_stext" })
                {
                    if (vi.Symbol(name) is ulong a)
                        return a > uint.MaxValue ? DataModel.LP64 : DataModel.ILP32;
                }
            }
            return null;
        }
    }

    /// <inheritdoc/>
    public IReadOnlyList<PhysicalRange> Ranges => _ranges.Value;

    /// <inheritdoc/>
    public bool IsWritable { get; }

    /// <summary>Whether <paramref name="firstBytes"/> (the start of a file) is a kdump-compressed file:
    /// "KDUMP   ", "DISKDUMP", or a makedumpfile flattened stream. For a flattened stream, when
    /// <paramref name="firstBytes"/> reaches its first record (4120 bytes or more) and that record starts the plain
    /// file, the plain file's signature decides (makedumpfile -E -F flattens an ELF core instead).</summary>
    public static bool IsKdump(ReadOnlySpan<byte> firstBytes)
    {
        if (KdumpHeader.HasSignature(firstBytes))
            return true;
        if (!FlattenedKdumpStorage.HasSignature(firstBytes))
            return false;
        const int record = FlattenedKdumpStorage.HeaderSize;
        if (firstBytes.Length < record + 16 + 8)
            return true;
        long offset = BinaryPrimitives.ReadInt64BigEndian(firstBytes[record..]);
        long size = BinaryPrimitives.ReadInt64BigEndian(firstBytes[(record + 8)..]);
        return offset != 0 || size < 8 || KdumpHeader.HasSignature(firstBytes[(record + 16)..]);
    }

    /// <summary>Opens one kdump file (plain or flattened).</summary>
    /// <param name="path">The file.</param>
    /// <param name="writable">Open read-write, so <see cref="Write"/> can change raw pages in the file.</param>
    /// <param name="options">Reading options, or null for <see cref="KdumpOptions.Default"/>.</param>
    /// <exception cref="KvmFormatException">The file is not a consistent kdump file.</exception>
    /// <exception cref="KvmOpenException">The file cannot be opened.</exception>
    public static KdumpFile Open(string path, bool writable = false, KdumpOptions? options = null) =>
        Open(RandomAccessFile.Open(path, writable), options);

    /// <summary>Reads a kdump file the caller has opened (plain or flattened), which the result then owns.</summary>
    /// <exception cref="KvmFormatException">The file is not a consistent kdump file.</exception>
    internal static KdumpFile Open(RandomAccessFile file, KdumpOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(file);
        var part = OpenPart(file);
        var writable = file.IsWritable;
        try
        {
            // A lone file of a split set reads what it holds; other pfns say they are in a file not opened.
            return new KdumpFile([part], writable, options ?? KdumpOptions.Default);
        }
        catch
        {
            part.Dispose();
            throw;
        }
    }

    /// <summary>Opens the files of a split set (makedumpfile --split) as one physical view. Each file holds the
    /// pages of its [start_pfn, end_pfn); the files must agree on page size and max_mapnr and not overlap.</summary>
    /// <exception cref="KvmFormatException">A file is damaged or the files do not form one set.</exception>
    /// <exception cref="KvmOpenException">A file cannot be opened.</exception>
    public static KdumpFile OpenSet(IReadOnlyList<string> paths, bool writable = false, KdumpOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        if (paths.Count == 0)
            throw new KvmOpenException("no kdump files given");
        return OpenSet(RandomAccessFile.Open(paths[0], writable), paths.Skip(1).ToList(), options);
    }

    /// <summary>As <see cref="OpenSet(IReadOnlyList{string}, bool, KdumpOptions?)"/>, with the first file already open
    /// (the result owns it).</summary>
    internal static KdumpFile OpenSet(RandomAccessFile first, IReadOnlyList<string> others, KdumpOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(others);
        var writable = first.IsWritable;
        var parts = new List<KdumpPart>();
        RandomAccessFile? pending = first;
        try
        {
            parts.Add(OpenPart(first));
            pending = null;
            foreach (var p in others)
            {
                pending = RandomAccessFile.Open(p, writable);
                parts.Add(OpenPart(pending));
                pending = null;
            }
            parts.Sort((a, b) => a.Header.StartPfn.CompareTo(b.Header.StartPfn));
            var lowest = parts[0];
            for (int i = 0; i < parts.Count; i++)
            {
                var h = parts[i].Header;
                if (h.BlockSize != lowest.Header.BlockSize || h.MaxMapnr != lowest.Header.MaxMapnr)
                    throw new KvmFormatException(parts[i].Path, 0,
                        $"block_size {h.BlockSize} / max_mapnr 0x{h.MaxMapnr:x} differ from {lowest.Path}'s {lowest.Header.BlockSize} / 0x{lowest.Header.MaxMapnr:x}: not one split set");
                if (parts.Count > 1 && !h.IsSplit)
                    throw new KvmFormatException(parts[i].Path, null, "is not a split file (sub-header split = 0) but was given as part of a set");
                if (i > 0 && h.StartPfn < parts[i - 1].Header.EndPfn)
                    throw new KvmFormatException(parts[i].Path, null,
                        $"pfn range [0x{h.StartPfn:x}, 0x{h.EndPfn:x}) overlaps {parts[i - 1].Path}'s [0x{parts[i - 1].Header.StartPfn:x}, 0x{parts[i - 1].Header.EndPfn:x})");
            }
            return new KdumpFile(parts.ToArray(), writable, options ?? KdumpOptions.Default);
        }
        catch
        {
            pending?.Dispose();
            foreach (var p in parts)
                p.Dispose();
            throw;
        }
    }

    /// <summary>The parts of one file; on failure the file is closed.</summary>
    private static KdumpPart OpenPart(RandomAccessFile file)
    {
        KdumpStorage? storage = null;
        try
        {
            Span<byte> first = stackalloc byte[16];
            first.Clear();
            var n = (int)Math.Min(file.Length, 16);
            file.TryCopy(0, first[..n]);
            storage = FlattenedKdumpStorage.HasSignature(first[..n])
                ? FlattenedKdumpStorage.Create(file)
                : new PlainKdumpStorage(file);
            return new KdumpPart(storage);
        }
        catch
        {
            if (storage is not null)
                storage.Dispose();
            else
                file.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            failure = "the kdump file is closed";
            return false;
        }
        while (destination.Length > 0)
        {
            ulong pfn = address >> _pageShift;
            int inPage = (int)(address & _pageMask);
            int n = Math.Min(destination.Length, PageSize - inPage);
            if (!_cache.TryCopy(pfn, inPage, destination[..n]))
            {
                if (n == PageSize)
                {
                    // A whole page asked for and not cached (a large read: the kernel's BTF, a stack, a log ring):
                    // decoded straight into the destination, not cached, as such reads rarely come back.
                    if (!TryReadPage(pfn, address, destination[..n], out failure))
                        return false;
                }
                else if (!LoadPage(pfn, address, inPage, destination[..n], out failure))
                {
                    return false;
                }
            }
            destination = destination[n..];
            if (destination.Length > 0 && address > ulong.MaxValue - (ulong)n)
            {
                failure = $"read passes the end of the physical address space at 0x{address:x}";
                return false;
            }
            address += (ulong)n;
        }
        failure = null;
        return true;
    }

    /// <summary>Decodes the page of <paramref name="pfn"/> into its cache slot and copies <paramref name="destination"/>
    /// from <paramref name="inPage"/> on; when another thread holds the slot, decodes into a buffer of its own.</summary>
    private bool LoadPage(ulong pfn, ulong address, int inPage, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        long generation = _cache.Generation;
        if (_cache.TryBeginFill(pfn, out var fill))
        {
            var decoded = false;
            try
            {
                var page = _cache.Page(fill);
                decoded = TryReadPage(pfn, address, page, out failure);
                if (decoded)
                    page.Slice(inPage, destination.Length).CopyTo(destination);
                return decoded;
            }
            finally
            {
                _cache.EndFill(fill, decoded, generation);
            }
        }
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(PageSize);
        try
        {
            if (!TryReadPage(pfn, address, buffer.AsSpan(0, PageSize), out failure))
                return false;
            buffer.AsSpan(inPage, destination.Length).CopyTo(destination);
            return true;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Decodes the page of <paramref name="pfn"/> into <paramref name="page"/> (a page long), uncached;
    /// a page the dump excluded reads as zeros when the options say so.</summary>
    private bool TryReadPage(ulong pfn, ulong address, Span<byte> page, [NotNullWhen(false)] out string? failure)
    {
        try
        {
            if (!Locate(pfn, address, out var part, out var desc, out failure))
            {
                if (desc.Offset != -2)
                {
                    failure ??= "unreadable";
                    return false;
                }
                page.Clear();
                failure = null;
                return true;
            }
            if (Decode(part!, pfn, desc, page, out failure))
                return true;
            failure ??= "unreadable";
            return false;
        }
        catch (KvmException e)
        {
            failure = e.Message;
            return false;
        }
    }

    internal readonly record struct PageDescriptor(long Offset, uint Size, uint Flags, long At);

    /// <summary>Finds the descriptor of <paramref name="pfn"/>; false with the reason when the page is not in the
    /// dump. A false result with <c>desc.Offset == -2</c> means "excluded, read as zeros".</summary>
    private bool Locate(ulong pfn, ulong address, out KdumpPart? part, out PageDescriptor desc, out string? failure)
    {
        part = null;
        desc = default;
        if (pfn >= MaxMapnr)
        {
            failure = $"physical address 0x{address:x} is not in the dump (pfn 0x{pfn:x} is past max_mapnr 0x{MaxMapnr:x})";
            return false;
        }
        part = FindPart(pfn);
        var bitmaps = part ?? _parts[0];
        if (part is null || !part.Dumped.Test(pfn))
        {
            if (!bitmaps.Ram.Test(pfn))
            {
                failure = $"physical address 0x{address:x} is not in the dump (pfn 0x{pfn:x} is not RAM)";
                return false;
            }
            if (part is null && bitmaps.Dumped.Test(pfn))
            {
                failure = $"physical address 0x{address:x} (pfn 0x{pfn:x}) is held by a file of the split set that was not opened";
                return false;
            }
            if (_options.ZeroFillExcluded)
            {
                desc = new PageDescriptor(-2, 0, 0, 0);
                failure = null;
                return false;
            }
            failure = $"physical address 0x{address:x}: page excluded from dump (pfn 0x{pfn:x})";
            return false;
        }
        ulong index = part.Dumped.Rank(pfn) - part.RankBase;
        long at = part.DescriptorsOffset + (long)index * KdumpPart.DescriptorSize;
        Span<byte> d = stackalloc byte[KdumpPart.DescriptorSize];
        if (!part.TryReadDescriptor(index, d))
        {
            failure = part.Header.IsIncomplete
                ? $"physical address 0x{address:x} (pfn 0x{pfn:x}) was not written: the dump is incomplete ({part.Path}: its descriptor at 0x{at:x} is past the end of the file)"
                : $"{part.Path} is truncated: the page descriptor of pfn 0x{pfn:x} (physical address 0x{address:x}) at offset 0x{at:x} lies past the end of the {part.Storage.Length}-byte file";
            return false;
        }
        bool big = part.Header.IsBigEndian;
        desc = new PageDescriptor(
            big ? BinaryPrimitives.ReadInt64BigEndian(d) : BinaryPrimitives.ReadInt64LittleEndian(d),
            big ? BinaryPrimitives.ReadUInt32BigEndian(d[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(d[8..]),
            big ? BinaryPrimitives.ReadUInt32BigEndian(d[12..]) : BinaryPrimitives.ReadUInt32LittleEndian(d[12..]),
            at); // bytes 16..23 hold page_flags, which a reader does not need
        if (desc.Offset == 0)
        {
            failure = $"physical address 0x{address:x} (pfn 0x{pfn:x}) was not written: the dump is incomplete ({part.Path}: page descriptor at 0x{at:x} has offset 0)";
            return false;
        }
        if (desc.Offset < 0 || desc.Size == 0 || desc.Size > (uint)PageSize || desc.Offset > part.Storage.Length - desc.Size)
        {
            failure = desc.Size > (uint)PageSize || desc.Size == 0
                ? $"{part.Path}: page descriptor of pfn 0x{pfn:x} at offset 0x{at:x}: size {desc.Size} is not in 1..{PageSize}"
                : Truncation is not null && desc.Offset > 0 && desc.Offset + desc.Size > part.Storage.Length
                    ? $"{part.Path} is truncated: the page of pfn 0x{pfn:x} (physical address 0x{address:x}) is stored at 0x{desc.Offset:x} (+{desc.Size}), past the end of the {part.Storage.Length}-byte file"
                    : $"{part.Path}: page descriptor of pfn 0x{pfn:x} at offset 0x{at:x}: data at 0x{desc.Offset:x} (+{desc.Size}) lies outside the {part.Storage.Length}-byte file";
            return false;
        }
        failure = null;
        return true;
    }

    private bool Decode(KdumpPart part, ulong pfn, PageDescriptor desc, Span<byte> page, out string? failure)
    {
        if (!TryCodec(desc.Flags, out var codec))
        {
            failure = $"{part.Path}: page descriptor of pfn 0x{pfn:x} at offset 0x{desc.At:x}: unknown compression flags 0x{desc.Flags:x}";
            return false;
        }
        if (codec == PageCodec.Raw)
        {
            if (desc.Size != (uint)PageSize)
            {
                failure = $"{part.Path}: page descriptor of pfn 0x{pfn:x} at offset 0x{desc.At:x}: uncompressed page of {desc.Size} bytes, not {PageSize}";
                return false;
            }
            if (!part.Storage.TryRead(desc.Offset, page))
            {
                failure = $"{part.Path}: data of pfn 0x{pfn:x} at offset 0x{desc.Offset:x} is not in the file";
                return false;
            }
            failure = null;
            return true;
        }
        var buffer = ArrayPool<byte>.Shared.Rent((int)desc.Size);
        try
        {
            var src = buffer.AsSpan(0, (int)desc.Size);
            if (!part.Storage.TryRead(desc.Offset, src))
            {
                failure = $"{part.Path}: data of pfn 0x{pfn:x} at offset 0x{desc.Offset:x} is not in the file";
                return false;
            }
            if (!PageCompression.TryDecode(codec, src, page, out var error))
            {
                failure = $"{part.Path}: page of pfn 0x{pfn:x} (data at offset 0x{desc.Offset:x}, {desc.Size} bytes): {error}";
                return false;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        failure = null;
        return true;
    }

    private static bool TryCodec(uint flags, out PageCodec codec)
    {
        codec = flags switch
        {
            0 => PageCodec.Raw,
            KdumpHeader.StatusZlib => PageCodec.Zlib,
            KdumpHeader.StatusLzo => PageCodec.Lzo,
            KdumpHeader.StatusSnappy => PageCodec.Snappy,
            KdumpHeader.StatusZstd => PageCodec.Zstd,
            _ => (PageCodec)(-1),
        };
        return (int)codec >= 0;
    }

    private KdumpPart? FindPart(ulong pfn)
    {
        if (_lookup.Length == 1)
        {
            var only = _lookup[0];
            return pfn >= only.Header.StartPfn && pfn < only.Header.EndPfn ? only : null;
        }
        int i = Array.BinarySearch(_partStarts, pfn);
        if (i < 0)
            i = ~i - 1;
        if (i < 0)
            return null;
        var p = _lookup[i];
        return pfn < p.Header.EndPfn ? p : null;
    }

    /// <summary>How page <paramref name="pfn"/> is stored, or null when it is not in the dump.</summary>
    public PageCodec? GetPageCodec(ulong pfn)
    {
        try
        {
            if (!Locate(pfn, pfn << _pageShift, out _, out var desc, out _))
                return null;
            return TryCodec(desc.Flags, out var c) ? c : null;
        }
        catch (KvmException)
        {
            return null;
        }
    }

    /// <summary>Reads every page descriptor and says which codecs occur (for `info`); reads 24 bytes per dumped
    /// page, so it is not done at open.</summary>
    /// <exception cref="KvmFormatException">A descriptor has unknown flags.</exception>
    public KdumpCodecs ScanCodecs()
    {
        var found = KdumpCodecs.None;
        var buffer = new byte[KdumpPart.DescriptorSize * 4096];
        foreach (var part in _parts)
        {
            bool big = part.Header.IsBigEndian;
            ulong done = 0;
            while (done < part.DescriptorCount)
            {
                int count = (int)Math.Min(4096UL, part.DescriptorCount - done);
                long at = part.DescriptorsOffset + (long)done * KdumpPart.DescriptorSize;
                var span = buffer.AsSpan(0, count * KdumpPart.DescriptorSize);
                if (!part.Storage.TryRead(at, span))
                {
                    if (part.Header.IsIncomplete || Truncation is not null)
                        break;
                    throw new KvmFormatException(part.Path, at, "page descriptors pass the end of the file");
                }
                for (int i = 0; i < count; i++)
                {
                    var d = span.Slice(i * KdumpPart.DescriptorSize, KdumpPart.DescriptorSize);
                    long offset = big ? BinaryPrimitives.ReadInt64BigEndian(d) : BinaryPrimitives.ReadInt64LittleEndian(d);
                    if (offset == 0)
                        continue;
                    uint flags = big ? BinaryPrimitives.ReadUInt32BigEndian(d[12..]) : BinaryPrimitives.ReadUInt32LittleEndian(d[12..]);
                    if (!TryCodec(flags, out var codec))
                        throw new KvmFormatException(part.Path, at + i * KdumpPart.DescriptorSize + 12, $"unknown page compression flags 0x{flags:x}");
                    found |= codec switch
                    {
                        PageCodec.Raw => KdumpCodecs.Raw,
                        PageCodec.Zlib => KdumpCodecs.Zlib,
                        PageCodec.Lzo => KdumpCodecs.Lzo,
                        PageCodec.Snappy => KdumpCodecs.Snappy,
                        _ => KdumpCodecs.Zstd,
                    };
                }
                done += (ulong)count;
            }
        }
        return found;
    }

    /// <inheritdoc/>
    /// <remarks>Only pages stored uncompressed can be written, and not the zero page that makedumpfile and QEMU
    /// share among all zero-filled pages. Every page touched is checked before any byte is written.</remarks>
    public void Write(ulong address, ReadOnlySpan<byte> source)
    {
        if (Volatile.Read(ref _disposed) != 0)
            throw new KvmClosedException();
        if (!IsWritable)
            throw new KvmWriteException(address, $"{Path} was opened read-only: cannot write physical address 0x{address:x}");
        if (source.Length == 0)
            return;
        if (address > ulong.MaxValue - (ulong)source.Length + 1)
            throw new KvmWriteException(address, $"write of {source.Length} bytes at 0x{address:x} passes the end of the physical address space");
        lock (_writeLock)
        {
            // Pass 1: every page must be raw and backed by the file.
            ulong a = address;
            int left = source.Length;
            var targets = new List<(KdumpPart Part, long FileOffset, int Length, ulong Pfn)>();
            while (left > 0)
            {
                ulong pfn = a >> _pageShift;
                int inPage = (int)(a & _pageMask);
                int n = Math.Min(left, PageSize - inPage);
                if (!Locate(pfn, a, out var part, out var desc, out var failure))
                    throw new KvmWriteException(a, desc.Offset == -2 ? $"physical address 0x{a:x}: page excluded from dump (pfn 0x{pfn:x}): no file bytes to write" : failure!);
                if (desc.Flags != 0)
                {
                    TryCodec(desc.Flags, out var codec);
                    throw new KvmWriteException(a, $"physical address 0x{a:x}: pfn 0x{pfn:x} is stored {codec}-compressed in {part!.Path}; only uncompressed pages can be written");
                }
                if (desc.Size != (uint)PageSize)
                    throw new KvmWriteException(a, $"{part!.Path}: page descriptor of pfn 0x{pfn:x} at offset 0x{desc.At:x}: uncompressed page of {desc.Size} bytes, not {PageSize}");
                if (desc.Offset == part!.SharedZeroPageOffset)
                    throw new KvmWriteException(a, $"physical address 0x{a:x}: pfn 0x{pfn:x} is a zero page that the dump shares among many pfns; writing it would change them all");
                targets.Add((part, desc.Offset + inPage, n, pfn));
                a += (ulong)n;
                left -= n;
            }
            // Pass 2: write, then drop the cached copies.
            int done = 0;
            foreach (var (part, fileOffset, length, pfn) in targets)
            {
                if (!part.Storage.TryWrite(fileOffset, source.Slice(done, length)))
                    throw new KvmWriteException(address + (ulong)done, $"{part.Path}: bytes at offset 0x{fileOffset:x} are not in the file");
                done += length;
                _cache.Invalidate(pfn);
            }
        }
    }

    private IReadOnlyList<PhysicalRange> ComputeRanges()
    {
        const int cap = 65536;
        var ranges = new List<PhysicalRange>();
        foreach (var part in _parts)
        {
            var origin = System.IO.Path.GetFileName(part.Path);
            part.Ram.ForEachRun(part.Header.StartPfn, part.Header.EndPfn, (s, e) =>
            {
                ulong start = s << _pageShift, end = e << _pageShift;
                int last = ranges.Count - 1;
                if (last >= 0 && (ranges[last].End == start || ranges.Count >= cap))
                    ranges[last] = ranges[last] with { Length = end - ranges[last].Start };
                else
                    ranges.Add(new PhysicalRange(start, end - start, origin));
            });
        }
        return ranges.AsReadOnly();
    }

    private static (byte[] VmcoreInfo, byte[] Notes) ReadNotes(KdumpPart part)
    {
        var h = part.Header;
        byte[] notes = [];
        if (h.SizeNote > 0)
        {
            if (h.SizeNote > MaxNoteBytes)
                throw new KvmFormatException(part.Path, h.BlockSize + (h.Layout == KdumpHeaderLayout.Bits32 ? 40 : 56), $"size_note {h.SizeNote} exceeds {MaxNoteBytes}");
            notes = new byte[h.SizeNote];
            part.Storage.ReadOrThrow(h.OffsetNote, notes, "ELF notes");
        }
        byte[] vmci = [];
        if (h.SizeVmcoreInfo > 0)
        {
            if (h.SizeVmcoreInfo > VmcoreInfo.MaxBytes)
                throw new KvmFormatException(part.Path, h.BlockSize + (h.Layout == KdumpHeaderLayout.Bits32 ? 28 : 40), $"size_vmcoreinfo {h.SizeVmcoreInfo} exceeds {VmcoreInfo.MaxBytes}");
            vmci = new byte[h.SizeVmcoreInfo];
            part.Storage.ReadOrThrow(h.OffsetVmcoreInfo, vmci, "VMCOREINFO");
        }
        else if (notes.Length > 0 && FindNote(notes, "VMCOREINFO", h.IsBigEndian) is { } desc && desc.Length <= VmcoreInfo.MaxBytes)
        {
            vmci = desc.ToArray();
        }
        return (vmci, notes);
    }

    /// <summary>The descriptor of the first ELF note named <paramref name="name"/> in <paramref name="notes"/>.</summary>
    /// <summary>The descriptor of the first note called <paramref name="name"/> in a note area, or null.</summary>
    internal static ReadOnlyMemory<byte>? FindNote(ReadOnlyMemory<byte> notes, string name, bool bigEndian)
    {
        foreach (var note in ElfNotes.Parse(notes.Span, bigEndian, "kdump note area", 0, strict: false))
        {
            if (note.Name == name)
                return notes.Slice((int)note.DescOffset, note.DescSize);
        }
        return null;
    }

    // uname -m names of Linux architectures other than x86, by the width of their long.
    private static DataModel? DataModelFromUts(string machine) => machine switch
    {
        "aarch64" or "arm64" or "ppc64" or "ppc64le" or "s390x" or "riscv64" or "mips64" or "loongarch64" or "sparc64" or "alpha" or "ia64" => DataModel.LP64,
        _ when machine.StartsWith("arm", StringComparison.Ordinal) => DataModel.ILP32,
        "ppc" or "mips" or "riscv32" or "s390" or "sh4" or "m68k" => DataModel.ILP32,
        _ => null,
    };

    private static KernelMachine MachineFromUts(string machine) => machine switch
    {
        "x86_64" or "amd64" => KernelMachine.X86_64,
        "i386" or "i486" or "i586" or "i686" or "x86" => KernelMachine.X86,
        "aarch64" or "arm64" => KernelMachine.Arm64,
        _ => KernelMachine.Unknown,
    };

    /// <summary>Drops every cached page (the cache refills on demand).</summary>
    public void ClearCache() => _cache.Clear();

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _cache.Clear();
        foreach (var p in _parts)
            p.Dispose();
    }
}
