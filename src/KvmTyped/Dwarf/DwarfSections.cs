using System.Buffers.Binary;
using System.IO.Compression;
using KvmTyped.Formats.Elf;
using ZstdSharp;

namespace KvmTyped.Dwarf;

/// <summary>The DWARF sections of an ELF file that type information needs, ready to read: in place in the file's map
/// when stored plain (read once into memory when the file is read by position), otherwise decompressed (SHF_COMPRESSED with zlib or zstd, or the older <c>.zdebug_*</c> form that
/// <c>gcc -gz=zlib-gnu</c> writes), and, in a relocatable object (<c>gcc -c</c>), with its relocations applied.</summary>
/// <remarks>
/// <para>Relocations: in an object file the offsets a <c>.debug_info</c> entry holds into <c>.debug_str</c>,
/// <c>.debug_line_str</c>, <c>.debug_abbrev</c> and <c>.debug_str_offsets</c> may be left to the linker. RELA targets
/// (x86-64, AArch64, RISC-V, POWER, s390) leave zeros in place and put the offset in the addend; REL targets (i386,
/// 32-bit ARM) keep it in place. Both are applied here for the absolute 32- and 64-bit data relocations of the machines
/// listed in <see cref="AbsoluteRelocationWidth"/>: those are the only kinds that land on what this reader reads
/// (others, such as the TLS offsets inside location expressions, are left alone). Linked files (executables, vmlinux)
/// already carry the final values, so their relocation sections (a kernel keeps them for KASLR) are not used.</para>
/// <para>Several sections of one name, as an object file with COMDAT type units has, are joined in section order,
/// and relocations against the later pieces are moved by the length of the pieces before them.</para>
/// </remarks>
internal sealed class DwarfSections
{
    /// <summary>The largest section accepted after decompression (the amd64 kernel's .debug_info is 174 MB).</summary>
    public const long MaxSectionLength = 1L << 30;

    /// <summary>The most relocation entries applied to one section.</summary>
    public const long MaxRelocations = 1L << 26;

    private const uint ShtRela = 4;
    private const uint ShtRel = 9;
    private const ushort EtRel = 1;
    private const ulong ShfCompressed = 0x800;
    private const uint ChZlib = 1;
    private const uint ChZstd = 2;

    /// <summary>The most bytes one byte of a zlib stream decompresses to: deflate's limit is 1032 to 1 (a 258-byte
    /// match in one bit or so), for long streams; short ones get less.</summary>
    public const ulong MaxZlibRatio = 1032;

    /// <summary>The most bytes one byte of a zstd frame decompresses to: an RLE block of a 3-byte header and one byte
    /// stands for at most 128 KiB, i.e. 32768 to 1.</summary>
    public const ulong MaxZstdRatio = 32768;

    private static readonly string[] Wanted = ["info", "abbrev", "str", "line_str", "str_offsets", "types"];

    private DwarfSections(string path, ElfImage image, Dictionary<string, DwarfSection> sections)
    {
        Path = path;
        Image = image;
        Info = sections[".debug_info"];
        Abbrev = sections[".debug_abbrev"];
        Str = sections[".debug_str"];
        LineStr = sections[".debug_line_str"];
        StrOffsets = sections[".debug_str_offsets"];
        Types = sections[".debug_types"];
    }

    /// <summary>The file, as named in messages.</summary>
    public string Path { get; }

    /// <summary>The ELF image the sections come from.</summary>
    public ElfImage Image { get; }

    /// <summary>Whether the file is big-endian (DWARF fields are in the file's byte order).</summary>
    public bool BigEndian => Image.BigEndian;

    /// <summary><c>.debug_info</c>: compile, partial and (DWARF 5) type units.</summary>
    public DwarfSection Info { get; }

    /// <summary><c>.debug_abbrev</c>.</summary>
    public DwarfSection Abbrev { get; }

    /// <summary><c>.debug_str</c> (DW_FORM_strp, and strx through <see cref="StrOffsets"/>).</summary>
    public DwarfSection Str { get; }

