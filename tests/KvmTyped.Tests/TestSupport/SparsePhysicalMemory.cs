using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using KvmTyped.Formats;

namespace KvmTyped.Tests.TestSupport;

/// <summary>TEST HELPER ONLY: physical memory as a sparse set of 4 KiB pages, for page tables built in code.</summary>
internal sealed class SparsePhysicalMemory : IPhysicalMemory
{
    private readonly Dictionary<ulong, byte[]> _pages = [];

    public int Reads { get; private set; }

    public string FormatName => "sparse (test)";

    public IReadOnlyList<PhysicalRange> Ranges =>
        [.. _pages.Keys.Order().Select(p => new PhysicalRange(p << 12, 4096, "test"))];

    public bool IsWritable => true;

    public bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        Reads++;
        while (!destination.IsEmpty)
        {
            if (!_pages.TryGetValue(address >> 12, out var page))
            {
                failure = $"physical address 0x{address:x} not in memory";
                return false;
            }
            var offset = (int)(address & 0xfff);
            var n = Math.Min(destination.Length, 4096 - offset);
            page.AsSpan(offset, n).CopyTo(destination);
            destination = destination[n..];
            address += (ulong)n;
        }
        failure = null;
        return true;
    }

    public void Write(ulong address, ReadOnlySpan<byte> source)
    {
        while (!source.IsEmpty)
        {
            var page = Page(address);
            var offset = (int)(address & 0xfff);
            var n = Math.Min(source.Length, 4096 - offset);
            source[..n].CopyTo(page.AsSpan(offset));
            source = source[n..];
            address += (ulong)n;
        }
    }

    public byte[] Page(ulong address)
    {
        if (!_pages.TryGetValue(address >> 12, out var page))
            _pages[address >> 12] = page = new byte[4096];
        return page;
    }

    public void Remove(ulong address) => _pages.Remove(address >> 12);

    public void WriteU64(ulong address, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        Write(address, b);
    }

    public void WriteU32(ulong address, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        Write(address, b);
    }

    public void Dispose()
    {
    }
}
