using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace KvmTyped.Tools;

/// <summary>The BTF of a target kernel file, and the machine its ELF header names (null for raw BTF).</summary>
/// <param name="Blob">The BTF bytes.</param>
/// <param name="ElfMachine">The normalized machine of an ELF file's e_machine, or null.</param>
internal sealed record KernelFileContents(byte[] Blob, string? ElfMachine);

/// <summary>Reads the BTF of a kernel file a project targets: raw BTF (a copy of /sys/kernel/btf/vmlinux,
/// <c>pahole --btf_encode_detached</c> output), or the <c>.BTF</c> section of an ELF file (vmlinux), either of them
/// gzip-compressed (a name ending in .gz, or the gzip magic). Only the ELF header, the section headers, the section-name
/// table and the BTF are read from an uncompressed ELF file; every count and offset is checked against the file and the
/// caps below. Shared by the build task and <c>kvmtyped schema check</c>, so both see the same kernel.</summary>
internal static class KernelFile
{
    /// <summary>The largest BTF blob accepted (a vmlinux's is a few MiB).</summary>
    public const long MaxBlobLength = 512L << 20;

    /// <summary>The most bytes a .gz kernel file may unpack to (a vmlinux is some hundreds of MiB at most).</summary>
    public const long MaxUnpackedLength = 2L << 30;

    /// <summary>The most section headers an ELF file may have.</summary>
    public const int MaxSections = 1 << 20;

    /// <summary>The longest section-name table read.</summary>
    public const long MaxSectionNamesLength = 16L << 20;

    /// <summary>Reads <paramref name="path"/>. Throws <see cref="KvmFormatException"/> naming the file and what was
    /// expected when it holds no BTF, or <see cref="IOException"/> when it cannot be read.</summary>
    public static KernelFileContents Load(string path)
    {
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Span<byte> magic = stackalloc byte[4];
        var got = RandomAccess.Read(file, magic, 0);
        if (got >= 2 && magic[0] == 0x1f && magic[1] == 0x8b)
        {
            var bytes = Gunzip(path);
            return FromSource(path, bytes.Length, (offset, buffer) => Copy(bytes, offset, buffer));
        }
        var length = RandomAccess.GetLength(file);
        return FromSource(path, length, (offset, buffer) => ReadFully(file, offset, buffer));
    }

    private static int Copy(byte[] bytes, long offset, Span<byte> buffer)
    {
        if (offset >= bytes.Length) return 0;
        var n = (int)Math.Min(buffer.Length, bytes.Length - offset);
        bytes.AsSpan((int)offset, n).CopyTo(buffer);
        return n;
    }