    /// <summary><c>.debug_line_str</c> (DW_FORM_line_strp, DWARF 5).</summary>
    public DwarfSection LineStr { get; }

    /// <summary><c>.debug_str_offsets</c> (DW_FORM_strx*, DWARF 5).</summary>
    public DwarfSection StrOffsets { get; }

    /// <summary><c>.debug_types</c>: the type units of DWARF 4 (<c>-fdebug-types-section</c>).</summary>
    public DwarfSection Types { get; }

    /// <summary>Whether the ELF file has a <c>.debug_info</c> (or <c>.zdebug_info</c>) section.</summary>
    public static bool HasDebugInfo(ElfImage image) =>
        image.Sections.Any(s => s.Name is ".debug_info" or ".zdebug_info" && s.Type != ElfConstants.ShtNobits && s.Size > 0);

    /// <summary>Reads the sections; null when the file has no DWARF (no <c>.debug_info</c>).</summary>
    /// <exception cref="KvmFormatException">A section lies outside the file, does not decompress, or a relocation is bad.</exception>
    public static DwarfSections? Load(ElfImage image)
    {
        var path = image.File.Path;
        if (!HasDebugInfo(image))
            return null;
        var pieces = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (int i = 0; i < image.Sections.Count; i++)
        {
            var s = image.Sections[i];
            string? name = s.Name.StartsWith(".debug_", StringComparison.Ordinal) ? s.Name
                : s.Name.StartsWith(".zdebug_", StringComparison.Ordinal) ? ".debug_" + s.Name[".zdebug_".Length..] : null;
            if (name is null || Array.IndexOf(Wanted, name[".debug_".Length..]) < 0 || s.Type == ElfConstants.ShtNobits)
                continue;
            if (!pieces.TryGetValue(name, out var list))
                pieces[name] = list = [];
            list.Add(i);
        }

        bool relocatable = image.Type == EtRel;
        var relocations = relocatable ? FindRelocations(image) : [];
        var result = new Dictionary<string, DwarfSection>(StringComparer.Ordinal);
        // Where each loaded ELF section starts in its joined DWARF section, for relocations against it.
        var pieceBase = new Dictionary<int, long>();
        var contents = new Dictionary<string, List<(int Index, byte[]? Data)>>(StringComparer.Ordinal);
        foreach (var w in Wanted)
        {
            var name = ".debug_" + w;
            if (!pieces.TryGetValue(name, out var list))
            {
                result[name] = DwarfSection.Missing(path, name);
                continue;
            }
            // In place only from a memory map: a file read by position would copy the section on every access.
            bool inPlace = image.File.IsMapped && list.Count == 1 && !IsCompressed(image, list[0]) && !relocations.ContainsKey(list[0]);
            if (inPlace)
            {
                var s = image.Sections[list[0]];
                CheckInFile(image, s, name);
                if (s.Size > MaxSectionLength)
                    throw new KvmFormatException(path, s.Offset, $"{s.Name} is {s.Size} bytes, more than {MaxSectionLength}");
                result[name] = DwarfSection.Mapped(path, name, image.File, s.Offset, (int)s.Size);
                pieceBase[list[0]] = 0;
                continue;
            }
            var parts = new List<(int, byte[]?)>();
            long total = 0;
            foreach (var index in list)
            {
                var data = ReadContents(image, index, name);
                pieceBase[index] = total;
                total += data.Length;
                if (total > MaxSectionLength)
                    throw new KvmFormatException(path, null, $"{name} sections add up to more than {MaxSectionLength} bytes");
                parts.Add((index, data));
            }
            contents[name] = parts;
        }

        foreach (var (name, parts) in contents)
        {
            foreach (var (index, data) in parts)
            {
                if (relocations.TryGetValue(index, out var rels))
                    foreach (var rel in rels)
                        ApplyRelocations(image, rel, index, data!, pieceBase);
            }
            byte[] joined;
            if (parts.Count == 1)
                joined = parts[0].Data!;
            else
            {
                joined = new byte[parts.Sum(p => p.Data!.Length)];
                int at = 0;
                foreach (var (_, data) in parts)
                {
                    data!.CopyTo(joined, at);
                    at += data.Length;
                }
            }
            result[name] = DwarfSection.InMemory(path, name, joined);
        }
        return new DwarfSections(path, image, result);
    }

