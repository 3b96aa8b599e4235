using KvmTyped.Btf;
using KvmTyped.TestSupport;

namespace KvmTyped.Tests.Btf;

/// <summary><see cref="BtfTypes.Read"/> reads a blob section by section from kernel memory; it must give what
/// <see cref="BtfTypes.Parse(ReadOnlySpan{byte}, BtfTypes?, string?, int?)"/> gives for the same bytes, refuse the same
/// damage, and report a read that fails.</summary>
public class BtfSectionReadTests
{
    private const ulong At = 0xffffffff82000000;

    /// <summary>Memory holding <paramref name="blob"/> at <see cref="At"/>; <paramref name="hole"/> bytes from the blob's
    /// start cannot be read. Records each read.</summary>
    private static BtfTypes.ReadMemory Memory(byte[] blob, List<(ulong, int)> reads, long hole = -1) =>
        (ulong address, Span<byte> destination, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure) =>
        {
            reads.Add((address, destination.Length));
            var offset = (long)(address - At);
            if (hole >= 0 && offset <= hole && hole < offset + destination.Length)
            {
                failure = $"0x{At + (ulong)hole:x}: page excluded from the dump";
                return false;
            }
            blob.AsSpan((int)offset, destination.Length).CopyTo(destination);
            failure = null;
            return true;
        };

