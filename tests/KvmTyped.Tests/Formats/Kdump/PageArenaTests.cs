using KvmTyped.Formats.Kdump;

namespace KvmTyped.Tests.Formats.Kdump;

/// <summary>The kdump page cache: pages in one array, slots guarded by sequence numbers.</summary>
public class PageArenaTests
{
    private const int PageSize = 4096;

    /// <summary>What page <paramref name="pfn"/> holds in these tests: every byte says which page it is.</summary>
    private static void Content(ulong pfn, Span<byte> page)
    {
        for (var i = 0; i < page.Length; i += 8)
            BitConverter.TryWriteBytes(page[i..], pfn * 0x9E3779B97F4A7C15UL + (ulong)i);
    }

    private static byte[] Expected(ulong pfn, int offset, int length)
    {
        var page = new byte[PageSize];
        Content(pfn, page);
        return page[offset..(offset + length)];
    }

    private static void Fill(PageArena arena, ulong pfn)
    {
        var generation = arena.Generation;
        Assert.True(arena.TryBeginFill(pfn, out var fill));
        Content(pfn, arena.Page(fill));
        arena.EndFill(fill, decoded: true, generation);
    }

    [Fact]
    public void A_filled_page_is_copied_back_and_a_page_sharing_its_slot_replaces_it()
    {
        var arena = new PageArena(16, PageSize);
        var buffer = new byte[100];
        Assert.False(arena.TryCopy(5, 0, buffer));
        Fill(arena, 5);
        Assert.True(arena.TryCopy(5, 4000, buffer.AsSpan(0, 96)));
        Assert.Equal(Expected(5, 4000, 96), buffer[..96]);
        Fill(arena, 5 + 16);
        Assert.False(arena.TryCopy(5, 0, buffer));
        Assert.True(arena.TryCopy(21, 8, buffer));
        Assert.Equal(Expected(21, 8, 100), buffer);
    }

    [Fact]
    public void A_large_arena_starts_on_a_huge_page_boundary_on_linux_and_every_slot_holds_its_page()
    {
        var arena = new PageArena(1024, PageSize);
        if (OperatingSystem.IsLinux())
            Assert.Equal(0, arena.FirstSlotAddress & ((2 << 20) - 1));
        for (ulong pfn = 5000; pfn < 5000 + 1024; pfn++)
            Fill(arena, pfn);
        var buffer = new byte[PageSize];
        for (ulong pfn = 5000; pfn < 5000 + 1024; pfn++)
        {
            Assert.True(arena.TryCopy(pfn, 0, buffer));
            Assert.Equal(Expected(pfn, 0, PageSize), buffer);
            Assert.True(arena.TryCopy(pfn, PageSize - 8, buffer.AsSpan(0, 8)));
            Assert.Equal(Expected(pfn, PageSize - 8, 8), buffer[..8]);
        }
        // A small arena is not aligned (nor pinned), and works the same.
        var small = new PageArena(16, PageSize);
        Fill(small, 7);
        Assert.True(small.TryCopy(7, 0, buffer));
        Assert.Equal(Expected(7, 0, PageSize), buffer);
    }

