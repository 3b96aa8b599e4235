using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace KvmTyped.Btf;

/// <summary>Loads BTF from a file: a raw blob (/sys/kernel/btf/vmlinux, /sys/kernel/btf/&lt;module&gt;, or a file
/// written by <c>pahole --btf_encode_detached</c>), or the <c>.BTF</c> section of an ELF file (vmlinux, a module).</summary>
/// <remarks>The ELF section headers are read directly (ELF32 and ELF64, either byte order, with the extended
/// section count and string-table index of section 0), so only the header table, the section-name table and
/// the BTF bytes are read — not the whole (often 70 MB+) image — and every count is checked against the file.</remarks>
public static class BtfReader
{
    /// <summary>The largest BTF blob accepted (vmlinux BTF is a few MiB).</summary>
    public const long MaxBlobLength = 512L << 20;

    private const long MaxSectionHeaderBytes = 64L << 20;
    private const long MaxSectionNamesLength = 16L << 20;

    /// <summary>Reads and parses the BTF in <paramref name="path"/>.</summary>
    /// <param name="path">A raw BTF file or an ELF file with a .BTF section.</param>
    /// <param name="baseTypes">For split (module) BTF: the vmlinux types it continues.</param>
    /// <param name="pointerSize">The pointer size (4 or 8) when known; otherwise taken from the blob's <c>long</c>.</param>
    /// <exception cref="KvmFormatException">The file is neither raw BTF nor an ELF file with a .BTF section, or is damaged.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static BtfTypes Load(string path, BtfTypes? baseTypes = null, int? pointerSize = null)
    {
        var (blob, offset) = ReadBlob(path);
        return BtfTypes.Parse(blob, baseTypes, path, offset, pointerSize);
    }

    /// <summary>Reads the BTF bytes of a raw BTF file or of an ELF file's .BTF section.</summary>
    /// <returns>The blob and its offset in the file.</returns>
    public static (byte[] Blob, long FileOffset) ReadBlob(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Span<byte> head = stackalloc byte[64];
        int got = ReadAt(handle, head, 0);
        head = head[..got];
        if (got >= 4 && head[..4].SequenceEqual("\u007fELF"u8))
            return ReadElfSection(handle, path, head);
        if (got >= 2 && (BinaryPrimitives.ReadUInt16LittleEndian(head) == BtfTypes.Magic || BinaryPrimitives.ReadUInt16BigEndian(head) == BtfTypes.Magic))
            return (ReadToEnd(handle, path), 0);
        throw new KvmFormatException(path, 0, "neither raw BTF (magic 0xeb9f) nor an ELF file");
    }

