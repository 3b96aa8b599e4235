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
    public void The_real_kernel_btf_reads_as_it_parses()
    {
        var blob = File.ReadAllBytes(Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf"));
        var parsed = BtfTypes.Parse(blob, null, "k", 4);
        var reads = new List<(ulong, int)>();
        var read = BtfTypes.Read(Memory(blob, reads), At, blob.Length, "k", 4, out var failure);
        Assert.Null(failure);
        Assert.NotNull(read);
        Assert.Equal(parsed.Count, read.Count);
        Assert.Equal(parsed.PointerSize, read.PointerSize);
        Assert.True(parsed.TryFind("task_struct", BtfKind.Struct, out var id));
        Assert.True(read.TryFind("task_struct", BtfKind.Struct, out var readId));
        Assert.Equal(id, readId);
        Assert.Equal(parsed.GetFlattenedMembers(id).Select(m => (m.Name, m.BitOffset)), read.GetFlattenedMembers(readId).Select(m => (m.Name, m.BitOffset)));
        Assert.Equal(parsed.FormatType(parsed.LastId), read.FormatType(read.LastId));
        // The header, the types, the strings: three reads, none of the whole blob.
        Assert.Equal(3, reads.Count);
        Assert.All(reads, r => Assert.True(r.Item2 < blob.Length));
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
