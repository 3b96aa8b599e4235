using KvmTyped.IO;

namespace KvmTyped.Dwarf;

/// <summary>The bytes of one DWARF section: a window of the file's memory map when it is stored plain, or an array when
/// it had to be decompressed, relocated or pieced together (or the file is read by position). Errors name the section and the offset inside it.</summary>
internal sealed class DwarfSection
{
    private readonly RandomAccessFile? _file;
    private readonly long _offset;
    private readonly byte[]? _data;

    private DwarfSection(string path, string name, RandomAccessFile? file, long offset, byte[]? data, int length, long? fileOffset)
    {
        Path = path;
        Name = name;
        _file = file;
        _offset = offset;
        _data = data;
        Length = length;
        FileOffset = fileOffset;
    }

    /// <summary>The file the section belongs to, as named in error messages.</summary>
    public string Path { get; }

    /// <summary>The section's name without the compression prefix, e.g. <c>.debug_info</c>.</summary>
    public string Name { get; }

    /// <summary>The length of the (decompressed) contents.</summary>
    public int Length { get; }

    /// <summary>Where the contents start in the file when they are stored there as they are read; null when they were
    /// decompressed, relocated or joined from several sections.</summary>
    public long? FileOffset { get; }

    /// <summary>The contents. For a mapped section this is a view of the map: valid while the file is open.</summary>
    public ReadOnlySpan<byte> Span => _data is not null ? _data : _file is not null ? _file.Unchecked(_offset, Length) : default;

    /// <summary>A section standing in for one the file does not have.</summary>
    public static DwarfSection Missing(string path, string name) => new(path, name, null, 0, null, 0, null);

    /// <summary>A section read in place from a memory-mapped file (the caller has checked it lies inside and that the
    /// file is mapped, so that <see cref="Span"/> is a view, not a copy).</summary>
    public static DwarfSection Mapped(string path, string name, RandomAccessFile file, long offset, int length) =>
        new(path, name, file, offset, null, length, offset);

    /// <summary>A section held in memory.</summary>
    public static DwarfSection InMemory(string path, string name, byte[] data) => new(path, name, null, 0, data, data.Length, null);

    /// <summary>An error at <paramref name="offset"/> in this section.</summary>
    public KvmFormatException Error(long offset, string what) =>
        new(Path, FileOffset is long f ? f + offset : null, $"{Name}+0x{offset:x}: {what}");
}
