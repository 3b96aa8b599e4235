using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace KvmTyped.Btf;

/// <summary>Loads BTF from a file: a raw blob (/sys/kernel/btf/vmlinux, /sys/kernel/btf/&lt;module&gt;, or a file
/// written by <c>pahole --btf_encode_detached</c>), or the <c>.BTF</c> section of an ELF file (vmlinux, a module).</summary>
/// <remarks>The ELF section headers are read directly (ELF32 and ELF64, either byte order, with the extended
/// section count and string-table index of section 0), so only the header table, the section-name table and
/// the BTF bytes are read — not the whole (often 70 MB+) image — and every count is checked against the file.</remarks>
internal static class BtfReader
{
    /// <summary>The largest BTF blob accepted (vmlinux BTF is a few MiB).</summary>
    public const long MaxBlobLength = 512L << 20;

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
        {
            handle.Dispose();
            return ReadElfSection(path);
        }
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

    /// <summary>The .BTF section of an ELF file, found through the same header reader as namelists and cores.</summary>
    private static (byte[], long) ReadElfSection(string path)
    {
        using var file = IO.RandomAccessFile.Open(path, writable: false);
        var image = Formats.Elf.ElfImage.Parse(file);
        if (image.Sections.Count == 0)
            throw new KvmFormatException(path, null, "ELF file has no section headers, so no .BTF section");
        const ulong ShfCompressed = 0x800;
        foreach (var sec in image.Sections)
        {
            if (sec.Name != ".BTF")
                continue;
            if (sec.Type == Formats.Elf.ElfConstants.ShtNobits)
                throw new KvmFormatException(path, null, "the ELF file's .BTF section has no contents (SHT_NOBITS)");
            if ((sec.Flags & ShfCompressed) != 0)
                throw new KvmFormatException(path, null, "the ELF file's .BTF section is compressed (SHF_COMPRESSED), which this reader does not unpack");
            if (sec.Size > MaxBlobLength)
                throw new KvmFormatException(path, sec.Offset, $"the .BTF section's size {sec.Size} exceeds {MaxBlobLength} bytes");
            if (!file.Contains(sec.Offset, sec.Size))
                throw new KvmFormatException(path, sec.Offset, $".BTF section [0x{sec.Offset:x}, +0x{sec.Size:x}) lies outside the {file.Length}-byte file");
            return (file.Unchecked(sec.Offset, (int)sec.Size).ToArray(), sec.Offset);
        }
        throw new KvmFormatException(path, null, "the ELF file has no .BTF section (a kernel built without CONFIG_DEBUG_INFO_BTF: make BTF for it with pahole --btf_encode_detached)");
    }

    private static void ReadExactly(SafeFileHandle handle, string path, Span<byte> buffer, long offset)
    {
        if (ReadAt(handle, buffer, offset) != buffer.Length)
            throw new KvmFormatException(path, offset, $"file ends inside {buffer.Length} bytes read here");
    }

}