    private static bool IsCompressed(ElfImage image, int index)
    {
        var s = image.Sections[index];
        return (s.Flags & ShfCompressed) != 0 || s.Name.StartsWith(".zdebug_", StringComparison.Ordinal);
    }

    private static void CheckInFile(ElfImage image, ElfSection s, string what)
    {
        if (!image.File.Contains(s.Offset, s.Size))
            throw new KvmFormatException(image.File.Path, s.Offset, $"{s.Name} [0x{s.Offset:x}, +0x{s.Size:x}) lies outside the {image.File.Length}-byte file");
        if (s.Size > MaxSectionLength)
            throw new KvmFormatException(image.File.Path, s.Offset, $"{what}: the stored section is {s.Size} bytes, more than {MaxSectionLength}");
    }

    /// <summary>The contents of one section, decompressed when compressed, as a fresh array.</summary>
    private static byte[] ReadContents(ElfImage image, int index, string name)
    {
        var s = image.Sections[index];
        var path = image.File.Path;
        CheckInFile(image, s, name);
        var raw = image.File.Unchecked(s.Offset, (int)s.Size);
        if ((s.Flags & ShfCompressed) != 0)
        {
            // Elf32_Chdr {ch_type, ch_size, ch_addralign} / Elf64_Chdr {ch_type, ch_reserved, ch_size, ch_addralign}.
            int headerSize = image.Is64 ? 24 : 12;
            if (raw.Length < headerSize)
                throw new KvmFormatException(path, s.Offset, $"{s.Name} is compressed (SHF_COMPRESSED) but shorter than its {headerSize}-byte header");
            var r = new FieldReader(raw, image.BigEndian);
            uint type = r.U32(0);
            ulong size = image.Is64 ? r.U64(8) : r.U32(4);
            return Decompress(path, s, type, size, raw[headerSize..], s.Offset + headerSize);
        }
        if (s.Name.StartsWith(".zdebug_", StringComparison.Ordinal))
        {
            // "ZLIB", then the uncompressed size as 8 big-endian bytes, then a zlib stream (binutils' older format).
            if (raw.Length < 12 || !raw[..4].SequenceEqual("ZLIB"u8))
                throw new KvmFormatException(path, s.Offset, $"{s.Name} does not start with \"ZLIB\" and a size");
            return Decompress(path, s, ChZlib, BinaryPrimitives.ReadUInt64BigEndian(raw[4..]), raw[12..], s.Offset + 12);
        }
        return raw.ToArray();
    }

