using System.Diagnostics.CodeAnalysis;
using KvmTyped.Formats.Elf;
using KvmTyped.IO;
using static KvmTyped.Formats.Elf.ElfConstants;

namespace KvmTyped.Formats;

/// <summary>Physical memory from an ELF core (ET_CORE): kdump's /proc/vmcore as saved, makedumpfile -E,
/// QEMU dump-guest-memory, /proc/kcore. Each PT_LOAD places file bytes at a physical address.</summary>
/// <remarks>Where PT_LOADs overlap physically (kdump lists the kernel text again beside RAM), the one that
/// starts lower wins, so each physical byte has exactly one backing file byte for reads and writes.
/// Bytes past p_filesz up to p_memsz read as zeros and cannot be written.</remarks>
internal sealed class ElfCoreMemory : IPhysicalMemory, IWriteCheck
{
    /// <summary>p_paddr value meaning "no physical address" (/proc/kcore's vmalloc segments).</summary>
    private const ulong NoPhysical = ulong.MaxValue;

    /// <summary>One past the largest physical address x86 can have (52 address bits).</summary>
    private const ulong MaxPhysical = 1UL << 52;

    private readonly RandomAccessFile _file;
    private readonly Piece[] _pieces;
    private readonly ulong[] _starts;

    internal ElfCoreMemory(ElfImage image)
    {
        _file = image.File;
        Image = image;
        var loads = new List<(ElfSegment Seg, int Index)>();
        for (var i = 0; i < image.Segments.Count; i++)
        {
            var s = image.Segments[i];
            if (s.Type != PtLoad)
                continue;
            var memsz = Math.Max(s.MemorySize, (ulong)s.FileSize);
            if (memsz == 0 || s.PhysicalAddress == NoPhysical)
                continue;
            if (s.PhysicalAddress + memsz < s.PhysicalAddress)
                throw new KvmFormatException(_file.Path, null, $"PT_LOAD {i} (paddr 0x{s.PhysicalAddress:x}, size 0x{memsz:x}) wraps around the address space");
            if (s.PhysicalAddress + memsz > MaxPhysical)
                throw new KvmFormatException(_file.Path, null, $"PT_LOAD {i} (paddr 0x{s.PhysicalAddress:x}, size 0x{memsz:x}) reaches beyond 2^52, the largest physical address x86 has");
            loads.Add((s, i));
        }
        loads.Sort((a, b) => a.Seg.PhysicalAddress != b.Seg.PhysicalAddress ? a.Seg.PhysicalAddress.CompareTo(b.Seg.PhysicalAddress) : a.Index.CompareTo(b.Index));
        var pieces = new List<Piece>(loads.Count);
        ulong covered = 0;
        var any = false;
        foreach (var (s, i) in loads)
        {
            var memsz = Math.Max(s.MemorySize, (ulong)s.FileSize);
            var start = s.PhysicalAddress;
            var end = start + memsz;
            if (any && end <= covered)
                continue;
            var skip = any && start < covered ? covered - start : 0;
            pieces.Add(new Piece(start + skip, end, s.Offset + (long)skip, (long)Math.Min((ulong)s.FileSize, memsz) - (long)Math.Min(skip, (ulong)s.FileSize), i));
            covered = end;
            any = true;
        }
        _pieces = [.. pieces];
        _starts = [.. pieces.Select(p => p.Start)];
        Ranges = [.. MergeRanges(_pieces, Path.GetFileName(_file.Path))];
        StoredRanges = [.. MergeRanges([.. _pieces.Select(Stored).Where(p => p.End > p.Start)], Path.GetFileName(_file.Path))];
    }

    /// <summary>The part of a piece backed by file bytes: up to p_filesz, and not past the end of the file.</summary>
    private Piece Stored(Piece p)
    {
        var inFile = p.FileBytes <= 0 || p.FileOffset >= _file.Length ? 0 : Math.Min(p.FileBytes, _file.Length - p.FileOffset);
        return p with { End = p.Start + (ulong)Math.Min((ulong)inFile, p.End - p.Start) };
    }

    /// <summary>The ELF headers behind this core.</summary>
    internal ElfImage Image { get; }