    [Fact]
    public void Bytes_past_the_page_end_are_refused()
    {
        var arena = new PageArena(16, PageSize);
        Fill(arena, 3);
        var buffer = new byte[16];
        Assert.True(arena.TryCopy(3, PageSize - 16, buffer));
        Assert.Equal(Expected(3, PageSize - 16, 16), buffer);
        Assert.True(arena.TryCopy(3, PageSize, buffer.AsSpan(0, 0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => arena.TryCopy(3, PageSize - 8, buffer));
        Assert.Throws<ArgumentOutOfRangeException>(() => arena.TryCopy(3, PageSize + 1, Span<byte>.Empty));
        Assert.Throws<ArgumentOutOfRangeException>(() => arena.TryCopy(3, -1, buffer.AsSpan(0, 8)));
    }

    [Fact]
    public void A_slot_being_filled_is_neither_read_nor_taken_and_a_failed_fill_publishes_nothing()
    {
        var arena = new PageArena(16, PageSize);
        Fill(arena, 3);
        var generation = arena.Generation;
        Assert.True(arena.TryBeginFill(19, out var fill));
        Assert.False(arena.TryCopy(3, 0, new byte[8]));   // its old page is gone once a fill starts
        Assert.False(arena.TryCopy(19, 0, new byte[8]));
        Assert.False(arena.TryBeginFill(19, out _));
        Assert.False(arena.TryBeginFill(3, out _));
        arena.EndFill(fill, decoded: false, generation);
        Assert.False(arena.TryCopy(19, 0, new byte[8]));
        Assert.True(arena.TryBeginFill(19, out fill));
        arena.EndFill(fill, decoded: false, generation);
    }

    [Fact]
    public void A_fill_that_read_the_file_before_an_invalidation_is_not_published()
    {
        var arena = new PageArena(16, PageSize);
        var before = arena.Generation;
        Assert.True(arena.TryBeginFill(7, out var fill));
        Content(7, arena.Page(fill));
        arena.Invalidate(100);   // another page: the generation moves all the same
        arena.EndFill(fill, decoded: true, before);
        Assert.False(arena.TryCopy(7, 0, new byte[8]));
        Fill(arena, 7);
        Fill(arena, 8);
        arena.Invalidate(7);
        Assert.False(arena.TryCopy(7, 0, new byte[8]));
        Assert.True(arena.TryCopy(8, 0, new byte[8]));
        arena.Clear();
        Assert.False(arena.TryCopy(8, 0, new byte[8]));
    }

    [Fact]
    public void The_arena_is_capped()
    {
        Assert.Equal(1024, new PageArena(1000, PageSize).Capacity);
        Assert.Equal(PageArena.MaxBytes / 65536, new PageArena(1 << 20, 65536).Capacity);
    }

    [Theory]
    [InlineData(PageSize)]
    [InlineData(8)]     // a word: copied by one load, not a call
    [InlineData(12)]
    public void Eight_threads_on_sixteen_slots_read_only_whole_right_pages(int length)
    {
        // Forty pages fight over sixteen slots: every copy that succeeds must be the page asked for, never a mix.
        var arena = new PageArena(16, PageSize);
        long copies = 0, fills = 0;
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            var rnd = new Random(t);
            var buffer = new byte[length];
            var expected = new byte[PageSize];
            for (var i = 0; i < 50_000; i++)
            {
                var pfn = (ulong)rnd.Next(40);
                var offset = rnd.Next(PageSize - length + 1);
                if (arena.TryCopy(pfn, offset, buffer))
                {
                    Content(pfn, expected);
                    Assert.True(buffer.AsSpan().SequenceEqual(expected.AsSpan(offset, length)), $"page {pfn}: a copy mixed two pages");
                    Interlocked.Increment(ref copies);
                    continue;
                }
                var generation = arena.Generation;
                if (arena.TryBeginFill(pfn, out var fill))
                {
                    Content(pfn, arena.Page(fill));
                    arena.EndFill(fill, decoded: true, generation);
                    Interlocked.Increment(ref fills);
                }
                if (i % 5_000 == 0)
                    arena.Invalidate(pfn);
            }
        });
        Assert.True(copies > 10_000 && fills > 1_000, $"{copies} copies, {fills} fills");
    }

    [Fact]
    public void A_copy_that_a_refill_overlaps_is_refused()
    {
        // One thread refills one slot with two pages in turn, pausing a little between fills; another copies whole
        // 64 KiB pages from it. Copies that a fill overlapped must be refused; the others must be whole pages.
        const int big = 65536;
        var arena = new PageArena(1, big);
        static void Write(ulong pfn, Span<byte> page) => page.Fill((byte)(pfn + 1));
        var stop = 0;
        var writer = new Thread(() =>
        {
            for (ulong n = 0; Volatile.Read(ref stop) == 0; n++)
            {
                var generation = arena.Generation;
                if (!arena.TryBeginFill(n & 1, out var fill))
                    continue;
                Write(n & 1, arena.Page(fill));
                arena.EndFill(fill, decoded: true, generation);
                Thread.SpinWait(200);
            }
        });
        writer.Start();
        var buffer = new byte[big];
        int copies = 0, refused = 0;
        var (until, giveUp) = (DateTime.UtcNow.AddSeconds(1), DateTime.UtcNow.AddSeconds(30));
        while ((DateTime.UtcNow < until || copies < 100) && DateTime.UtcNow < giveUp)
        {
            var pfn = (ulong)(copies + refused) & 1;
            if (!arena.TryCopy(pfn, 0, buffer))
            {
                refused++;
                continue;
            }
            copies++;
            Assert.True(buffer.AsSpan().IndexOfAnyExcept((byte)(pfn + 1)) < 0, $"copy {copies} of page {pfn} mixed two pages");
        }
        Volatile.Write(ref stop, 1);
        writer.Join();
        Assert.True(refused > 0 && copies > 0, $"{copies} copies, {refused} refused");
    }

    [Fact]
    public void Clear_waits_for_a_fill_in_progress_and_drops_what_it_filled()
    {
        // The fill read the generation before Clear moved it; Clear must not return before that fill ends, and the
        // page must not be cached afterwards.
        var arena = new PageArena(16, PageSize);
        var before = arena.Generation;
        Assert.True(arena.TryBeginFill(7, out var fill));
        Content(7, arena.Page(fill));
        var clearing = new Thread(arena.Clear);
        clearing.Start();
        Assert.False(clearing.Join(200), "Clear returned while a fill was in progress");
        arena.EndFill(fill, decoded: true, before);
        clearing.Join();
        Assert.False(arena.TryCopy(7, 0, new byte[8]));
    }
}
