using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;

namespace KvmTyped.IO;

/// <summary>A file opened for random access: memory-mapped for reads, written with pwrite when opened read-write.</summary>
/// <remarks>The map is shared with the page cache, so a pwrite is seen by later reads through the map.
/// Nothing is read until asked for; a multi-GB dump costs only address space. As with any memory-mapped reader,
/// a file that another process truncates while it is open faults when the missing bytes are read: dumps are
/// expected to stay whole while open (the length checks at open protect against files that are short to begin with).</remarks>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;
    private int _disposed;

    // Readers in flight, plus one for the file itself while open: the map is released when this reaches 0, so a
    // close never unmaps memory a reader is copying from.
    private int _users = 1;

    private MappedFile(string path, SafeFileHandle handle, long length, bool writable)
    {
        Path = path;
        _handle = handle;
        Length = length;
        IsWritable = writable;
        if (length == 0)
            return;
        try
        {
            _map = MemoryMappedFile.CreateFromFile(handle, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _base = p + _view.PointerOffset;
        }
        catch
        {
            _view?.Dispose();
            _map?.Dispose();
            throw;
        }
    }

    /// <summary>The path the file was opened by.</summary>
    public string Path { get; }

    /// <summary>The file's length in bytes when opened.</summary>
    public long Length { get; }

    /// <summary>Whether <see cref="Write"/> is allowed.</summary>
    public bool IsWritable { get; }

    /// <summary>Opens a file; failures become <see cref="KvmOpenException"/> with a perror-style message.</summary>
    public static MappedFile Open(string path, bool writable)
    {
        SafeFileHandle? handle = null;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, writable ? FileAccess.ReadWrite : FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var length = RandomAccess.GetLength(handle);
            return new MappedFile(path, handle, length, writable);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            handle?.Dispose();
            throw new KvmOpenException($"{path}: {Describe(e, path)}", e);
        }
        catch
        {
            handle?.Dispose();
            throw;
        }
    }

    private static string Describe(Exception e, string path) => Directory.Exists(path) ? "Is a directory" : e switch
    {
        FileNotFoundException or DirectoryNotFoundException => "No such file or directory",
        ArgumentException when e is not ArgumentOutOfRangeException => "No such file or directory (empty or invalid path)",
        UnauthorizedAccessException => "Permission denied",
        _ => e.Message,
    };

    /// <summary>Copies file bytes the caller has bounds-checked into <paramref name="destination"/>; false once the
    /// file is closed. Safe against a concurrent <see cref="Dispose"/>: the map outlives every copy in flight.</summary>
    public bool TryCopy(long offset, Span<byte> destination)
    {
        if (destination.IsEmpty)
            return Volatile.Read(ref _disposed) == 0;
        if (!TryEnter())
            return false;
        try
        {
            new ReadOnlySpan<byte>(_base + offset, destination.Length).CopyTo(destination);
            return true;
        }
        finally
        {
            Exit();
        }
    }

    private bool TryEnter()
    {
        while (true)
        {
            var users = Volatile.Read(ref _users);
            if (users == 0)
                return false;
            if (Interlocked.CompareExchange(ref _users, users + 1, users) == users)
                return true;
        }
    }

    private void Exit()
    {
        if (Interlocked.Decrement(ref _users) == 0)
            Release();
    }

    /// <summary>Whether [offset, offset+length) lies inside the file.</summary>
    public bool Contains(long offset, long length) => offset >= 0 && length >= 0 && offset <= Length && length <= Length - offset;

    /// <summary>A view of file bytes; throws <see cref="KvmFormatException"/> when out of the file.</summary>
    public ReadOnlySpan<byte> Span(long offset, int length, string what)
    {
        if (!Contains(offset, length))
            throw new KvmFormatException(Path, offset, $"{what} ({length} bytes) extends past the end of the file (size {Length})");
        return Unchecked(offset, length);
    }

    /// <summary>A view of file bytes that the caller has bounds-checked.</summary>
    public ReadOnlySpan<byte> Unchecked(long offset, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return length == 0 ? default : new ReadOnlySpan<byte>(_base + offset, length);
    }

    /// <summary>Writes bytes into the file at an offset inside it.</summary>
    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        if (!IsWritable)
            throw new InvalidOperationException($"{Path} is open read-only");
        if (!Contains(offset, source.Length))
            throw new KvmReadException((ulong)offset, $"{Path}: a write at offset 0x{offset:x} of {source.Length} bytes lies outside the file");
        if (!TryEnter())
            throw new KvmReadException((ulong)offset, $"{Path} is closed");
        try
        {
            RandomAccess.Write(_handle, source, offset);
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        Exit();
    }

    private void Release()
    {
        if (_view is not null)
        {
            _base = null;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
        _handle.Dispose();
    }
}
