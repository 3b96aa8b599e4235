using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;

namespace KvmTyped.Formats.Kdump;

/// <summary>The bytes of a kdump file as makedumpfile lays them out (the "plain" file), whether the file on
/// disk is plain or flattened. Reads are positional and thread-safe.</summary>
/// <remarks>The file is memory-mapped read-only when it can be (every read is then a copy, no system call);
/// otherwise, and for writes, positional reads and writes on the handle are used. A mapped read holds a
/// reference on the view, so closing the file while another thread reads cannot unmap memory under it.</remarks>
internal abstract unsafe class KdumpStorage : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;

    protected KdumpStorage(string path, SafeFileHandle handle, long fileLength)
    {
        Path = path;
        Handle = handle;
        FileLength = fileLength;
        if (fileLength > 0 && Environment.Is64BitProcess)
        {
            try
            {
                _map = MemoryMappedFile.CreateFromFile(handle, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
                _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                byte* p = null;
                _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
                _base = p + _view.PointerOffset;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                _view?.Dispose();
                _map?.Dispose();
                _view = null;
                _map = null;
                _base = null;
            }
        }
    }

    /// <summary>The file on disk.</summary>
    public string Path { get; }

    /// <summary>The open handle (closed by <see cref="Dispose"/>).</summary>
    protected SafeFileHandle Handle { get; }

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
    protected bool ReadFileExact(long fileOffset, Span<byte> destination)
    {
        if (fileOffset < 0 || fileOffset > FileLength - destination.Length)
            return false;
        if (_base is not null)
        {
            var view = _view!.SafeMemoryMappedViewHandle;
            bool added = false;
            try
            {
                view.DangerousAddRef(ref added);
                new ReadOnlySpan<byte>(_base + fileOffset, destination.Length).CopyTo(destination);
                return true;
            }
            catch (ObjectDisposedException)
            {
                return false;
            }
            finally
            {
                if (added)
                    view.DangerousRelease();
            }
        }
        while (destination.Length > 0)
        {
            int n = RandomAccess.Read(Handle, destination, fileOffset);
            if (n <= 0)
                return false;
            destination = destination[n..];
            fileOffset += n;
        }
        return true;
    }

    /// <summary>Writes <paramref name="source"/> at a file (not plain) offset.</summary>
    protected void WriteFile(long fileOffset, ReadOnlySpan<byte> source) => RandomAccess.Write(Handle, source, fileOffset);

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
        Handle.Dispose();
    }
}

/// <summary>A plain kdump file: plain offsets are file offsets.</summary>
internal sealed class PlainKdumpStorage : KdumpStorage
{
    public PlainKdumpStorage(string path, SafeFileHandle handle, long fileLength) : base(path, handle, fileLength) { }

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
