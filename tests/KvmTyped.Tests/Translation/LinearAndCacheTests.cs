using KvmTyped.Translation;
using static KvmTyped.Tests.TestSupport.PageTableBuilder;

namespace KvmTyped.Tests.Translation;

public class LinearAddressSpaceTests
{
    [Fact]
    public void Maps_its_range_and_hands_the_rest_to_the_fallback()
    {
        var memory = new SparsePhysicalMemory();
        var b = new PageTableBuilder(memory, Mode.X86_64Level4);
        b.Map(0xffff_ffff_c000_0000UL, 0x9000, level: 1);
        var tables = new X86_64PageTables(memory, b.Root);
        var text = new LinearAddressSpace(0xffff_ffff_8100_0000UL, 0x0400_0000UL, 0x0760_0000UL, tables);

        Assert.True(text.TryTranslate(0xffff_ffff_8100_0010UL, out var pa, out var run, out var f), f);
        Assert.Equal(0x0760_0010UL, pa);
        Assert.Equal(0x0400_0000UL - 0x10, run);
        Assert.True(text.TryTranslate(0xffff_ffff_c000_0008UL, out pa, out _, out f), f);
        Assert.Equal(0x9008UL, pa);
        Assert.False(text.TryTranslate(0xffff_ffff_8000_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0xffffffff80000000: PUD entry not present (0x0) at level 3", f);

        var alone = new LinearAddressSpace(0xc000_0000UL, 0x1000_0000UL, 0);
        Assert.False(alone.TryTranslate(0xd000_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0xd0000000: outside the linear mapping 0xc0000000-0xcfffffff", f);
    }

    [Fact]
    public void Ranges_are_whole_pages_and_do_not_wrap()
    {
        Assert.Throws<ArgumentException>(() => new LinearAddressSpace(0x1001, 0x1000, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LinearAddressSpace(0xffff_ffff_ffff_f000UL, 0x2000, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LinearAddressSpace(0, 0, 0));
    }
}

public class TranslationCacheTests
{
    private static (SparsePhysicalMemory Memory, PageTableBuilder Builder, X86_64PageTables Tables) Build()
    {
        var memory = new SparsePhysicalMemory();
        var b = new PageTableBuilder(memory, Mode.X86_64Level4);
        b.Map(0xffff_8880_0000_0000UL, 0x4000_0000UL, level: 3);
        b.Map(0xffff_ffff_8100_0000UL, 0x0120_0000UL, level: 2);
        for (ulong i = 0; i < 64; i++)
            b.Map(0xffff_c900_0000_0000UL + (i * 0x1000), 0x0800_0000UL + (i * 0x3000), level: 1);
        return (memory, b, new X86_64PageTables(memory, b.Root));
    }

    private static ulong[] Addresses(int count, int seed)
    {
        var random = new Random(seed);
        var bases = new[] { 0xffff_8880_0000_0000UL, 0xffff_ffff_8100_0000UL, 0xffff_c900_0000_0000UL, 0xffff_c900_0004_0000UL };
        var spans = new[] { 0x4000_0000UL, 0x20_0000UL, 0x4_0000UL, 0x2000UL };
        var result = new ulong[count];
        for (var i = 0; i < count; i++)
        {
            var k = random.Next(bases.Length);
            result[i] = bases[k] + ((ulong)random.NextInt64() % spans[k]);
        }
        return result;
    }

    [Fact]
    public void Cached_answers_equal_the_walk_and_cost_no_reads()
    {
        var (memory, _, tables) = Build();
        var cache = new TranslationCache(tables, 1024);
        var addresses = Addresses(5000, 1);
        foreach (var va in addresses)
        {
            var ok = tables.TryTranslate(va, out var pa, out var run, out var f);
            Assert.Equal(ok, cache.TryTranslate(va, out var cpa, out var crun, out var cf));
            Assert.Equal(f, cf);
            if (!ok)
                continue;
            Assert.Equal(pa, cpa);
            Assert.Equal(run, crun);
            // A second lookup of the same address is a hit: no physical read.
            var reads = memory.Reads;
            Assert.True(cache.TryTranslate(va, out cpa, out crun, out _));
            Assert.Equal(reads, memory.Reads);
            Assert.Equal(pa, cpa);
            Assert.Equal(run, crun);
        }
    }

    [Fact]
    public void Failures_are_not_cached_and_clear_forgets()
    {
        var (memory, b, tables) = Build();
        var cache = new TranslationCache(tables, 64);
        const ulong va = 0x0000_7f00_0000_1000UL;
        Assert.False(cache.TryTranslate(va, out _, out _, out _));
        b.Map(va, 0x5000, level: 1);
        Assert.True(cache.TryTranslate(va, out var pa, out _, out var f), f);
        Assert.Equal(0x5000UL, pa);
        b.Map(va, 0x6000, level: 1);
        Assert.True(cache.TryTranslate(va, out pa, out _, out _));
        Assert.Equal(0x5000UL, pa); // stale until cleared, as documented
        cache.Clear();
        Assert.True(cache.TryTranslate(va, out pa, out _, out _));
        Assert.Equal(0x6000UL, pa);
        _ = memory;
    }

    [Fact]
    public void Concurrent_readers_see_only_correct_translations()
    {
        var (_, _, tables) = Build();
        var expected = new Dictionary<ulong, (ulong, ulong)>();
        var addresses = Addresses(4000, 2);
        foreach (var va in addresses)
        {
            if (tables.TryTranslate(va, out var pa, out var run, out _))
                expected[va] = (pa, run);
        }
        // A tiny cache so that threads keep replacing each other's slots.
        var cache = new TranslationCache(new LockedSpace(tables), 16);
        var errors = 0;
        Parallel.For(0, 4, t =>
        {
            for (var round = 0; round < 20; round++)
            {
                foreach (var va in addresses)
                {
                    if (!expected.TryGetValue(va, out var want))
                        continue;
                    if (!cache.TryTranslate(va, out var pa, out var run, out _) || pa != want.Item1 || run != want.Item2)
                        Interlocked.Increment(ref errors);
                }
            }
        });
        Assert.Equal(0, errors);
    }

    [Fact]
    public void Hits_allocate_nothing()
    {
        var (memory, _, tables) = Build();
        var cache = new TranslationCache(new LinearAddressSpace(0xffff_ffff_8000_0000UL, 0x1000_0000UL, 0x0010_0000UL, tables));
        // 1024 pages of the direct map (one 1 GiB page) and 32 of the linear range: all mapped, all fit in the cache.
        var random = new Random(3);
        var addresses = new ulong[4000];
        for (var i = 0; i < addresses.Length; i++)
        {
            addresses[i] = i % 4 == 0
                ? 0xffff_ffff_8000_0000UL + ((ulong)random.Next(32 * 4096) & ~7UL)
                : 0xffff_8880_0000_0000UL + ((ulong)random.Next(1024 * 4096) & ~7UL);
        }
        Span<byte> buffer = stackalloc byte[8];
        memory.Page(0x4000_0000UL); // something to read behind the direct map
        foreach (var va in addresses)
            cache.TryTranslate(va, out _, out _, out _);
        var before = GC.GetAllocatedBytesForCurrentThread();
        ulong sink = 0;
        for (var round = 0; round < 10; round++)
        {
            foreach (var va in addresses)
            {
                cache.TryTranslate(va, out var pa, out _, out _);
                sink += pa;
            }
            cache.TryReadVirtual(memory, 0xffff_8880_0000_0000UL, buffer, out _);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.NotEqual(0UL, sink);
    }

    [Fact]
    public void Capacity_must_be_a_bounded_power_of_two()
    {
        var (_, _, tables) = Build();
        Assert.Throws<ArgumentOutOfRangeException>(() => new TranslationCache(tables, 1000));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TranslationCache(tables, 1 << 23));
        Assert.Equal(4096, new TranslationCache(tables, 4096).Capacity);
    }

    /// <summary>The sparse test memory is not thread-safe; serialise the walks, not the cache hits.</summary>
    private sealed class LockedSpace(IAddressSpace inner) : IAddressSpace
    {
        private readonly Lock _lock = new();

        public bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous,
            [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure)
        {
            lock (_lock)
                return inner.TryTranslate(virtualAddress, out physicalAddress, out contiguous, out failure);
        }
    }
}
