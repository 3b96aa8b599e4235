namespace KvmTyped.IO;

/// <summary>A bounded cache of fixed-size blocks in front of a file read by position: a file that refuses a memory map
/// (/proc/kcore, a character device) would otherwise cost one pread per field a reader asks for. Small reads are served
/// from whole blocks, read once and kept, least recently used first out; a read of a block or more goes to the file
/// directly in one call and is not kept. Thread-safe.</summary>
/// <remarks>The blocks hold the file as it was when each was read. For the live kernel (/proc/kcore) this means a value
/// read twice within a block's stay in the cache reads the same, as from a snapshot of that block: the kernel changes
/// its memory while it is read, so no reader of a running kernel sees one instant anyway (crash and drgn have the same
/// property). <see cref="Clear"/> forgets every block, so the next reads see the kernel as it is then.</remarks>
internal sealed class BlockReadCache
{
    /// <summary>Bytes per block: four pages, so a task_struct (about 10 KiB) usually costs one or two reads.</summary>
    public const int BlockSize = 16 << 10;

    /// <summary>Blocks kept at most (2 MiB): enough for the page tables, task structs and symbols one command walks.</summary>
    public const int MaxBlocks = 128;

    private readonly RandomAccessFile _file;
    private readonly Lock _lock = new();
    private readonly Dictionary<long, LinkedListNode<Block>> _blocks = new(MaxBlocks);
    private readonly LinkedList<Block> _recent = new();
    private long _fileReads;

    /// <summary>Creates a cache over <paramref name="file"/>, which it does not own.</summary>
    public BlockReadCache(RandomAccessFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        _file = file;
    }

    /// <summary>The file read.</summary>
    public RandomAccessFile File => _file;

    /// <summary>How many reads went to the file (for tests and the benchmark).</summary>
    public long FileReads => Interlocked.Read(ref _fileReads);

    /// <summary>How many blocks are held now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
                return _blocks.Count;
        }
    }

    /// <summary>Copies the file's bytes at <paramref name="offset"/> into <paramref name="destination"/>; false when the
    /// file cannot give them all (closed, or an error or end of file before the last byte).</summary>
    public bool TryRead(long offset, Span<byte> destination)
    {
        if (offset < 0)
            return false;
        if (destination.Length >= BlockSize)
        {
            Interlocked.Increment(ref _fileReads);
            return _file.TryCopy(offset, destination);
        }
        while (!destination.IsEmpty)
        {
            var start = offset - offset % BlockSize;
            var within = (int)(offset - start);
            var n = Math.Min(destination.Length, BlockSize - within);
            if (!TryCopyFromBlock(start, within, destination[..n]))
                return false;
            destination = destination[n..];
            offset += n;
        }
        return true;
    }

    private bool TryCopyFromBlock(long start, int within, Span<byte> destination)
    {
        lock (_lock)
        {
            if (_blocks.TryGetValue(start, out var node))
            {
                _recent.Remove(node);
                _recent.AddFirst(node);
                node.Value.Data.AsSpan(within, destination.Length).CopyTo(destination);
                return true;
            }
        }
        // Read outside the lock: a slow pread of one block does not hold up readers of others. Two threads missing the
        // same block both read it; the second to finish keeps its copy, the same bytes give or take the kernel's changes.
        var data = new byte[BlockSize];
        var length = (int)Math.Min(BlockSize, Math.Max(0, _file.Length - start));
        Interlocked.Increment(ref _fileReads);
        if (length < within + destination.Length || !_file.TryCopy(start, data.AsSpan(0, length)))
            return false;
        data.AsSpan(within, destination.Length).CopyTo(destination);
        lock (_lock)
        {
            if (_blocks.Remove(start, out var old))
                _recent.Remove(old);
            _blocks[start] = _recent.AddFirst(new Block(start, data));
            while (_blocks.Count > MaxBlocks)
            {
                var last = _recent.Last!;
                _recent.RemoveLast();
                _blocks.Remove(last.Value.Start);
            }
        }
        return true;
    }

    /// <summary>Forgets every block.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _blocks.Clear();
            _recent.Clear();
        }
    }

    private sealed record Block(long Start, byte[] Data);
}
