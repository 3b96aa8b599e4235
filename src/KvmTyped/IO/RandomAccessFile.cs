using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;

namespace KvmTyped.IO;

/// <summary>A file opened once for random access, the one way the library reads files: memory-mapped where the file
/// allows it, read with positional reads (pread) where it does not — a file whose size says nothing of its content
/// (/proc/kcore, a device), or one the kernel will not map. Written with pwrite when opened read-write.</summary>
/// <remarks>The map is shared with the page cache, so a pwrite is seen by later reads through the map.
/// Nothing is read until asked for; a multi-GB dump costs only address space. As with any memory-mapped reader,
/// a file that another process truncates while it is open faults when the missing bytes are read: dumps are
/// expected to stay whole while open (the length checks at open protect against files that are short to begin with).
/// Which way a file is read is decided by the file: a mapping is tried, and a file that refuses it is read by position.</remarks>
internal sealed unsafe class RandomAccessFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;
    private int _disposed;

    // Readers in flight, plus one for the file itself while open: the map is released when this reaches 0, so a
    // close never unmaps memory a reader is copying from.
    private int _users = 1;

    private RandomAccessFile(string path, SafeFileHandle handle, long length, bool writable, bool map)
    {
        Path = path;
        _handle = handle;
        Length = length;
        IsWritable = writable;
        if (length == 0 || !map)
            return;
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
            // Not mappable (a procfs file such as /proc/kcore, a device, or more than the address space holds):
            // read it by position instead.
            _view?.Dispose();
            _map?.Dispose();
            _view = null;
            _map = null;
            _base = null;
        }
    }

    /// <summary>The path the file was opened by.</summary>
    public string Path { get; }

    /// <summary>The file's length in bytes when opened.</summary>
    public long Length { get; }

    /// <summary>Whether <see cref="Write"/> is allowed.</summary>
    public bool IsWritable { get; }

    /// <summary>Raised with the path each time a file is opened, so tests can count the opens of one file.</summary>
    internal static event Action<string>? Opened;

    /// <summary>Whether reads come from a memory map (else from positional reads).</summary>
    public bool IsMapped => _base is not null;

    /// <summary>Opens a file; failures become <see cref="KvmOpenException"/> with a perror-style message.</summary>
    /// <param name="path">The file.</param>
    /// <param name="writable">Open read-write (writes go through pwrite).</param>
    /// <param name="map">Try a memory map for reads (false: positional reads only, as for a file that cannot be mapped).</param>
    public static RandomAccessFile Open(string path, bool writable, bool map = true)
    {
        SafeFileHandle? handle = null;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, writable ? FileAccess.ReadWrite : FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var length = RandomAccess.GetLength(handle);
            var file = new RandomAccessFile(path, handle, length, writable, map);
            Opened?.Invoke(path);
            return file;
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

    /// <summary>Why <paramref name="path"/> cannot be opened, in perror's words: the one wording of file errors.</summary>
    internal static string Describe(Exception e, string path) => Directory.Exists(path) ? "Is a directory" : e switch
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
            if (_base is not null)
            {
                new ReadOnlySpan<byte>(_base + offset, destination.Length).CopyTo(destination);
                return true;
            }
            while (!destination.IsEmpty)
            {
                var n = RandomAccess.Read(_handle, destination, offset);
                if (n <= 0)
                    return false;
                destination = destination[n..];
                offset += n;
            }
            return true;
        }
        catch (IOException)
        {
            return false;
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

    /// <summary>File bytes that the caller has bounds-checked: a view of the map, or (read by position) a copy.</summary>
    public ReadOnlySpan<byte> Unchecked(long offset, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (length == 0)
            return default;
        if (_base is not null)
            return new ReadOnlySpan<byte>(_base + offset, length);
        var copy = new byte[length];
        if (!TryCopy(offset, copy))
            throw new KvmFormatException(Path, offset, $"{length} bytes could not be read");
        return copy;
    }

    /// <summary>Writes bytes into the file at an offset inside it.</summary>
    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        if (!IsWritable)
            throw new InvalidOperationException($"{Path} is open read-only");
        if (!Contains(offset, source.Length))
            throw new KvmWriteException((ulong)offset, $"{Path}: a write at offset 0x{offset:x} of {source.Length} bytes lies outside the file");
        if (!TryEnter())
            throw new KvmWriteException((ulong)offset, $"{Path} is closed");
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