    private static int ReadAt(SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = RandomAccess.Read(handle, buffer[total..], offset + total);
            if (n == 0)
                break;
            total += n;
        }
        return total;
    }

    private static byte[] ReadToEnd(SafeFileHandle handle, string path)
    {
        // sysfs reports sizes that may not be exact; read until end of file, within the cap.
        var buffer = new byte[Math.Clamp(RandomAccess.GetLength(handle), 4096, MaxBlobLength) + 1];
        int total = 0;
        while (true)
        {
            if (total == buffer.Length)
            {
                if (buffer.Length > MaxBlobLength)
                    throw new KvmFormatException(path, null, $"BTF file is larger than {MaxBlobLength} bytes");
                Array.Resize(ref buffer, (int)Math.Min((long)buffer.Length * 2, MaxBlobLength + 1));
            }
            int n = RandomAccess.Read(handle, buffer.AsSpan(total), total);
            if (n == 0)
                break;
            total += n;
        }
        if (total > MaxBlobLength)
            throw new KvmFormatException(path, null, $"BTF file is larger than {MaxBlobLength} bytes");
        Array.Resize(ref buffer, total);
        return buffer;
    }

    private static (byte[], long) ReadElfSection(SafeFileHandle handle, string path, ReadOnlySpan<byte> head)
    {
        long fileLength = RandomAccess.GetLength(handle);
        if (head.Length < 52)
            throw new KvmFormatException(path, 0, "ELF header truncated");
        bool is64 = head[4] switch
        {
            1 => false,
            2 => true,
            _ => throw new KvmFormatException(path, 4, $"ELF class {head[4]} is neither 1 (32-bit) nor 2 (64-bit)"),
        };
        bool bigEndian = head[5] switch
        {
            1 => false,
            2 => true,
            _ => throw new KvmFormatException(path, 5, $"ELF data encoding {head[5]} is neither 1 (little-endian) nor 2 (big-endian)"),
        };
        if (is64 && head.Length < 64)
            throw new KvmFormatException(path, 0, "ELF64 header truncated");
        ushort U16(ReadOnlySpan<byte> s) => bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(s) : BinaryPrimitives.ReadUInt16LittleEndian(s);
        uint U32(ReadOnlySpan<byte> s) => bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);
        ulong U64(ReadOnlySpan<byte> s) => bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(s) : BinaryPrimitives.ReadUInt64LittleEndian(s);

        ulong shoff = is64 ? U64(head[0x28..]) : U32(head[0x20..]);
        int shentsize = U16(head[(is64 ? 0x3A : 0x2E)..]);
        long shnum = U16(head[(is64 ? 0x3C : 0x30)..]);
        int shstrndx = U16(head[(is64 ? 0x3E : 0x32)..]);
        int minEntry = is64 ? 64 : 40;
        if (shoff == 0)
            throw new KvmFormatException(path, null, "ELF file has no section headers, so no .BTF section");
        if (shentsize < minEntry)
            throw new KvmFormatException(path, is64 ? 0x3A : 0x2E, $"ELF section header size {shentsize} is smaller than {minEntry}");
        if (shoff > (ulong)fileLength || (ulong)fileLength - shoff < (ulong)shentsize)
            throw new KvmFormatException(path, is64 ? 0x28 : 0x20, $"ELF section headers at 0x{shoff:x} lie outside the {fileLength}-byte file");

        var first = new byte[shentsize];
        ReadExactly(handle, path, first, (long)shoff);
        if (shnum == 0)
            shnum = is64 ? (long)Math.Min(U64(first.AsSpan(32)), long.MaxValue) : U32(first.AsSpan(20));
        if (shstrndx == 0xffff)
            shstrndx = (int)Math.Min(U32(first.AsSpan(is64 ? 40 : 24)), int.MaxValue);
        long tableBytes = shnum * shentsize;
        if (shnum > MaxSectionHeaderBytes / shentsize || (long)shoff + tableBytes > fileLength)
            throw new KvmFormatException(path, (long)shoff, $"ELF section header table of {shnum} entries runs past the end of the {fileLength}-byte file");
        if (shstrndx >= shnum)
            throw new KvmFormatException(path, is64 ? 0x3E : 0x32, $"ELF section-name table index {shstrndx} is not below the section count {shnum}");

        var table = new byte[tableBytes];
        ReadExactly(handle, path, table, (long)shoff);
        (uint Name, uint Type, ulong Flags, ulong Offset, ulong Size) Section(long i)
        {
            var s = table.AsSpan((int)(i * shentsize), shentsize);
            return is64
                ? (U32(s), U32(s[4..]), U64(s[8..]), U64(s[24..]), U64(s[32..]))
                : (U32(s), U32(s[4..]), U32(s[8..]), U32(s[16..]), U32(s[20..]));
        }
        long SectionHeaderOffset(long i) => (long)shoff + i * shentsize;

        var names = Section(shstrndx);
        if (names.Size > MaxSectionNamesLength || names.Offset > (ulong)fileLength || names.Size > (ulong)fileLength - names.Offset)
            throw new KvmFormatException(path, SectionHeaderOffset(shstrndx), $"ELF section-name table [0x{names.Offset:x}, +0x{names.Size:x}) lies outside the file or is too large");
        var nameBytes = new byte[names.Size];
        ReadExactly(handle, path, nameBytes, (long)names.Offset);

        const uint ShtNobits = 8;
        for (long i = 1; i < shnum; i++)
        {
            var sec = Section(i);
            if (sec.Name >= (ulong)nameBytes.Length)
                continue;
            var name = nameBytes.AsSpan((int)sec.Name);
            int end = name.IndexOf((byte)0);
            if (end < 0 || !name[..end].SequenceEqual(".BTF"u8))
                continue;
            if (sec.Type == ShtNobits)
                throw new KvmFormatException(path, SectionHeaderOffset(i), "the ELF file's .BTF section has no contents (SHT_NOBITS)");
            const ulong ShfCompressed = 0x800;
            if ((sec.Flags & ShfCompressed) != 0)
                throw new KvmFormatException(path, SectionHeaderOffset(i), "the ELF file's .BTF section is compressed (SHF_COMPRESSED), which this reader does not unpack");
            if (sec.Size > MaxBlobLength)
                throw new KvmFormatException(path, SectionHeaderOffset(i), $"the .BTF section's size {sec.Size} exceeds {MaxBlobLength} bytes");
            if (sec.Offset > (ulong)fileLength || sec.Size > (ulong)fileLength - sec.Offset)
                throw new KvmFormatException(path, SectionHeaderOffset(i), $".BTF section [0x{sec.Offset:x}, +0x{sec.Size:x}) lies outside the {fileLength}-byte file");
            var blob = new byte[sec.Size];
            ReadExactly(handle, path, blob, (long)sec.Offset);
            return (blob, (long)sec.Offset);
        }
        throw new KvmFormatException(path, null, "the ELF file has no .BTF section (a kernel built without CONFIG_DEBUG_INFO_BTF: make BTF for it with pahole --btf_encode_detached)");
    }

    private static void ReadExactly(SafeFileHandle handle, string path, Span<byte> buffer, long offset)
    {
        if (ReadAt(handle, buffer, offset) != buffer.Length)
            throw new KvmFormatException(path, offset, $"file ends inside {buffer.Length} bytes read here");
    }

}
