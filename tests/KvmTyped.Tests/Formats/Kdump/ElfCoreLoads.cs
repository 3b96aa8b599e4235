using System.Buffers.Binary;

namespace KvmTyped.Tests.Formats.Kdump;

/// <summary>A minimal reader of an ELF core's PT_LOAD program headers (ELF32 and ELF64, little-endian), enough to
/// read physical memory for comparison with a kdump of the same guest.</summary>
internal sealed class ElfCoreLoads : IDisposable
{
    private readonly FileStream _file;

    public ElfCoreLoads(string path)
    {
        _file = File.OpenRead(path);
        var ident = new byte[64];
        _file.ReadExactly(ident);
        Assert.True(ident.AsSpan(0, 4).SequenceEqual(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }), path + " is not ELF");
        bool is64 = ident[4] == 2;
        long phoff = is64 ? BinaryPrimitives.ReadInt64LittleEndian(ident.AsSpan(32)) : BinaryPrimitives.ReadUInt32LittleEndian(ident.AsSpan(28));
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(ident.AsSpan(is64 ? 54 : 42));
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(ident.AsSpan(is64 ? 56 : 44));
        var ph = new byte[phentsize * phnum];
        _file.Position = phoff;
        _file.ReadExactly(ph);
        for (int i = 0; i < phnum; i++)
        {
            var p = ph.AsSpan(i * phentsize, phentsize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(p) != 1)
                continue;
            Loads.Add(is64
                ? new Load(BinaryPrimitives.ReadInt64LittleEndian(p[8..]), BinaryPrimitives.ReadUInt64LittleEndian(p[24..]), BinaryPrimitives.ReadUInt64LittleEndian(p[32..]))
                : new Load(BinaryPrimitives.ReadUInt32LittleEndian(p[4..]), BinaryPrimitives.ReadUInt32LittleEndian(p[12..]), BinaryPrimitives.ReadUInt32LittleEndian(p[16..])));
        }
    }

    public readonly record struct Load(long Offset, ulong PhysAddr, ulong FileSize);

    public List<Load> Loads { get; } = [];

    /// <summary>Reads a page at physical address <paramref name="pa"/> when the file holds all of it.</summary>
    public bool TryReadPage(ulong pa, Span<byte> page)
    {
        foreach (var l in Loads)
        {
            if (pa >= l.PhysAddr && pa + (ulong)page.Length <= l.PhysAddr + l.FileSize)
            {
                _file.Position = l.Offset + (long)(pa - l.PhysAddr);
                _file.ReadExactly(page);
                return true;
            }
        }
        return false;
    }

    public void Dispose() => _file.Dispose();
}
