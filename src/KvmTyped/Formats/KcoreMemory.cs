using System.Diagnostics.CodeAnalysis;
using KvmTyped.Formats.Elf;
using KvmTyped.IO;
using static KvmTyped.Formats.Elf.ElfConstants;

namespace KvmTyped.Formats;

/// <summary>Physical memory from an ELF core whose file refuses a memory map, read by position through a bounded block
/// cache: /proc/kcore above all (the running kernel), and any ELF core on a file or device that cannot be mapped.</summary>
/// <remarks>
/// <para>/proc/kcore (fs/proc/kcore.c) is an ELF core whose PT_LOADs give kernel <em>virtual</em> ranges: the direct map
/// of each System RAM range, the kernel text, vmalloc space, the module area and vmemmap. Each segment's file offset is
/// its virtual address minus PAGE_OFFSET plus the headers' size, which is why the file's size (about 128 TiB on x86-64)
/// says nothing of its content, and the kernel implements no mmap for it. Since Linux 5.0 the direct-map and text
/// segments also carry their physical address in p_paddr; the others carry -1. Physical memory is read through the
/// former; addresses in vmalloc, modules and vmemmap are reached through the kernel's page tables like any other
/// virtual address, and end up in the direct-map segments too (every page of RAM is in the direct map).</para>
/// <para>Where segments overlap physically (the text segment lies inside a RAM range) the one that starts lower wins, as
/// in <see cref="ElfCoreMemory"/>, and bytes past p_filesz up to p_memsz read as zeros. Reads of a hole between segments
/// fail; inside a segment, /proc/kcore itself gives zeros where nothing is mapped (it never fails a read there).</para>
/// </remarks>
internal sealed class KcoreMemory : IPhysicalMemory
{
    /// <summary>p_paddr value meaning "no physical address" (/proc/kcore's vmalloc, module and vmemmap segments).</summary>
    private const ulong NoPhysical = ulong.MaxValue;

    /// <summary>One past the largest physical address x86 can have (52 address bits).</summary>
    private const ulong MaxPhysical = 1UL << 52;

    private readonly RandomAccessFile _file;
    private readonly BlockReadCache _cache;
    private readonly Piece[] _pieces;
    private readonly ulong[] _starts;

    /// <summary>Reads the core whose headers <paramref name="image"/> holds; takes ownership of its file.</summary>
    /// <exception cref="KvmFormatException">A PT_LOAD's physical range wraps or reaches beyond 2^52.</exception>
    internal KcoreMemory(ElfImage image)
    {
        _file = image.File;
        _cache = new BlockReadCache(_file);
        Image = image;
        var loads = new List<(ElfSegment Seg, int Index)>();
        var virtualSegments = new List<KcoreSegment>();
        for (var i = 0; i < image.Segments.Count; i++)
        {
            var s = image.Segments[i];
            var size = Math.Max(s.MemorySize, (ulong)s.FileSize);
            if (s.Type != PtLoad || size == 0)
                continue;
            if (s.VirtualAddress + size < s.VirtualAddress)
                throw new KvmFormatException(_file.Path, null, $"PT_LOAD {i} (vaddr 0x{s.VirtualAddress:x}, size 0x{size:x}) wraps around the address space");
            virtualSegments.Add(new KcoreSegment(s.VirtualAddress, size, s.PhysicalAddress == NoPhysical ? null : s.PhysicalAddress));
            if (s.PhysicalAddress == NoPhysical)
                continue;
            if (s.PhysicalAddress + size < s.PhysicalAddress || s.PhysicalAddress + size > MaxPhysical)
                throw new KvmFormatException(_file.Path, null, $"PT_LOAD {i} (paddr 0x{s.PhysicalAddress:x}, size 0x{size:x}) reaches beyond 2^52, the largest physical address x86 has");
            loads.Add((s, i));
        }
        loads.Sort((a, b) => a.Seg.PhysicalAddress != b.Seg.PhysicalAddress ? a.Seg.PhysicalAddress.CompareTo(b.Seg.PhysicalAddress) : a.Index.CompareTo(b.Index));
        var pieces = new List<Piece>(loads.Count);
        ulong covered = 0;
        foreach (var (s, i) in loads)
        {
            var start = s.PhysicalAddress;
            var end = start + Math.Max(s.MemorySize, (ulong)s.FileSize);
            if (pieces.Count > 0 && end <= covered)
                continue;
            var skip = pieces.Count > 0 && start < covered ? covered - start : 0;
            var fileBytes = (ulong)s.FileSize > skip ? (ulong)s.FileSize - skip : 0;
            pieces.Add(new Piece(start + skip, end, s.Offset + (long)skip, (long)fileBytes, i));
            covered = end;
        }
        _pieces = [.. pieces];
        _starts = [.. pieces.Select(p => p.Start)];
        VirtualSegments = virtualSegments;
        var origin = Path.GetFileName(_file.Path);
        var ranges = new List<PhysicalRange>();
        var k = 0;
        while (k < _pieces.Length)
        {
            var start = _pieces[k].Start;
            var end = _pieces[k].End;
            while (++k < _pieces.Length && _pieces[k].Start == end)
                end = _pieces[k].End;
            ranges.Add(new PhysicalRange(start, end - start, origin));
        }
        Ranges = ranges;
    }

