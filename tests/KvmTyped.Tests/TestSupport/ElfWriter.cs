using System.Buffers.Binary;
using System.Text;

namespace KvmTyped.Tests.TestSupport;

/// <summary>Builds small ELF32/ELF64 files (cores and kernels, either byte order) for tests.</summary>
internal sealed class ElfWriter
{
    public bool Is64 { get; init; } = true;
    public bool BigEndian { get; init; }
    public ushort Type { get; init; } = 4;
    public ushort Machine { get; init; } = 62;

    public List<Segment> Segments { get; } = [];
    public List<(string Name, uint Type, byte[] Desc)> Notes { get; } = [];
    public List<(string Name, ulong Value, byte Info, ushort Shndx)> Symbols { get; } = [];

    /// <summary>Raw overrides applied after layout: (file offset, bytes).</summary>
    public List<(long Offset, byte[] Bytes)> Patches { get; } = [];

    /// <summary>Optional override of e_phnum as written (the real count is still laid out).</summary>
    public int? PhnumOverride { get; init; }

    public sealed record Segment(ulong Paddr, ulong Vaddr, byte[] Data, ulong? MemSize = null, long? FileSizeOverride = null, long? OffsetOverride = null);

    public static ElfWriter Core64(ushort machine = 62) => new() { Is64 = true, Machine = machine, Type = 4 };
    public static ElfWriter Core32() => new() { Is64 = false, Machine = 3, Type = 4 };
    public static ElfWriter Kernel64() => new() { Is64 = true, Machine = 62, Type = 2 };
    public static ElfWriter Kernel32() => new() { Is64 = false, Machine = 3, Type = 2 };

    public ElfWriter AddLoad(ulong paddr, ulong vaddr, byte[] data, ulong? memsz = null)
    {
        Segments.Add(new Segment(paddr, vaddr, data, memsz));
        return this;
    }

    public ElfWriter AddNote(string name, uint type, byte[] desc)
    {
        Notes.Add((name, type, desc));
        return this;
    }

    public ElfWriter AddVmcoreInfo(string text) => AddNote("VMCOREINFO", 0, Encoding.ASCII.GetBytes(text));

    /// <summary>Adds a global object symbol in section 1 (.data).</summary>
    public ElfWriter AddSymbol(string name, ulong value, byte info = 0x11, ushort shndx = 1)
    {
        Symbols.Add((name, value, info, shndx));
        return this;
    }

    private void U16(Span<byte> s, ushort v) { if (BigEndian) BinaryPrimitives.WriteUInt16BigEndian(s, v); else BinaryPrimitives.WriteUInt16LittleEndian(s, v); }
    private void U32(Span<byte> s, uint v) { if (BigEndian) BinaryPrimitives.WriteUInt32BigEndian(s, v); else BinaryPrimitives.WriteUInt32LittleEndian(s, v); }
    private void U64(Span<byte> s, ulong v) { if (BigEndian) BinaryPrimitives.WriteUInt64BigEndian(s, v); else BinaryPrimitives.WriteUInt64LittleEndian(s, v); }

