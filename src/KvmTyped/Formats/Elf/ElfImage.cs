using System.Buffers.Binary;
using KvmTyped.IO;
using static KvmTyped.Formats.Elf.ElfConstants;

namespace KvmTyped.Formats.Elf;

/// <summary>An ELF program header.</summary>
internal readonly record struct ElfSegment(uint Type, uint Flags, long Offset, ulong VirtualAddress, ulong PhysicalAddress, long FileSize, ulong MemorySize);

/// <summary>An ELF section header.</summary>
internal readonly record struct ElfSection(uint NameOffset, uint Type, ulong Flags, ulong Address, long Offset, long Size, uint Link, uint Info, long EntrySize)
{
    /// <summary>The section's name, filled in from .shstrtab.</summary>
    public string Name { get; init; } = "";
}

/// <summary>An ELF note: owner name, type and the location of its descriptor in the file.</summary>

/// <summary>The headers of an ELF file (ELF32 or ELF64, either byte order), read with every count and offset
/// checked against the file. Contents are read later, through the map, by whoever needs them.</summary>
/// <remarks>Written here rather than through ELFSharp, which the tests use as this reader's oracle: a dump reader
/// needs headers only, lazily, with its own bounds errors. ELFSharp 2.17.3 parses a vmlinux's symbol table when it
/// loads (measured: 130–210 ms and 56 MiB allocated for the 72 MB fixture vmlinux, before any lookup, against a
/// 200 ms / 50 MB budget for a whole open) and takes PN_XNUM's 0xffff as the program header count (FORMATS.md).</remarks>
internal sealed class ElfImage
{
    /// <summary>Upper bound on program and section headers (QEMU writes ~65k for large guests).</summary>
    public const int MaxHeaders = 1 << 22;

    private ElfImage(RandomAccessFile file) => File = file;

    public RandomAccessFile File { get; }
    public bool Is64 { get; private init; }
    public bool BigEndian { get; private init; }
    public ushort Type { get; private init; }
    public ushort Machine { get; private init; }
    public IReadOnlyList<ElfSegment> Segments { get; private set; } = [];
    public IReadOnlyList<ElfSection> Sections { get; private set; } = [];

    /// <summary>Whether the first bytes are the ELF magic.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> head) => head.Length >= 4 && head[0] == 0x7f && head[1] == (byte)'E' && head[2] == (byte)'L' && head[3] == (byte)'F';

    /// <summary>Parses the ELF header, program headers and section headers.</summary>
    public static ElfImage Parse(RandomAccessFile file)
    {
        var path = file.Path;
        if (file.Length < 16)
            throw new KvmFormatException(path, 0, "file too short for an ELF header");
        var ident = file.Span(0, 16, "ELF identification");
        if (!HasMagic(ident))
            throw new KvmFormatException(path, 0, "not an ELF file (bad magic)");
        var cls = ident[4];
        var data = ident[5];
        if (cls is not (ElfClass32 or ElfClass64))
            throw new KvmFormatException(path, 4, $"unknown ELF class {cls}");
        if (data is not (ElfData2Lsb or ElfData2Msb))
            throw new KvmFormatException(path, 5, $"unknown ELF byte order {data}");
        var is64 = cls == ElfClass64;
        var be = data == ElfData2Msb;
        var ehsize = is64 ? 64 : 52;
        var h = new FieldReader(file.Span(0, ehsize, "ELF header"), be);
        var type = h.U16(16);
        var machine = h.U16(18);
        long phoff, shoff;
        int phentsize, phnum, shentsize, shnum, shstrndx;
        if (is64)
        {
            phoff = h.Off64(32, path);
            shoff = h.Off64(40, path);
            phentsize = h.U16(54);
            phnum = h.U16(56);
            shentsize = h.U16(58);
            shnum = h.U16(60);
            shstrndx = h.U16(62);
        }
        else
        {
            phoff = h.U32(28);
            shoff = h.U32(32);
            phentsize = h.U16(42);
            phnum = h.U16(44);
            shentsize = h.U16(46);
            shnum = h.U16(48);
            shstrndx = h.U16(50);
        }
        var image = new ElfImage(file) { Is64 = is64, BigEndian = be, Type = type, Machine = machine };
        var wantPh = is64 ? 56 : 32;
        var wantSh = is64 ? 64 : 40;

        // Section header 0 carries the real counts when they overflow the 16-bit fields (gABI "Extended numbering").
        ElfSection? first = null;
        if (shoff != 0)
        {
            if (shentsize < wantSh)
                throw new KvmFormatException(path, is64 ? 58 : 46, $"section header entry size {shentsize} is smaller than {wantSh}");
            first = ReadSection(file, shoff, is64, be, "section header 0");
            if (shnum == 0)
                shnum = first.Value.Size is > 0 and <= MaxHeaders ? (int)first.Value.Size : throw new KvmFormatException(path, shoff, $"extended section count {first.Value.Size} is out of range");
            if (shstrndx == ShnXindex)
                shstrndx = (int)first.Value.Link;
        }
        if (phnum == PnXnum && first is { } s0)
            phnum = s0.Info is > 0 and <= MaxHeaders ? (int)s0.Info : throw new KvmFormatException(path, shoff, $"extended program header count {s0.Info} is out of range");

        if (phnum > 0)
        {
            if (phentsize < wantPh)
                throw new KvmFormatException(path, is64 ? 54 : 42, $"program header entry size {phentsize} is smaller than {wantPh}");
            CheckTable(file, phoff, phnum, phentsize, "program header table");
            var segs = new ElfSegment[phnum];
            for (var i = 0; i < phnum; i++)
            {
                var off = phoff + (long)i * phentsize;
                var r = new FieldReader(file.Unchecked(off, wantPh), be);
                segs[i] = is64
                    ? new ElfSegment(r.U32(0), r.U32(4), r.Off64(8, path, off), r.U64(16), r.U64(24), r.Off64(32, path, off), r.U64(40))
                    : new ElfSegment(r.U32(0), r.U32(24), r.U32(4), r.U32(8), r.U32(12), r.U32(16), r.U32(20));
            }
            image.Segments = segs;
        }

        if (shoff != 0 && shnum > 0)
        {
            CheckTable(file, shoff, shnum, shentsize, "section header table");
            var secs = new ElfSection[shnum];
            for (var i = 0; i < shnum; i++)
                secs[i] = ReadSection(file, shoff + (long)i * shentsize, is64, be, $"section header {i}");
            if (shstrndx >= shnum)
                throw new KvmFormatException(path, is64 ? 62 : 50, $"ELF section-name table index {shstrndx} is not below the section count {shnum}");
            if (shstrndx > 0)
            {
                var strtab = secs[shstrndx];
                if (strtab.Type == ShtNobits || !file.Contains(strtab.Offset, strtab.Size))
                    throw new KvmFormatException(path, shoff + (long)shstrndx * shentsize, $"ELF section-name table [0x{strtab.Offset:x}, +0x{strtab.Size:x}) lies outside the file");
                for (var i = 0; i < shnum; i++)
                    secs[i] = secs[i] with { Name = ReadString(file, strtab.Offset, strtab.Size, secs[i].NameOffset) ?? "" };
            }
            image.Sections = secs;
        }
        return image;
    }