    [Fact]
    public void The_real_kernel_btf_reads_as_it_parses_reading_only_what_a_lookup_needs()
    {
        var blob = File.ReadAllBytes(Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf"));
        var parsed = BtfTypes.Parse(blob, null, "k", 4);
        var reads = new List<(ulong, int)>();
        var read = BtfTypes.Read(Memory(blob, reads), At, blob.Length, "k", 4, out var failure);
        Assert.Null(failure);
        Assert.NotNull(read);
        // The header, the first piece of the types, the first and last pieces of the strings.
        Assert.Equal(4, reads.Count);
        Assert.True(parsed.TryFind("task_struct", BtfKind.Struct, out var id));
        Assert.True(read.TryFind("task_struct", BtfKind.Struct, out var readId));
        Assert.Equal(id, readId);
        Assert.Equal(parsed.GetFlattenedMembers(id).Select(m => (m.Name, m.BitOffset, m.Size)),
            read.GetFlattenedMembers(readId).Select(m => (m.Name, m.BitOffset, m.Size)));
        Assert.Equal(parsed.LongSize, read.LongSize);
        // task_struct and the types of its members are among the first 1% of this kernel's 4 MB of BTF.
        Assert.InRange(reads.Sum(r => (long)r.Item2), 1, blob.Length / 20);

        // A name no struct has is looked for in every type; then the blob is whole, and checked as Parse checks it.
        Assert.False(read.TryFind("no_such_struct", BtfKind.Struct, out _));
        Assert.Equal(parsed.Count, read.Count);
        Assert.Equal(parsed.FormatType(parsed.LastId), read.FormatType(read.LastId));
        Assert.Equal(parsed.PointerSize, read.PointerSize);
        // Each read asks for as much as was read before it: going on to the end took a few reads, none of a byte twice.
        Assert.InRange(reads.Count, 5, 30);
        AssertEachByteReadOnce(reads);
        foreach (var name in new[] { "list_head", "rq", "printk_ringbuffer", "latched_seq" })
        {
            Assert.Equal(parsed.TryFind(name, BtfKind.Struct, out var p), read.TryFind(name, BtfKind.Struct, out var r));
            Assert.Equal(p, r);
        }
    }

    [Theory]
    [InlineData(4)]
    [InlineData(60)]
    [InlineData(4096)]
    public void Pieces_of_any_size_give_the_same_types(int chunkBytes)
    {
        // Names and records cross the pieces' edges: each must be read whole, never a piece's unread tail.
        var blob = File.ReadAllBytes(Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf"));
        var parsed = BtfTypes.Parse(blob, null, "k", 4);
        var reads = new List<(ulong, int)>();
        var read = BtfTypes.Read(Memory(blob, reads), At, blob.Length, "k", 4, out _, chunkBytes)!;
        foreach (var name in new[] { "task_struct", "mm_struct", "list_head", "thread_info" })
        {
            Assert.True(parsed.TryFind(name, BtfKind.Struct, out var p));
            Assert.True(read.TryFind(name, BtfKind.Struct, out var r));
            Assert.Equal(p, r);
            Assert.Equal(parsed.GetFlattenedMembers(p).Select(m => (m.Name, m.TypeId, m.BitOffset, m.Size)),
                read.GetFlattenedMembers(r).Select(m => (m.Name, m.TypeId, m.BitOffset, m.Size)));
            Assert.Equal(parsed.FormatType(p), read.FormatType(r));
        }
        AssertEachByteReadOnce(reads);
    }

    /// <summary>An int and structs s0…s1999 of two int members: the last records lie beyond the first pieces.</summary>
    private static byte[] ManyStructs()
    {
        var b = new BtfBuilder();
        var i = b.Int("int", 4, encoding: 1);
        for (int n = 0; n < 2000; n++)
            b.Struct($"s{n}", 8, ("a", i, 0, 0), ("b", i, 32, 0));
        return b.Build();
    }

    private static void AssertEachByteReadOnce(List<(ulong At, int Length)> reads)
    {
        var sorted = reads.OrderBy(r => r.At).ToList();
        for (int i = 1; i < sorted.Count; i++)
            Assert.True(sorted[i - 1].At + (ulong)sorted[i - 1].Length <= sorted[i].At, $"read at 0x{sorted[i].At:x} overlaps the one before");
    }

    [Fact]
    public void Threads_looking_up_at_once_read_each_piece_once_and_agree()
    {
        var blob = File.ReadAllBytes(Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf"));
        var parsed = BtfTypes.Parse(blob, null, "k", 4);
        string[] names = ["task_struct", "rq", "mm_struct", "signal_struct", "page", "zone", "vmap_area", "prb_desc"];
        var expected = names.Select(n => parsed.TryFind(n, BtfKind.Struct, out var id) ? id : 0).ToArray();
        for (int round = 0; round < 4; round++)
        {
            var reads = new List<(ulong, int)>();
            var read = BtfTypes.Read(Memory(blob, reads), At, blob.Length, "k", 4, out _)!;
            var found = new int[names.Length];
            Parallel.For(0, names.Length * 4, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
            {
                int n = i % names.Length;
                var id = read.TryFind(names[n], BtfKind.Struct, out var f) ? f : -1;
                var members = read.GetFlattenedMembers(id).Count;
                Assert.Equal(parsed.GetFlattenedMembers(id).Count, members);
                Interlocked.Exchange(ref found[n], id);
            });
            Assert.Equal(expected, found);
            AssertEachByteReadOnce(reads);
        }
    }

    [Fact]
    public void Damage_past_the_first_piece_is_refused_when_reached_as_parsing_refuses_it()
    {
        var good = ManyStructs();
        int typesLength = BitConverter.ToInt32(good, 12);
        Assert.True(typesLength > 2 * BtfTypes.PendingChunkBytes);

        // An unknown kind in the last record: a lookup of an early name does not reach it, one of a late name does.
        var kind = (byte[])good.Clone();
        kind[24 + typesLength - 36 + 7] = 0x1f;
        var parse = Assert.Throws<KvmFormatException>(() => BtfTypes.Parse(kind, null, "k", 8));
        var lazy = BtfTypes.Read(Memory(kind, []), At, kind.Length, "k", 8, out _)!;
        Assert.True(lazy.TryFind("s1", BtfKind.Struct, out _));
        var late = Assert.Throws<KvmFormatException>(() => lazy.TryFind("s1999", BtfKind.Struct, out _));
        Assert.Equal(parse.Message, late.Message);

        // A member's type past the last id: refused when followed, and by the check of the whole blob.
        var reference = (byte[])good.Clone();
        BtfBuilder.WriteU32(reference, 24 + 16 + 12 + 4, 9999);
        var parseRef = Assert.Throws<KvmFormatException>(() => BtfTypes.Parse(reference, null, "k", 8));
        var lazyRef = BtfTypes.Read(Memory(reference, []), At, reference.Length, "k", 8, out _)!;
        Assert.True(lazyRef.TryFind("s0", BtfKind.Struct, out var s0));
        var followed = Assert.Throws<KvmFormatException>(() => lazyRef.GetFlattenedMembers(s0));
        Assert.Contains("type id 9999", followed.Message, StringComparison.Ordinal);
        var whole = Assert.Throws<KvmFormatException>(() => lazyRef.Count);
        Assert.Equal(parseRef.Message, whole.Message);
    }

    [Fact]
    public void A_piece_that_cannot_be_read_later_is_a_read_error_naming_its_address()
    {
        var blob = ManyStructs();
        long hole = 24 + 3 * BtfTypes.PendingChunkBytes;
        var read = BtfTypes.Read(Memory(blob, [], hole), At, blob.Length, "k", 8, out var failure);
        Assert.Null(failure);
        Assert.True(read!.TryFind("s1", BtfKind.Struct, out _));
        var e = Assert.Throws<KvmReadException>(() => read.TryFind("s1999", BtfKind.Struct, out _));
        Assert.Contains($"0x{At + (ulong)hole:x}: page excluded from the dump", e.Message, StringComparison.Ordinal);
        Assert.StartsWith("k: reading its types: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_failed_read_is_reported_with_the_first_address_a_whole_read_would_name()
    {
        var b = new BtfBuilder();
        var i = b.Int("int", 4, encoding: 1);
        b.Struct("s", 8, ("a", i, 0, 0), ("b", i, 32, 0));
        var blob = b.Build();
        foreach (var hole in new long[] { 0, 30, blob.Length - 1 })
        {
            var read = BtfTypes.Read(Memory(blob, [], hole), At, blob.Length, "k", 8, out var failure);
            Assert.Null(read);
            Assert.Equal($"0x{At + (ulong)hole:x}: page excluded from the dump", failure);
        }
    }

    [Fact]
    public void Damage_is_refused_as_parsing_refuses_it()
    {
        var b = new BtfBuilder();
        var i = b.Int("int", 4, encoding: 1);
        b.Ptr(i);
        var good = b.Build();
        var damaged = new List<byte[]> { good[..5] };
        var magic = (byte[])good.Clone();
        magic[1] = 0;
        damaged.Add(magic);
        var noNul = (byte[])good.Clone();
        noNul[^1] = (byte)'x';
        damaged.Add(noNul);
        var kind = (byte[])good.Clone();
        kind[24 + 7] = 0x1f; // the first record's kind (info's top byte, little-endian)
        damaged.Add(kind);
        foreach (var blob in damaged)
        {
            var parse = Assert.Throws<KvmFormatException>(() => BtfTypes.Parse(blob, null, "k", 8));
            var read = Assert.Throws<KvmFormatException>(() => BtfTypes.Read(Memory(blob, []), At, blob.Length, "k", 8, out _));
            Assert.Equal(parse.Message, read.Message);
        }
    }
}