    /// <summary>The ELF headers behind this core.</summary>
    internal ElfImage Image { get; }

    /// <summary>Every PT_LOAD, by virtual address, with its physical address where the core gives one.</summary>
    internal IReadOnlyList<KcoreSegment> VirtualSegments { get; }

    /// <summary>The block cache the reads go through.</summary>
    internal BlockReadCache Cache => _cache;

    /// <inheritdoc />
    public string FormatName => (Image.Is64 ? "ELF64" : "ELF32") + " core (read by position)";

    /// <inheritdoc />
    public IReadOnlyList<PhysicalRange> Ranges { get; }

    /// <inheritdoc />
    public bool IsWritable => false;

    /// <inheritdoc />
    public bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        while (!destination.IsEmpty)
        {
            var i = Array.BinarySearch(_starts, address);
            if (i < 0)
                i = ~i - 1;
            if (i < 0 || address >= _pieces[i].End)
            {
                failure = $"physical address 0x{address:x} is not in {_file.Path}";
                return false;
            }
            var p = _pieces[i];
            var n = (int)Math.Min((ulong)destination.Length, p.End - address);
            var delta = (long)(address - p.Start);
            // Bytes past p_filesz (up to p_memsz) are zeros, as in any ELF core.
            var inFile = (int)Math.Clamp(p.FileBytes - delta, 0, n);
            var offset = p.FileOffset + delta;
            if (inFile > 0 && !_file.Contains(offset, inFile))
            {
                failure = $"{_file.Path}: PT_LOAD {p.Segment} places physical address 0x{address:x} at offset 0x{offset:x}, past the file's size 0x{_file.Length:x}";
                return false;
            }
            if (inFile > 0 && !_cache.TryRead(offset, destination[..inFile]))
            {
                failure = $"{_file.Path}: cannot read physical address 0x{address:x} (file offset 0x{offset:x}): the read failed or the file is closed";
                return false;
            }
            destination[inFile..n].Clear();
            destination = destination[n..];
            address += (ulong)n;
        }
        failure = null;
        return true;
    }

    /// <inheritdoc />
    public void Write(ulong address, ReadOnlySpan<byte> source) =>
        throw new KvmWriteException(address, $"{_file.Path} is read by position and never written");

    /// <inheritdoc />
    public void Dispose()
    {
        _cache.Clear();
        _file.Dispose();
    }

    private readonly record struct Piece(ulong Start, ulong End, long FileOffset, long FileBytes, int Segment);
}

/// <summary>A PT_LOAD of a core read by position: its virtual range and physical address (null for /proc/kcore's
/// vmalloc, module and vmemmap segments).</summary>
internal readonly record struct KcoreSegment(ulong VirtualAddress, ulong Size, ulong? PhysicalAddress);