    private static void CheckTable(RandomAccessFile file, long offset, int count, int entsize, string what)
    {
        var size = (long)count * entsize;
        if (!file.Contains(offset, size))
            throw new KvmFormatException(file.Path, offset, $"{what} ({count} entries of {entsize} bytes) extends past the end of the file (size {file.Length})");
    }

    private static ElfSection ReadSection(RandomAccessFile file, long off, bool is64, bool be, string what)
    {
        var r = new FieldReader(file.Span(off, is64 ? 64 : 40, what), be);
        return is64
            ? new ElfSection(r.U32(0), r.U32(4), r.U64(8), r.U64(16), r.Off64(24, file.Path, off), r.Off64(32, file.Path, off), r.U32(40), r.U32(44), r.Off64(56, file.Path, off))
            : new ElfSection(r.U32(0), r.U32(4), r.U32(8), r.U32(12), r.U32(16), r.U32(20), r.U32(24), r.U32(28), r.U32(36));
    }

    /// <summary>Reads a NUL-terminated string at <paramref name="index"/> of a string table; null when out of it.</summary>
    public static string? ReadString(RandomAccessFile file, long tableOffset, long tableSize, uint index)
    {
        if (index >= tableSize)
            return null;
        var max = (int)Math.Min(tableSize - index, 4096);
        var span = file.Unchecked(tableOffset + index, max);
        var nul = span.IndexOf((byte)0);
        return nul < 0 ? null : System.Text.Encoding.UTF8.GetString(span[..nul]);
    }

    /// <summary>The notes of every PT_NOTE segment, each checked against its segment and the file.</summary>
    public List<ElfNote> ReadNotes()
    {
        var notes = new List<ElfNote>();
        foreach (var seg in Segments)
        {
            if (seg.Type != PtNote || seg.FileSize == 0)
                continue;
            if (!File.Contains(seg.Offset, seg.FileSize))
                throw new KvmFormatException(File.Path, seg.Offset, $"PT_NOTE segment ({seg.FileSize} bytes) extends past the end of the file (size {File.Length})");
            if (seg.FileSize > ElfNotes.MaxNoteSize)
                throw new KvmFormatException(File.Path, seg.Offset, $"PT_NOTE segment of {seg.FileSize} bytes is larger than {ElfNotes.MaxNoteSize}");
            notes.AddRange(ElfNotes.Parse(File.Unchecked(seg.Offset, (int)seg.FileSize), BigEndian, File.Path, seg.Offset, strict: true));
        }
        return notes;
    }
}

/// <summary>Reads fixed-width fields from a header in the file's byte order.</summary>
internal readonly ref struct FieldReader(ReadOnlySpan<byte> span, bool bigEndian)
{
    private readonly ReadOnlySpan<byte> _span = span;

    public ushort U16(int at) => bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(_span[at..]) : BinaryPrimitives.ReadUInt16LittleEndian(_span[at..]);
    public uint U32(int at) => bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(_span[at..]) : BinaryPrimitives.ReadUInt32LittleEndian(_span[at..]);
    public ulong U64(int at) => bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(_span[at..]) : BinaryPrimitives.ReadUInt64LittleEndian(_span[at..]);

    /// <summary>A 64-bit file offset or size; values past long.MaxValue are hostile.</summary>
    public long Off64(int at, string path, long baseOffset = 0)
    {
        var v = U64(at);
        return v <= long.MaxValue ? (long)v : throw new KvmFormatException(path, baseOffset + at, $"offset or size 0x{v:x} is out of range");
    }
}