    private static unsafe byte[] Decompress(string path, ElfSection s, uint type, ulong size, ReadOnlySpan<byte> data, long dataOffset)
    {
        if (size > MaxSectionLength)
            throw new KvmFormatException(path, s.Offset, $"{s.Name} claims to decompress to {size} bytes, more than {MaxSectionLength}");
        // The claimed size is allocated at once: it must first be one the stored bytes can produce, so that a few
        // bytes claiming a section of a gigabyte cost nothing.
        var ratio = type switch
        {
            ChZlib => MaxZlibRatio,
            ChZstd => MaxZstdRatio,
            _ => throw new KvmFormatException(path, s.Offset, $"{s.Name}: unknown compression type {type} (known: 1 zlib, 2 zstd)"),
        };
        if (size > (ulong)data.Length * ratio)
            throw new KvmFormatException(path, dataOffset, $"{s.Name} claims to decompress to {size} bytes, more than its {data.Length} compressed bytes can hold (at most {ratio} times as many)");
        var output = GC.AllocateUninitializedArray<byte>((int)size);
        try
        {
            switch (type)
            {
                case ChZlib:
                {
                    fixed (byte* p = data)
                    {
                        using var input = new UnmanagedMemoryStream(p, data.Length);
                        using var z = new ZLibStream(input, CompressionMode.Decompress);
                        int total = 0;
                        while (total < output.Length)
                        {
                            int n = z.Read(output, total, output.Length - total);
                            if (n == 0)
                                throw new KvmFormatException(path, dataOffset, $"{s.Name}: zlib data ends after {total} of the {size} bytes its header promises");
                            total += n;
                        }
                        if (z.ReadByte() >= 0)
                            throw new KvmFormatException(path, dataOffset, $"{s.Name}: zlib data decompresses to more than the {size} bytes its header promises");
                    }
                    return output;
                }
                case ChZstd:
                {
                    using var zstd = new Decompressor();
                    if (!zstd.TryUnwrap(data, output, out int written))
                        throw new KvmFormatException(path, dataOffset, $"{s.Name}: zstd data decompresses to more than the {size} bytes its header promises");
                    if (written != output.Length)
                        throw new KvmFormatException(path, dataOffset, $"{s.Name}: zstd data decompresses to {written} bytes, not the {size} its header promises");
                    return output;
                }
                default:
                    throw new KvmFormatException(path, s.Offset, $"{s.Name}: unknown compression type {type} (known: 1 zlib, 2 zstd)");
            }
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ZstdException)
        {
            throw new KvmFormatException(path, dataOffset, $"{s.Name}: compressed data is damaged ({e.Message})");
        }
    }

    /// <summary>The REL/RELA sections of an object file, by the index of the section they apply to.</summary>
    private static Dictionary<int, List<int>> FindRelocations(ElfImage image)
    {
        var result = new Dictionary<int, List<int>>();
        for (int i = 0; i < image.Sections.Count; i++)
        {
            var s = image.Sections[i];
            if (s.Type is not (ShtRel or ShtRela) || s.Info == 0 || s.Info >= image.Sections.Count)
                continue;
            var target = image.Sections[(int)s.Info];
            if (!target.Name.StartsWith(".debug_", StringComparison.Ordinal) && !target.Name.StartsWith(".zdebug_", StringComparison.Ordinal))
                continue;
            if (!result.TryGetValue((int)s.Info, out var list))
                result[(int)s.Info] = list = [];
            list.Add(i);
        }
        return result;
    }

    /// <summary>The width in bytes written by an absolute data relocation of <paramref name="machine"/>, or 0 for a
    /// relocation type this reader leaves alone. Null when the machine is not known here.</summary>
    internal static int? AbsoluteRelocationWidth(ushort machine, uint type) => machine switch
    {
        3 => type == 1 ? 4 : 0,                                          // EM_386: R_386_32
        62 => type switch { 1 => 8, 10 or 11 => 4, _ => 0 },             // EM_X86_64: R_X86_64_64, _32, _32S
        183 => type switch { 257 => 8, 258 => 4, _ => 0 },               // EM_AARCH64: R_AARCH64_ABS64, ABS32
        40 => type == 2 ? 4 : 0,                                         // EM_ARM: R_ARM_ABS32
        243 => type switch { 1 => 4, 2 => 8, _ => 0 },                   // EM_RISCV: R_RISCV_32, R_RISCV_64
        21 => type switch { 1 => 4, 38 => 8, _ => 0 },                   // EM_PPC64: R_PPC64_ADDR32, ADDR64
        20 => type == 1 ? 4 : 0,                                         // EM_PPC: R_PPC_ADDR32
        22 => type switch { 4 => 4, 22 => 8, _ => 0 },                   // EM_S390: R_390_32, R_390_64
        _ => null,
    };