    /// <inheritdoc />
    public string FormatName => Image.Is64 ? "ELF64 core" : "ELF32 core";

    /// <inheritdoc />
    public IReadOnlyList<PhysicalRange> Ranges { get; }

    /// <inheritdoc />
    public IReadOnlyList<PhysicalRange> StoredRanges { get; }

    /// <inheritdoc />
    public bool IsWritable => _file.IsWritable;

    private static IEnumerable<PhysicalRange> MergeRanges(Piece[] pieces, string origin)
    {
        var i = 0;
        while (i < pieces.Length)
        {
            var start = pieces[i].Start;
            var end = pieces[i].End;
            while (++i < pieces.Length && pieces[i].Start == end)
                end = pieces[i].End;
            yield return new PhysicalRange(start, end - start, origin);
        }
    }

    private int Find(ulong address)
    {
        var i = Array.BinarySearch(_starts, address);
        if (i < 0)
            i = ~i - 1;
        return i >= 0 && address < _pieces[i].End ? i : -1;
    }

    /// <inheritdoc />
    public bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        while (!destination.IsEmpty)
        {
            var i = Find(address);
            if (i < 0)
            {
                failure = $"physical address 0x{address:x} is not in the dump";
                return false;
            }
            ref readonly var p = ref _pieces[i];
            var delta = address - p.Start;
            var n = (int)Math.Min((ulong)destination.Length, p.End - address);
            var chunk = destination[..n];
            if ((long)delta + n <= p.FileBytes)
            {
                var fileOff = p.FileOffset + (long)delta;
                if (!_file.Contains(fileOff, n))
                {
                    failure = $"{_file.Path}: PT_LOAD {p.Segment} is truncated: physical address 0x{address:x} lies past the end of the file (size {_file.Length})";
                    return false;
                }
                if (!_file.TryCopy(fileOff, chunk))
                {
                    failure = $"{_file.Path} is closed";
                    return false;
                }
            }
            else
            {
                var inFile = (int)Math.Max(0, p.FileBytes - (long)delta);
                if (inFile > 0)
                {
                    var fileOff = p.FileOffset + (long)delta;
                    if (!_file.Contains(fileOff, inFile))
                    {
                        failure = $"{_file.Path}: PT_LOAD {p.Segment} is truncated: physical address 0x{address:x} lies past the end of the file (size {_file.Length})";
                        return false;
                    }
                    if (!_file.TryCopy(fileOff, chunk[..inFile]))
                    {
                        failure = $"{_file.Path} is closed";
                        return false;
                    }
                }
                chunk[inFile..].Clear();
            }
            destination = destination[n..];
            address += (ulong)n;
        }
        failure = null;
        return true;
    }

    /// <inheritdoc />
    string? IWriteCheck.WriteFailure(ulong address, ulong length)
    {
        var (a, left) = (address, length);
        while (left > 0)
        {
            var i = Find(a);
            if (i < 0)
                return $"physical address 0x{a:x} is not in the dump";
            var p = _pieces[i];
            var n = Math.Min(left, p.End - a);
            if ((long)(a - p.Start) + (long)n > p.FileBytes || !_file.Contains(p.FileOffset + (long)(a - p.Start), (long)n))
                return $"physical address 0x{a:x} has no bytes in {_file.Path} to write (zero-filled or truncated)";
            a += n;
            left -= n;
        }
        return null;
    }

    /// <inheritdoc />
    public void Write(ulong address, ReadOnlySpan<byte> source)
    {
        if (!IsWritable)
            throw new KvmWriteException(address, $"{_file.Path} is open read-only");
        // Check every byte first, so a failed write changes nothing.
        if (((IWriteCheck)this).WriteFailure(address, (ulong)source.Length) is { } why)
            throw new KvmWriteException(address, why);
        while (!source.IsEmpty)
        {
            var p = _pieces[Find(address)];
            var n = (int)Math.Min((ulong)source.Length, p.End - address);
            _file.Write(p.FileOffset + (long)(address - p.Start), source[..n]);
            source = source[n..];
            address += (ulong)n;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _file.Dispose();

    private readonly record struct Piece(ulong Start, ulong End, long FileOffset, long FileBytes, int Segment);
}
