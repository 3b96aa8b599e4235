using KvmTyped.IO;

namespace KvmTyped.Formats.Kdump;

/// <summary>The bytes of a kdump file as makedumpfile lays them out (the "plain" file), whether the file on
/// disk is plain or flattened. Reads are positional and thread-safe, through the file as the open layer opened it
/// (<see cref="RandomAccessFile"/>: mapped when it can be), so a corefile is opened once.</summary>
internal abstract class KdumpStorage : IDisposable
{
    private readonly RandomAccessFile _file;

    protected KdumpStorage(RandomAccessFile file)
    {
        _file = file;
        Path = file.Path;
        FileLength = file.Length;
    }

    /// <summary>The file on disk.</summary>
    public string Path { get; }

    /// <summary>Length of the file on disk.</summary>
    public long FileLength { get; }

    /// <summary>Length of the plain file: reads at or past it fail.</summary>
    public abstract long Length { get; }

    /// <summary>How many plain-file bytes the file really holds (for a flattened file, less than
    /// <see cref="Length"/> when records leave holes): no structure can be larger.</summary>
    public virtual long BackedLength => Length;

    /// <summary>Whether the file on disk is makedumpfile's flattened stream.</summary>
    public abstract bool IsFlattened { get; }

    /// <summary>Reads all of <paramref name="destination"/> at plain-file <paramref name="offset"/>; false when
    /// any byte is not in the file.</summary>
    public abstract bool TryRead(long offset, Span<byte> destination);

    /// <summary>Writes all of <paramref name="source"/> at plain-file <paramref name="offset"/>; false when any
    /// byte is not backed by the file (nothing is written then).</summary>
    public abstract bool TryWrite(long offset, ReadOnlySpan<byte> source);

    /// <summary>Reads or throws a <see cref="KvmFormatException"/> naming the offset and <paramref name="what"/>.</summary>
    public void ReadOrThrow(long offset, Span<byte> destination, string what)
    {
        if (!TryRead(offset, destination))
            throw new KvmFormatException(Path, offset, $"{what} ({destination.Length} bytes) lies past the end of the file");
    }

    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes at a file (not plain) offset.</summary>
    protected bool ReadFileExact(long fileOffset, Span<byte> destination) =>
        fileOffset >= 0 && fileOffset <= FileLength - destination.Length && _file.TryCopy(fileOffset, destination);

    /// <summary>Writes <paramref name="source"/> at a file (not plain) offset.</summary>
    protected void WriteFile(long fileOffset, ReadOnlySpan<byte> source) => _file.Write(fileOffset, source);

    /// <inheritdoc/>
    public void Dispose() => _file.Dispose();
}

/// <summary>A plain kdump file: plain offsets are file offsets.</summary>
internal sealed class PlainKdumpStorage : KdumpStorage
{
    public PlainKdumpStorage(RandomAccessFile file) : base(file) { }

    public override long Length => FileLength;

    public override bool IsFlattened => false;

    public override bool TryRead(long offset, Span<byte> destination) => ReadFileExact(offset, destination);

    public override bool TryWrite(long offset, ReadOnlySpan<byte> source)
    {
        if (offset < 0 || offset > FileLength - source.Length)
            return false;
        WriteFile(offset, source);
        return true;
    }
}