    private static void ApplyRelocations(ElfImage image, int relIndex, int targetIndex, byte[] data, Dictionary<int, long> pieceBase)
    {
        var path = image.File.Path;
        var rs = image.Sections[relIndex];
        var target = image.Sections[targetIndex];
        bool rela = rs.Type == ShtRela;
        bool is64 = image.Is64;
        bool be = image.BigEndian;
        int entSize = (is64 ? 16 : 8) + (rela ? (is64 ? 8 : 4) : 0);
        if (!image.File.Contains(rs.Offset, rs.Size) || rs.Size % entSize != 0)
            throw new KvmFormatException(path, rs.Offset, $"{rs.Name}: [0x{rs.Offset:x}, +0x{rs.Size:x}) is not a whole number of {entSize}-byte entries inside the file");
        long count = rs.Size / entSize;
        if (count > MaxRelocations)
            throw new KvmFormatException(path, rs.Offset, $"{rs.Name}: {count} relocations, more than {MaxRelocations}");
        if (count == 0)
            return;
        if (AbsoluteRelocationWidth(image.Machine, 0) is null)
            throw new KvmFormatException(path, rs.Offset, $"{rs.Name}: relocations of ELF machine {image.Machine} are not supported; link the object (or use one built for x86, ARM, RISC-V, POWER or s390)");
        if (rs.Link == 0 || rs.Link >= image.Sections.Count)
            throw new KvmFormatException(path, rs.Offset, $"{rs.Name}: its symbol table index {rs.Link} is not a section");
        var symtab = image.Sections[(int)rs.Link];
        int symSize = is64 ? 24 : 16;
        if (!image.File.Contains(symtab.Offset, symtab.Size))
            throw new KvmFormatException(path, symtab.Offset, $"{symtab.Name}: lies outside the file");
        long symCount = symtab.Size / symSize;
        var table = image.File.Unchecked(rs.Offset, (int)rs.Size);
        for (long i = 0; i < count; i++)
        {
            var e = new FieldReader(table.Slice((int)(i * entSize), entSize), be);
            long where;
            ulong sym;
            uint type;
            long addend = 0;
            if (is64)
            {
                where = (long)Math.Min(e.U64(0), long.MaxValue);
                ulong info = e.U64(8);
                sym = info >> 32;
                type = (uint)info;
                if (rela)
                    addend = unchecked((long)e.U64(16));
            }
            else
            {
                where = e.U32(0);
                uint info = e.U32(4);
                sym = info >> 8;
                type = info & 0xff;
                if (rela)
                    addend = unchecked((int)e.U32(8));
            }
            int width = AbsoluteRelocationWidth(image.Machine, type) ?? 0;
            if (width == 0)
                continue;
            long entryOffset = rs.Offset + i * entSize;
            if (where < 0 || where > data.Length - width)
                throw new KvmFormatException(path, entryOffset, $"{rs.Name}: relocation {i} at 0x{where:x} lies outside {target.Name} ({data.Length} bytes)");
            if (sym >= (ulong)symCount)
                throw new KvmFormatException(path, entryOffset, $"{rs.Name}: relocation {i} names symbol {sym}, beyond the {symCount} of {symtab.Name}");
            var s = new FieldReader(image.File.Unchecked(symtab.Offset + (long)sym * symSize, symSize), be);
            ulong value = is64 ? s.U64(8) : s.U32(4);
            ushort shndx = is64 ? s.U16(6) : s.U16(14);
            if (pieceBase.TryGetValue(shndx, out long pieceStart))
                value += (ulong)pieceStart;
            var slot = data.AsSpan((int)where, width);
            if (!rela)
                addend = width == 8 ? unchecked((long)Read64(slot, be)) : (long)Read32(slot, be);
            ulong result = unchecked(value + (ulong)addend);
            if (width == 8)
            {
                if (be) BinaryPrimitives.WriteUInt64BigEndian(slot, result); else BinaryPrimitives.WriteUInt64LittleEndian(slot, result);
            }
            else
            {
                if (be) BinaryPrimitives.WriteUInt32BigEndian(slot, (uint)result); else BinaryPrimitives.WriteUInt32LittleEndian(slot, (uint)result);
            }
        }
    }

    private static ulong Read64(ReadOnlySpan<byte> s, bool be) => be ? BinaryPrimitives.ReadUInt64BigEndian(s) : BinaryPrimitives.ReadUInt64LittleEndian(s);

    private static uint Read32(ReadOnlySpan<byte> s, bool be) => be ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);
}
