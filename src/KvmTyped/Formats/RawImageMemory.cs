using System.Diagnostics.CodeAnalysis;
using KvmTyped.IO;

namespace KvmTyped.Formats;

/// <summary>A raw physical memory image: byte N of the file is physical address N.</summary>
internal sealed class RawImageMemory : IPhysicalMemory, IWriteCheck
{
    private readonly RandomAccessFile _file;

    internal RawImageMemory(RandomAccessFile file)
    {
        _file = file;
        Ranges = file.Length == 0 ? [] : [new PhysicalRange(0, (ulong)file.Length, Path.GetFileName(file.Path))];
    }

    /// <inheritdoc />
    public string FormatName => "raw";

    /// <inheritdoc />
    public IReadOnlyList<PhysicalRange> Ranges { get; }

    /// <inheritdoc />
    public bool IsWritable => _file.IsWritable;

    /// <inheritdoc />
    public bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        if (address > long.MaxValue || !_file.Contains((long)address, destination.Length))
        {
            failure = $"physical address 0x{address:x} is past the end of the image {_file.Path} (size 0x{_file.Length:x})";
            return false;
        }
        if (!_file.TryCopy((long)address, destination))
        {
            failure = $"{_file.Path} is closed";
            return false;
        }
        failure = null;
        return true;
    }

    /// <inheritdoc />
    string? IWriteCheck.WriteFailure(ulong address, ulong length) =>
        address <= long.MaxValue && length <= int.MaxValue && _file.Contains((long)address, (long)length) ? null
            : $"physical address 0x{address:x} is past the end of the image {_file.Path}";

    /// <inheritdoc />
    public void Write(ulong address, ReadOnlySpan<byte> source)
    {
        if (!IsWritable)
            throw new KvmWriteException(address, $"{_file.Path} is open read-only");
        if (address > long.MaxValue || !_file.Contains((long)address, source.Length))
            throw new KvmWriteException(address, $"physical address 0x{address:x} is past the end of the image {_file.Path}");
        _file.Write((long)address, source);
    }

    /// <inheritdoc />
    public void Dispose() => _file.Dispose();
}
