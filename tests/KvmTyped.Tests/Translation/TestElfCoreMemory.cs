using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.IO.MemoryMappedFiles;
using System.Text;
using KvmTyped.Linux;
using KvmTyped.Physical;

namespace KvmTyped.Tests.Translation;

/// <summary>TEST HELPER ONLY: physical memory of an ELF core's PT_LOADs (by p_paddr) through a read-only memory map,
/// plus its VMCOREINFO note. Just enough to test translation on the real fixtures; the library's own ELF core
/// reader lives in src/KvmTyped/Physical.</summary>
internal sealed unsafe class TestElfCoreMemory : IPhysicalMemory
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long _length;
    private readonly Piece[] _pieces;

    private readonly record struct Piece(ulong Start, ulong End, long FileOffset, ulong FileBytes);

    public TestElfCoreMemory(string path)
    {
        Path = path;
        _length = new FileInfo(path).Length;
        _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;

        var file = new ReadOnlySpan<byte>(_base, (int)Math.Min(_length, 1 << 20));
        if (file.Length < 64 || file[0] != 0x7f || !file[1..4].SequenceEqual("ELF"u8))
            throw new InvalidDataException($"{path}: not ELF");
        var is64 = file[4] == 2;
        var phoff = is64 ? (long)BinaryPrimitives.ReadUInt64LittleEndian(file[0x20..]) : BinaryPrimitives.ReadUInt32LittleEndian(file[0x1c..]);
        var phentsize = BinaryPrimitives.ReadUInt16LittleEndian(file[(is64 ? 0x36 : 0x2a)..]);
        var phnum = BinaryPrimitives.ReadUInt16LittleEndian(file[(is64 ? 0x38 : 0x2c)..]);
        var loads = new List<(ulong Paddr, ulong Memsz, long Offset, ulong Filesz)>();
        for (var i = 0; i < phnum; i++)
        {
            var h = new ReadOnlySpan<byte>(_base + phoff + (i * phentsize), phentsize);
            var type = BinaryPrimitives.ReadUInt32LittleEndian(h);
            ulong offset, paddr, filesz, memsz;
            if (is64)
            {
                offset = BinaryPrimitives.ReadUInt64LittleEndian(h[8..]);
                paddr = BinaryPrimitives.ReadUInt64LittleEndian(h[24..]);
                filesz = BinaryPrimitives.ReadUInt64LittleEndian(h[32..]);
                memsz = BinaryPrimitives.ReadUInt64LittleEndian(h[40..]);
            }
            else
            {
                offset = BinaryPrimitives.ReadUInt32LittleEndian(h[4..]);
                paddr = BinaryPrimitives.ReadUInt32LittleEndian(h[12..]);
                filesz = BinaryPrimitives.ReadUInt32LittleEndian(h[16..]);
                memsz = BinaryPrimitives.ReadUInt32LittleEndian(h[20..]);
            }
            if (type == 1 && memsz > 0)
                loads.Add((paddr, memsz, (long)offset, filesz));
            else if (type == 4)
                ReadNotes(new ReadOnlySpan<byte>(_base + (long)offset, (int)filesz));
        }

        // Flatten possibly overlapping segments (kdump ELF maps the same RAM through the text and direct maps) into
        // disjoint pieces; the first segment covering an address wins.
        var pieces = new List<Piece>();
        foreach (var (paddr, memsz, offset, filesz) in loads)
        {
            var todo = new List<(ulong S, ulong E)> { (paddr, paddr + memsz) };
            foreach (var piece in pieces)
            {
                var next = new List<(ulong S, ulong E)>();
                foreach (var (s, e) in todo)
                {
                    if (piece.End <= s || piece.Start >= e)
                    {
                        next.Add((s, e));
                        continue;
                    }
                    if (s < piece.Start)
                        next.Add((s, piece.Start));
                    if (e > piece.End)
                        next.Add((piece.End, e));
                }
                todo = next;
            }
            foreach (var (s, e) in todo)
            {
                var skip = s - paddr;
                pieces.Add(new Piece(s, e, offset + (long)skip, filesz > skip ? filesz - skip : 0));
            }
        }
        pieces.Sort((a, b) => a.Start.CompareTo(b.Start));
        _pieces = [.. pieces];
        var ranges = new List<PhysicalRange>();
        foreach (var p2 in _pieces)
        {
            if (ranges.Count > 0 && ranges[^1].End == p2.Start)
                ranges[^1] = ranges[^1] with { Length = ranges[^1].Length + (p2.End - p2.Start) };
            else
                ranges.Add(new PhysicalRange(p2.Start, p2.End - p2.Start, System.IO.Path.GetFileName(path)));
        }
        Ranges = ranges;
    }

    public string Path { get; }

    public VmcoreInfo? VmcoreInfo { get; private set; }

    public string FormatName => "ELF core (test reader)";

    public IReadOnlyList<PhysicalRange> Ranges { get; }

    public bool IsWritable => false;

    public bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        while (!destination.IsEmpty)
        {
            int lo = 0, hi = _pieces.Length - 1, found = -1;
            while (lo <= hi)
            {
                var mid = (lo + hi) >> 1;
                if (_pieces[mid].Start <= address)
                {
                    found = mid;
                    lo = mid + 1;
                }
                else
                {
                    hi = mid - 1;
                }
            }
            if (found < 0 || address >= _pieces[found].End)
            {
                failure = $"physical address 0x{address:x} is not in {System.IO.Path.GetFileName(Path)}";
                return false;
            }
            var piece = _pieces[found];
            var into = address - piece.Start;
            var n = (int)Math.Min((ulong)destination.Length, piece.End - address);
            var fromFile = into < piece.FileBytes ? (int)Math.Min((ulong)n, piece.FileBytes - into) : 0;
            if (fromFile > 0)
            {
                var at = piece.FileOffset + (long)into;
                if (at < 0 || at + fromFile > _length)
                {
                    failure = $"physical address 0x{address:x}: segment data beyond the end of the file";
                    return false;
                }
                new ReadOnlySpan<byte>(_base + at, fromFile).CopyTo(destination);
            }
            destination[fromFile..n].Clear();
            destination = destination[n..];
            address += (ulong)n;
        }
        failure = null;
        return true;
    }

    public void Write(ulong address, ReadOnlySpan<byte> source) => throw new KvmReadException(address, "read-only test reader");

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }

    private void ReadNotes(ReadOnlySpan<byte> notes)
    {
        var p = 0;
        while (p + 12 <= notes.Length)
        {
            var namesz = (int)BinaryPrimitives.ReadUInt32LittleEndian(notes[p..]);
            var descsz = (int)BinaryPrimitives.ReadUInt32LittleEndian(notes[(p + 4)..]);
            p += 12;
            if (namesz < 0 || descsz < 0 || p + namesz > notes.Length)
                return;
            var name = Encoding.ASCII.GetString(notes.Slice(p, namesz)).TrimEnd('\0');
            p += (namesz + 3) & ~3;
            if (p + descsz > notes.Length)
                return;
            if (name == "VMCOREINFO")
                VmcoreInfo = VmcoreInfo.Parse(notes.Slice(p, descsz));
            p += (descsz + 3) & ~3;
        }
    }
}