    public byte[] Build()
    {
        var ehsize = Is64 ? 64 : 52;
        var phentsize = Is64 ? 56 : 32;
        var shentsize = Is64 ? 64 : 40;
        var hasNotes = Notes.Count > 0;
        var phnum = Segments.Count + (hasNotes ? 1 : 0);
        var body = new MemoryStream();
        long phoff = ehsize;
        long cursor = phoff + (long)phnum * phentsize;

        // Notes
        var notes = new MemoryStream();
        foreach (var (name, type, desc) in Notes)
        {
            var nb = Encoding.ASCII.GetBytes(name + "\0");
            var hdr = new byte[12];
            U32(hdr, (uint)nb.Length);
            U32(hdr.AsSpan(4), (uint)desc.Length);
            U32(hdr.AsSpan(8), type);
            notes.Write(hdr);
            notes.Write(nb);
            notes.Write(new byte[(4 - nb.Length % 4) % 4]);
            notes.Write(desc);
            notes.Write(new byte[(4 - desc.Length % 4) % 4]);
        }
        var noteBytes = notes.ToArray();
        var noteOff = cursor;
        cursor += noteBytes.Length;
        var segOffsets = new List<long>();
        foreach (var s in Segments)
        {
            cursor = (cursor + 15) & ~15L;
            segOffsets.Add(cursor);
            cursor += s.Data.Length;
        }

        // Sections: null, .data (placeholder), .symtab, .strtab, .shstrtab when symbols exist.
        byte[] symtab = [], strtab = [], shstrtab = [];
        long symOff = 0, strOff = 0, shstrOff = 0, shoff = 0;
        var shnum = 0;
        if (Symbols.Count > 0)
        {
            var str = new MemoryStream();
            str.WriteByte(0);
            var entsize = Is64 ? 24 : 16;
            symtab = new byte[(Symbols.Count + 1) * entsize];
            for (var i = 0; i < Symbols.Count; i++)
            {
                var (name, value, info, shndx) = Symbols[i];
                var nameOff = (uint)str.Length;
                str.Write(Encoding.ASCII.GetBytes(name + "\0"));
                var e = symtab.AsSpan((i + 1) * entsize);
                U32(e, nameOff);
                if (Is64)
                {
                    e[4] = info;
                    U16(e[6..], shndx);
                    U64(e[8..], value);
                    U64(e[16..], 8);
                }
                else
                {
                    U32(e[4..], (uint)value);
                    U32(e[8..], 4);
                    e[12] = info;
                    U16(e[14..], shndx);
                }
            }
            strtab = str.ToArray();
            shstrtab = Encoding.ASCII.GetBytes("\0.data\0.symtab\0.strtab\0.shstrtab\0");
            cursor = (cursor + 7) & ~7L;
            symOff = cursor; cursor += symtab.Length;
            strOff = cursor; cursor += strtab.Length;
            shstrOff = cursor; cursor += shstrtab.Length;
            cursor = (cursor + 7) & ~7L;
            shoff = cursor;
            shnum = 5;
            cursor += shnum * shentsize;
        }

        var file = new byte[cursor];
        var h = file.AsSpan();
        h[0] = 0x7f; h[1] = (byte)'E'; h[2] = (byte)'L'; h[3] = (byte)'F';
        h[4] = (byte)(Is64 ? 2 : 1);
        h[5] = (byte)(BigEndian ? 2 : 1);
        h[6] = 1;
        U16(h[16..], Type);
        U16(h[18..], Machine);
        U32(h[20..], 1);
        if (Is64)
        {
            U64(h[32..], (ulong)phoff);
            U64(h[40..], (ulong)shoff);
            U16(h[52..], (ushort)ehsize);
            U16(h[54..], (ushort)phentsize);
            U16(h[56..], (ushort)(PhnumOverride ?? phnum));
            U16(h[58..], (ushort)shentsize);
            U16(h[60..], (ushort)shnum);
            U16(h[62..], (ushort)(shnum > 0 ? 4 : 0));
        }
        else
        {
            U32(h[28..], (uint)phoff);
            U32(h[32..], (uint)shoff);
            U16(h[40..], (ushort)ehsize);
            U16(h[42..], (ushort)phentsize);
            U16(h[44..], (ushort)(PhnumOverride ?? phnum));
            U16(h[46..], (ushort)shentsize);
            U16(h[48..], (ushort)shnum);
            U16(h[50..], (ushort)(shnum > 0 ? 4 : 0));
        }
        var ph = 0;
        void Phdr(uint type, long off, ulong vaddr, ulong paddr, long filesz, ulong memsz)
        {
            var p = file.AsSpan((int)(phoff + ph++ * phentsize));
            U32(p, type);
            if (Is64)
            {
                U32(p[4..], 6);
                U64(p[8..], (ulong)off);
                U64(p[16..], vaddr);
                U64(p[24..], paddr);
                U64(p[32..], (ulong)filesz);
                U64(p[40..], memsz);
                U64(p[48..], 4096);
            }
            else
            {
                U32(p[4..], (uint)off);
                U32(p[8..], (uint)vaddr);
                U32(p[12..], (uint)paddr);
                U32(p[16..], (uint)filesz);
                U32(p[20..], (uint)memsz);
                U32(p[24..], 6);
                U32(p[28..], 4096);
            }
        }
        if (hasNotes)
        {
            Phdr(4, noteOff, 0, 0, noteBytes.Length, 0);
            noteBytes.CopyTo(h[(int)noteOff..]);
        }
        for (var i = 0; i < Segments.Count; i++)
        {
            var s = Segments[i];
            Phdr(1, s.OffsetOverride ?? segOffsets[i], s.Vaddr, s.Paddr, s.FileSizeOverride ?? s.Data.Length, s.MemSize ?? (ulong)s.Data.Length);
            s.Data.CopyTo(h[(int)segOffsets[i]..]);
        }
        if (shnum > 0)
        {
            symtab.CopyTo(h[(int)symOff..]);
            strtab.CopyTo(h[(int)strOff..]);
            shstrtab.CopyTo(h[(int)shstrOff..]);
            void Shdr(int i, uint name, uint type, ulong flags, long off, long size, uint link, uint info, long entsize)
            {
                var s = file.AsSpan((int)(shoff + i * shentsize));
                U32(s, name);
                U32(s[4..], type);
                if (Is64)
                {
                    U64(s[8..], flags);
                    U64(s[24..], (ulong)off);
                    U64(s[32..], (ulong)size);
                    U32(s[40..], link);
                    U32(s[44..], info);
                    U64(s[48..], 8);
                    U64(s[56..], (ulong)entsize);
                }
                else
                {
                    U32(s[8..], (uint)flags);
                    U32(s[16..], (uint)off);
                    U32(s[20..], (uint)size);
                    U32(s[24..], link);
                    U32(s[28..], info);
                    U32(s[32..], 4);
                    U32(s[36..], (uint)entsize);
                }
            }
            Shdr(1, 1, 1, 3, 0, 0, 0, 0, 0);
            Shdr(2, 7, 2, 0, symOff, symtab.Length, 3, 1, Is64 ? 24 : 16);
            Shdr(3, 15, 3, 0, strOff, strtab.Length, 0, 0, 0);
            Shdr(4, 23, 3, 0, shstrOff, shstrtab.Length, 0, 0, 0);
        }
        foreach (var (off, bytes) in Patches)
            bytes.CopyTo(h[(int)off..]);
        return file;
    }

    /// <summary>File offset of segment i's data in the built file (for patching and checking writes).</summary>
    public long SegmentDataOffset(byte[] built, int i)
    {
        var phoff = Is64 ? BinaryPrimitives.ReadInt64LittleEndian(built.AsSpan(32)) : BinaryPrimitives.ReadUInt32LittleEndian(built.AsSpan(28));
        var ent = Is64 ? 56 : 32;
        var index = i + (Notes.Count > 0 ? 1 : 0);
        var p = built.AsSpan((int)(phoff + index * ent));
        return Is64 ? BinaryPrimitives.ReadInt64LittleEndian(p[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(p[4..]);
    }
}

/// <summary>A temporary folder deleted with its files when disposed.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "kvmtyped-test-" + Guid.NewGuid().ToString("N")));

    public string Path { get; }

    public string File(string name, byte[] content)
    {
        var p = System.IO.Path.Combine(Path, name);
        System.IO.File.WriteAllBytes(p, content);
        return p;
    }

    public string Text(string name, string content)
    {
        var p = System.IO.Path.Combine(Path, name);
        System.IO.File.WriteAllText(p, content);
        return p;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { /* a file still mapped by a failing test; the OS cleans /tmp */ }
    }
}
