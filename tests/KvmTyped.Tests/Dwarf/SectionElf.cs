using System.Buffers.Binary;
using System.Text;

namespace KvmTyped.Tests.Dwarf;

/// <summary>A section of an ELF file built in a test.</summary>
internal sealed record ElfSectionSpec(string Name, uint Type, ulong Flags, byte[] Data, uint Link = 0, uint Info = 0, ulong EntrySize = 0);

/// <summary>Writes ELF32/ELF64 files of either byte order made of sections only (no program headers), as object files
/// and debug files are: header, section contents, section-name table, section header table.</summary>
internal static class SectionElf
{
    public const uint ShtProgbits = 1;
    public const uint ShtSymtab = 2;
    public const uint ShtStrtab = 3;
    public const uint ShtRela = 4;
    public const uint ShtNote = 7;
    public const uint ShtRel = 9;
    public const ulong ShfCompressed = 0x800;

    public static byte[] Build(bool is64, bool bigEndian, ushort type, ushort machine, IReadOnlyList<ElfSectionSpec> sections)
    {
        var names = new MemoryStream();
        names.WriteByte(0);
        var nameOffsets = new List<uint>();
        foreach (var s in sections.Append(new ElfSectionSpec(".shstrtab", ShtStrtab, 0, [])))
        {
            nameOffsets.Add((uint)names.Length);
            names.Write(Encoding.ASCII.GetBytes(s.Name + "\0"));
        }
        var all = sections.Append(new ElfSectionSpec(".shstrtab", ShtStrtab, 0, names.ToArray())).ToList();
        int ehsize = is64 ? 64 : 52, shentsize = is64 ? 64 : 40;
        var body = new MemoryStream();
        body.Write(new byte[ehsize]);
        var offsets = new List<long>();
        foreach (var s in all)
        {
            while (body.Length % 8 != 0)
                body.WriteByte(0);
            offsets.Add(body.Length);
            body.Write(s.Data);
        }
        while (body.Length % 8 != 0)
            body.WriteByte(0);
        long shoff = body.Length;
        body.Write(new byte[shentsize * (all.Count + 1)]);
        var file = body.ToArray();
        var w = new Writer(file, bigEndian);
        "\u007fELF"u8.CopyTo(file);
        file[4] = (byte)(is64 ? 2 : 1);
        file[5] = (byte)(bigEndian ? 2 : 1);
        file[6] = 1;
        w.U16(16, type);
        w.U16(18, machine);
        w.U32(20, 1);
        if (is64)
        {
            w.U64(40, (ulong)shoff);
            w.U16(52, (ushort)ehsize);
            w.U16(58, (ushort)shentsize);
            w.U16(60, (ushort)(all.Count + 1));
            w.U16(62, (ushort)all.Count);
        }
        else
        {
            w.U32(32, (uint)shoff);
            w.U16(40, (ushort)ehsize);
            w.U16(46, (ushort)shentsize);
            w.U16(48, (ushort)(all.Count + 1));
            w.U16(50, (ushort)all.Count);
        }
        for (int i = 0; i < all.Count; i++)
        {
            var s = all[i];
            int at = (int)shoff + shentsize * (i + 1);
            w.U32(at, nameOffsets[i]);
            w.U32(at + 4, s.Type);
            if (is64)
            {
                w.U64(at + 8, s.Flags);
                w.U64(at + 24, (ulong)offsets[i]);
                w.U64(at + 32, (ulong)s.Data.Length);
                w.U32(at + 40, s.Link);
                w.U32(at + 44, s.Info);
                w.U64(at + 48, 1);
                w.U64(at + 56, s.EntrySize);
            }
            else
            {
                w.U32(at + 8, (uint)s.Flags);
                w.U32(at + 16, (uint)offsets[i]);
                w.U32(at + 20, (uint)s.Data.Length);
                w.U32(at + 24, s.Link);
                w.U32(at + 28, s.Info);
                w.U32(at + 32, 1);
                w.U32(at + 36, (uint)s.EntrySize);
            }
        }
        return file;
    }

    /// <summary>A note section's contents holding one note.</summary>
    public static byte[] Note(string name, uint type, byte[] desc, bool bigEndian)
    {
        var nameBytes = Encoding.ASCII.GetBytes(name + "\0");
        int nameLen = (nameBytes.Length + 3) & ~3, descLen = (desc.Length + 3) & ~3;
        var data = new byte[12 + nameLen + descLen];
        var w = new Writer(data, bigEndian);
        w.U32(0, (uint)nameBytes.Length);
        w.U32(4, (uint)desc.Length);
        w.U32(8, type);
        nameBytes.CopyTo(data, 12);
        desc.CopyTo(data, 12 + nameLen);
        return data;
    }

    /// <summary>A section compressed as SHF_COMPRESSED says: a chdr, then the stream.</summary>
    public static byte[] Compressed(byte[] data, uint chType, bool is64, bool bigEndian)
    {
        byte[] stream;
        if (chType == 1)
        {
            var ms = new MemoryStream();
            using (var z = new System.IO.Compression.ZLibStream(ms, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true))
                z.Write(data);
            stream = ms.ToArray();
        }
        else
        {
            using var c = new ZstdSharp.Compressor();
            stream = c.Wrap(data).ToArray();
        }
        int header = is64 ? 24 : 12;
        var result = new byte[header + stream.Length];
        var w = new Writer(result, bigEndian);
        w.U32(0, chType);
        if (is64)
        {
            w.U64(8, (ulong)data.Length);
            w.U64(16, 1);
        }
        else
        {
            w.U32(4, (uint)data.Length);
            w.U32(8, 1);
        }
        stream.CopyTo(result, header);
        return result;
    }

    /// <summary>A <c>.zdebug_*</c> section's contents: "ZLIB", the size in 8 big-endian bytes, a zlib stream.</summary>
    public static byte[] GnuCompressed(byte[] data)
    {
        var ms = new MemoryStream();
        ms.Write("ZLIB"u8);
        var size = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(size, (ulong)data.Length);
        ms.Write(size);
        using (var z = new System.IO.Compression.ZLibStream(ms, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true))
            z.Write(data);
        return ms.ToArray();
    }

    internal readonly struct Writer(byte[] data, bool bigEndian)
    {
        public void U16(int at, ushort v)
        {
            if (bigEndian) BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(at), v); else BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(at), v);
        }

        public void U32(int at, uint v)
        {
            if (bigEndian) BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(at), v); else BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(at), v);
        }

        public void U64(int at, ulong v)
        {
            if (bigEndian) BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(at), v); else BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(at), v);
        }
    }
}
