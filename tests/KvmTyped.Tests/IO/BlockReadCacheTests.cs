using KvmTyped.IO;
using KvmTyped.Tests.TestSupport;

namespace KvmTyped.Tests.IO;

/// <summary>The block cache in front of files read by position: it gives the file's bytes, reads each block once while
/// it is held, holds no more than its bound, and sends large reads straight to the file.</summary>
public class BlockReadCacheTests
{
    private static byte[] Content(int size)
    {
        var data = new byte[size];
        new Random(17).NextBytes(data);
        return data;
    }

    [Fact]
    public void Reads_give_the_file_bytes_at_any_offset_and_length()
    {
        using var d = new TempDir();
        var content = Content(BlockReadCache.BlockSize * 5 + 123);
        using var file = RandomAccessFile.Open(d.File("f", content), writable: false, map: false);
        var cache = new BlockReadCache(file);
        var random = new Random(5);
        for (var i = 0; i < 500; i++)
        {
            var length = random.Next(0, BlockSize(i));
            var offset = random.Next(0, content.Length - length + 1);
            var buffer = new byte[length];
            Assert.True(cache.TryRead(offset, buffer));
            Assert.Equal(content.AsSpan(offset, length).ToArray(), buffer);
        }

        static int BlockSize(int i) => i % 10 == 0 ? 3 * BlockReadCache.BlockSize : BlockReadCache.BlockSize / 2;
    }

    [Fact]
    public void A_block_is_read_once_while_held_and_a_large_read_bypasses_the_blocks()
    {
        using var d = new TempDir();
        var content = Content(BlockReadCache.BlockSize * 4);
        using var file = RandomAccessFile.Open(d.File("f", content), writable: false, map: false);
        var cache = new BlockReadCache(file);
        var word = new byte[8];
        Assert.True(cache.TryRead(100, word));
        Assert.True(cache.TryRead(200, word));
        Assert.True(cache.TryRead(BlockReadCache.BlockSize - 8, word));
        Assert.Equal(1, cache.FileReads);
        // A read that straddles two blocks reads the second.
        Assert.True(cache.TryRead(BlockReadCache.BlockSize - 4, word));
        Assert.Equal(2, cache.FileReads);
        Assert.Equal(content.AsSpan(BlockReadCache.BlockSize - 4, 8).ToArray(), word);
        var large = new byte[BlockReadCache.BlockSize * 2];
        Assert.True(cache.TryRead(10, large));
        Assert.Equal(3, cache.FileReads);
        Assert.Equal(2, cache.Count);
        Assert.Equal(content.AsSpan(10, large.Length).ToArray(), large);
        cache.Clear();
        Assert.Equal(0, cache.Count);
        Assert.True(cache.TryRead(100, word));
        Assert.Equal(4, cache.FileReads);
    }

    [Fact]
    public void The_cache_holds_at_most_its_bound_and_drops_the_least_recently_used()
    {
        using var d = new TempDir();
        var blocks = BlockReadCache.MaxBlocks + 10;
        var content = Content(BlockReadCache.BlockSize * blocks);
        using var file = RandomAccessFile.Open(d.File("f", content), writable: false, map: false);
        var cache = new BlockReadCache(file);
        var b = new byte[1];
        for (var i = 0; i < blocks; i++)
        {
            Assert.True(cache.TryRead((long)i * BlockReadCache.BlockSize, b));
            Assert.True(cache.TryRead(0, b));   // block 0 stays the most recently used
        }
        Assert.Equal(BlockReadCache.MaxBlocks, cache.Count);
        var reads = cache.FileReads;
        Assert.True(cache.TryRead(0, b));
        Assert.Equal(reads, cache.FileReads);
        Assert.True(cache.TryRead(BlockReadCache.BlockSize, b));   // block 1 was dropped long ago
        Assert.Equal(reads + 1, cache.FileReads);
    }

    [Fact]
    public void A_read_past_the_end_or_of_a_closed_file_fails()
    {
        using var d = new TempDir();
        var content = Content(1000);
        var file = RandomAccessFile.Open(d.File("f", content), writable: false, map: false);
        var cache = new BlockReadCache(file);
        Assert.False(cache.TryRead(996, new byte[8]));
        Assert.False(cache.TryRead(-1, new byte[1]));
        Assert.True(cache.TryRead(992, new byte[8]));
        file.Dispose();
        Assert.False(cache.TryRead(1 << 20, new byte[BlockReadCache.BlockSize]));
    }
}
