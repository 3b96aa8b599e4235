using KvmTyped.Types;

namespace KvmTyped.Generators.Tests;

/// <summary>The runtime pieces generated views stand on: bit extraction, arrays, lists, relocations.</summary>
public sealed class RuntimeTypesTests
{
    private const ulong Base = 0x10000;

    private static ByteMemory Memory(DataModel model = DataModel.LP64, int size = 256) => new(model, Base, new byte[size]);

    [Theory]
    [InlineData(0, 1, 0x1UL, false, 0x1UL)]
    [InlineData(3, 5, 0x15UL, false, 0x15UL)]
    [InlineData(3, 5, 0x15UL, true, 0xFFFFFFFFFFFFFFF5UL)]
    [InlineData(7, 64, 0x0123456789ABCDEFUL, false, 0x0123456789ABCDEFUL)]
    [InlineData(13, 40, 0xF789ABCDEFUL, true, 0xFFFFFFF789ABCDEFUL)]
    [InlineData(13, 40, 0x6789ABCDEFUL, true, 0x6789ABCDEFUL)]
    public void ReadBitsExtractsLittleEndianBitfields(long bitOffset, int width, ulong pattern, bool signed, ulong expected)
    {
        var mem = Memory();
        for (var i = 0; i < width; i++)
        {
            if ((pattern >> i & 1) != 0) mem.Bytes[(bitOffset + i) / 8] |= (byte)(1 << (int)((bitOffset + i) % 8));
        }
        mem.Bytes[100] = 0xFF;
        Assert.Equal(expected, KernelReader.ReadBits(mem, Base, bitOffset, width, signed));
    }

    [Fact]
    public void ReadsFailWithTheAddress()
    {
        var e = Assert.Throws<KvmReadException>(() => KernelReader.ReadUInt32(Memory(), Base + 254));
        Assert.Equal(Base + 254, e.Address);
        Assert.Contains("0x100fe", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SignedReadsExtendAndCStringsStopAtNul()
    {
        var mem = Memory();
        mem.Write(Base, 0xFFFE, 2);
        Assert.Equal(-2, KernelReader.ReadSigned(mem, Base, 2));
        Assert.Equal(0xFFFEUL, KernelReader.ReadUnsigned(mem, Base, 2));
        "abc\0def"u8.ToArray().CopyTo(mem.Bytes, 16);
        Assert.Equal("abc", KernelReader.ReadCString(mem, Base + 16, 7));
        Assert.Equal("ab", KernelReader.ReadCString(mem, Base + 16, 2));
    }

    [Fact]
    public void ArraysCheckBoundsAndWidenElements()
    {
        var mem = Memory(DataModel.ILP32);
        mem.Write(Base + 4, 0xFFFFFFFF, 4);
        var longs = new KArray<long>(mem, Base, 3, 4, signed: true);
        Assert.Equal(-1, longs[1]);
        Assert.Equal(0xFFFFFFFFUL, new KArray<ulong>(mem, Base, 3, 4, signed: false)[1]);
        Assert.Throws<IndexOutOfRangeException>(() => longs[3]);
        Assert.Throws<IndexOutOfRangeException>(() => longs[-1]);
        var flexible = new KArray<int>(mem, Base, -1, 4, signed: true);
        Assert.Equal(-1, flexible[1]);
        Assert.True(new KArray<bool>(mem, Base, 8, 1, signed: false)[4]);
    }

    [Fact]
    public void RelocationsNameMissingMembers()
    {
        var request = new KernelRelocationRequest("task_struct", false, new[] { "pid", "gone" });
        var table = new KernelTypeOffsetTable().Struct("task_struct", 100).Field("task_struct", "pid", 12);
        var r = table.Relocate(request);
        Assert.Equal(12UL, r.ByteOffset(0));
        Assert.True(r.Has(0));
        Assert.False(r.Has(1));
        var e = Assert.Throws<KvmException>(() => r.ByteOffset(1));
        Assert.Contains("no member 'gone'", e.Message, StringComparison.Ordinal);
        Assert.Throws<KvmException>(() => table.Relocate(new KernelRelocationRequest("cred", false, Array.Empty<string>())));
    }

    [Fact]
    public void RelocationsAreCachedPerImage()
    {
        var counting = new CountingOffsets();
        var mem = new ByteMemory(DataModel.LP64, Base, new byte[16], counting);
        var request = new KernelRelocationRequest("x", false, new[] { "a" });
        var first = KernelRelocations.Get(mem, request);
        Assert.Same(first, KernelRelocations.Get(mem, request));
        Assert.Equal(1, counting.Calls);
    }

    private sealed class CountingOffsets : IKernelTypeOffsets
    {
        public int Calls { get; private set; }

        public KernelRelocation Relocate(KernelRelocationRequest request)
        {
            Calls++;
            return new KernelRelocation(request, 8, new long[] { 0 }, new int[] { 0 });
        }
    }
}