    private static int ReadFully(Microsoft.Win32.SafeHandles.SafeFileHandle file, long offset, Span<byte> buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = RandomAccess.Read(file, buffer[total..], offset + total);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    private static byte[] Gunzip(string path)
    {
        using var input = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var output = new MemoryStream();
        var buffer = new byte[1 << 20];
        int n;
        while ((n = input.Read(buffer)) > 0)
        {
            if (output.Length + n > MaxUnpackedLength)
                throw new KvmFormatException(path, null, $"unpacks to more than {MaxUnpackedLength} bytes, more than a kernel file");
            output.Write(buffer, 0, n);
        }
        return output.ToArray();
    }

    private delegate int Reader(long offset, Span<byte> buffer);

    private static KernelFileContents FromSource(string path, long length, Reader read)
    {
        Span<byte> head = stackalloc byte[64];
        var got = read(0, head);
        head = head[..got];
        if (got >= 4 && head[..4].SequenceEqual("\u007fELF"u8))
            return ReadElf(path, length, head, read);
        if (got >= 2 && (BinaryPrimitives.ReadUInt16LittleEndian(head) == 0xEB9F || BinaryPrimitives.ReadUInt16BigEndian(head) == 0xEB9F))
        {
            if (length > MaxBlobLength)
                throw new KvmFormatException(path, null, $"BTF file of {length} bytes is larger than {MaxBlobLength}");
            var blob = new byte[length];
            if (read(0, blob) != length)
                throw new KvmFormatException(path, null, "the file ended while it was read");
            return new KernelFileContents(blob, null);
        }
        throw new KvmFormatException(path, 0, "neither raw BTF (magic 0xeb9f) nor an ELF file (a kernel's vmlinux), gzip-compressed or not");
    }

    private static KernelFileContents ReadElf(string path, long length, ReadOnlySpan<byte> head, Reader read)
    {
        if (head.Length < 52)
            throw new KvmFormatException(path, 0, "ELF header truncated");
        var is64 = head[4] switch
        {
            1 => false,
            2 => true,
            _ => throw new KvmFormatException(path, 4, $"unknown ELF class {head[4]}"),
        };
        var bigEndian = head[5] switch
        {
            1 => false,
            2 => true,
            _ => throw new KvmFormatException(path, 5, $"unknown ELF byte order {head[5]}"),
        };
        if (is64 && head.Length < 64)
            throw new KvmFormatException(path, 0, "ELF64 header truncated");
        ushort U16(ReadOnlySpan<byte> s) => bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(s) : BinaryPrimitives.ReadUInt16LittleEndian(s);
        uint U32(ReadOnlySpan<byte> s) => bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);
        ulong U64(ReadOnlySpan<byte> s) => bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(s) : BinaryPrimitives.ReadUInt64LittleEndian(s);
        ulong Word(ReadOnlySpan<byte> s) => is64 ? U64(s) : U32(s);

        var machine = MachineName(U16(head[18..]));
        var shoff = is64 ? U64(head[40..]) : U32(head[32..]);
        int shentsize = U16(head[(is64 ? 58 : 46)..]);
        long shnum = U16(head[(is64 ? 60 : 48)..]);
        long shstrndx = U16(head[(is64 ? 62 : 50)..]);
        var minEntry = is64 ? 64 : 40;
        if (shoff == 0)
            throw new KvmFormatException(path, null, "the ELF file has no section headers, so no .BTF section");
        if (shentsize < minEntry)
            throw new KvmFormatException(path, is64 ? 58 : 46, $"section header size {shentsize} is smaller than {minEntry}");
        var entry = new byte[shentsize];
        void ReadEntry(long index)
        {
            var at = (long)shoff + index * shentsize;
            if (shoff > (ulong)length || at < 0 || at + shentsize > length || read(at, entry) != shentsize)
                throw new KvmFormatException(path, at, $"section header {index} lies outside the {length}-byte file");
        }
        // Extended numbering (ELF gABI): a count of 0 and an index of SHN_XINDEX live in section header 0.
        if (shnum == 0 || shstrndx == 0xffff)
        {
            ReadEntry(0);
            if (shnum == 0) shnum = (long)Word(entry.AsSpan(is64 ? 32 : 20));
            if (shstrndx == 0xffff) shstrndx = U32(entry.AsSpan(is64 ? 40 : 24));
        }
        if (shnum <= 0 || shnum > MaxSections)
            throw new KvmFormatException(path, null, $"section count {shnum} is outside 1..{MaxSections}");
        if (shstrndx >= shnum)
            throw new KvmFormatException(path, null, $"section-name table index {shstrndx} is not below the section count {shnum}");

        (uint Name, uint Type, ulong Flags, ulong Offset, ulong Size) Section(long index)
        {
            ReadEntry(index);
            var e = entry.AsSpan();
            return (U32(e), U32(e[4..]), Word(e[8..]), Word(e[(is64 ? 24 : 16)..]), Word(e[(is64 ? 32 : 20)..]));
        }
        byte[] Contents(long index, long cap, string what)
        {
            var s = Section(index);
            if (s.Type == 8)
                throw new KvmFormatException(path, null, $"the {what} section has no contents (SHT_NOBITS)");
            if (s.Size > (ulong)cap)
                throw new KvmFormatException(path, null, $"the {what} section's size {s.Size} exceeds {cap} bytes");
            if (s.Offset > (ulong)length || s.Size > (ulong)length - s.Offset)
                throw new KvmFormatException(path, (long)s.Offset, $"the {what} section [0x{s.Offset:x}, +0x{s.Size:x}) lies outside the {length}-byte file");
            var bytes = new byte[s.Size];
            if (read((long)s.Offset, bytes) != bytes.Length)
                throw new KvmFormatException(path, (long)s.Offset, $"the file ended inside the {what} section");
            return bytes;
        }

        var names = Contents(shstrndx, MaxSectionNamesLength, "section-name");
        for (long i = 1; i < shnum; i++)
        {
            var s = Section(i);
            if (s.Name >= names.Length)
                continue;
            var rest = names.AsSpan((int)s.Name);
            var end = rest.IndexOf((byte)0);
            if (end < 0 || !rest[..end].SequenceEqual(".BTF"u8))
                continue;
            const ulong ShfCompressed = 0x800;
            if ((s.Flags & ShfCompressed) != 0)
                throw new KvmFormatException(path, null, "the ELF file's .BTF section is compressed (SHF_COMPRESSED), which is not unpacked here");
            return new KernelFileContents(Contents(i, MaxBlobLength, ".BTF"), machine);
        }
        throw new KvmFormatException(path, null, "the ELF file has no .BTF section (a kernel built without CONFIG_DEBUG_INFO_BTF: make BTF for it with pahole --btf_encode_detached)");
    }

    /// <summary>The machine of an ELF e_machine value, in the names kernel digests use.</summary>
    public static string MachineName(int eMachine) => eMachine switch
    {
        3 => "i386",
        62 => "x86_64",
        183 => "aarch64",
        40 => "arm",
        243 => "riscv",
        8 => "mips",
        20 => "ppc",
        21 => "ppc64",
        22 => "s390",
        2 or 18 or 43 => "sparc",
        258 => "loongarch",
        _ => "elf-machine-" + eMachine.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>The release a kernel file's name implies: without a .gz and a .btf/.elf/.bin/.debug/.raw extension and a
    /// leading "vmlinux-" ("vmlinux-6.1.0-56-amd64.btf" → "6.1.0-56-amd64"). A release has dots of its own, so only
    /// those extensions are taken off.</summary>
    public static string ReleaseFromName(string path)
    {
        var name = Path.GetFileName(path);
        foreach (var ext in new[] { ".gz", ".btf", ".elf", ".bin", ".debug", ".raw" })
        {
            if (name.Length > ext.Length && name.EndsWith(ext, StringComparison.OrdinalIgnoreCase))
                name = name[..^ext.Length];
        }
        foreach (var prefix in new[] { "vmlinux-", "vmlinuz-", "btf-" })
        {
            if (name.Length > prefix.Length && name.StartsWith(prefix, StringComparison.Ordinal))
                return name[prefix.Length..];
        }
        return name;
    }

    /// <summary>A readable, single-line form of text from a file, for a digest line.</summary>
    internal static string OneLine(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
            sb.Append(char.IsControl(c) ? ' ' : c);
        return sb.ToString().Trim();
    }
}
