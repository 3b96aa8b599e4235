using System.Buffers.Binary;
using System.Text;
using KvmTyped.Linux;
using KvmTyped.Formats;
using KvmTyped.Tests.Translation;
using KvmTyped.Translation;
using static KvmTyped.Tests.TestSupport.PageTableBuilder;

namespace KvmTyped.Tests.Linux;

/// <summary>User reads that cross from a mapped page into a swapped-out one, with and without a swap area.</summary>
public sealed class UserMemorySwapTests : IDisposable
{
    private const ulong Mapped = 0x40_0000UL, Swapped = 0x40_1000UL, Frame = 0x20_0000UL;
    private const int AreaPages = 4; // header + 3 pages
    private readonly string _swapPath = Path.Combine(Path.GetTempPath(), $"kvmtyped-swap-{Guid.NewGuid():N}.img");

    public UserMemorySwapTests()
    {
        var file = new byte[(AreaPages + 2) * 4096]; // two pages past last_page: the header's size rules
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(1024), 1);              // version
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(1028), AreaPages - 1);  // last_page
        Encoding.ASCII.GetBytes("SWAPSPACE2").CopyTo(file.AsSpan(4096 - 10));
        for (var page = 1; page < AreaPages + 2; page++)
            for (var i = 0; i < 4096; i++)
                file[(page * 4096) + i] = SwapByte(page, i);
        File.WriteAllBytes(_swapPath, file);
    }

    public void Dispose() => File.Delete(_swapPath);

    private static byte SwapByte(int page, int i) => (byte)((page * 37) + (i * 7) + 1);

    private static byte MemoryByte(int i) => (byte)(0xa0 ^ i);

    // PageTableBuilder.Mode is internal: theories take its number.
    public static TheoryData<int> Modes => new() { (int)Mode.X86_64Level4, (int)Mode.X86_64Level5, (int)Mode.Pae, (int)Mode.NonPae };

    /// <summary>Memory with <see cref="Mapped"/> present and <see cref="Swapped"/> swapped out to (type, offset).</summary>
    private static (SparsePhysicalMemory, IAddressSpace) Build(Mode mode, int type, ulong offset)
    {
        var memory = new SparsePhysicalMemory();
        var b = new PageTableBuilder(memory, mode);
        b.Map(Mapped, Frame);
        var page = memory.Page(Frame);
        for (var i = 0; i < 4096; i++)
            page[i] = MemoryByte(i);
        b.SetEntry(Swapped, 1, mode == Mode.NonPae
            ? SwapEntryTests.Encode32(type, checked((uint)offset))
            : SwapEntryTests.Encode64(type, offset));
        IAddressSpace walker = mode switch
        {
            Mode.X86_64Level4 => new X86_64PageTables(memory, b.Root, 4),
            Mode.X86_64Level5 => new X86_64PageTables(memory, b.Root, 5),
            Mode.Pae => new X86PaeTables(memory, b.Root),
            _ => new X86NonPaeTables(memory, b.Root),
        };
        return (memory, new TranslationCache(walker, 64));
    }

    /// <summary>The walk that finds the page not present also reports its swap entry: reading a swapped page reads each
    /// level's entry once, and the swapfile, nothing more.</summary>
    [Theory]
    [MemberData(nameof(Modes))]
    public void A_swapped_page_costs_one_walk(int mode)
    {
        var (memory, space) = Build((Mode)mode, 0, 2);
        using var swap = SwapFile.Open(_swapPath);
        var levels = (Mode)mode switch { Mode.X86_64Level4 => 4, Mode.X86_64Level5 => 5, Mode.Pae => 3, _ => 2 };
        var before = memory.Reads;
        var buffer = new byte[16];
        Assert.True(UserMemory.TryRead(memory, swap, space, Swapped + 8, buffer, out _, out var f), f);
        Assert.Equal(levels, memory.Reads - before);
        Assert.Equal(SwapByte(2, 8), buffer[0]); // swap offsets count pages from the start of the area, header included
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void A_read_spanning_a_mapped_and_a_swapped_page_returns_both(int mode)
    {
        var (memory, space) = Build((Mode)mode, 0, 2);
        using var swap = SwapFile.Open(_swapPath);
        Assert.Equal((ulong)AreaPages, swap.Pages);
        var buffer = new byte[0x300];
        Assert.True(UserMemory.TryRead(memory, swap, space, Mapped + 0xe00, buffer, out var read, out var f), f);
        Assert.Equal(buffer.Length, read);
        for (var i = 0; i < 0x200; i++)
            Assert.Equal(MemoryByte(0xe00 + i), buffer[i]);
        for (var i = 0; i < 0x100; i++)
            Assert.Equal(SwapByte(2, i), buffer[0x200 + i]);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Without_a_swapfile_the_read_stops_at_the_swapped_page(int mode)
    {
        var (memory, space) = Build((Mode)mode, 0, 3);
        var buffer = new byte[0x2000];
        Assert.False(UserMemory.TryRead(memory, null, space, Mapped, buffer, out var read, out var f));
        Assert.Equal(0x1000, read);
        Assert.Equal("0x401000 is swapped out (swap type 0, offset 0x3) and no swapfile was given", f);
    }

    [Fact]
    public void Another_swap_type_fails_naming_it()
    {
        var (memory, space) = Build(Mode.X86_64Level4, 2, 1);
        using var swap = SwapFile.Open(_swapPath);
        var buffer = new byte[16];
        Assert.False(UserMemory.TryRead(memory, swap, space, Swapped + 8, buffer, out var read, out var f));
        Assert.Equal(0, read);
        Assert.StartsWith("0x401008 is swapped out (swap type 2, offset 0x1), but only one swap area (type 0) was given", f);
    }

    [Theory]
    [InlineData(AreaPages)]          // in the file, past the header's last_page
    [InlineData(AreaPages + 100)]    // past the file
    [InlineData(0x1_0000_0000_0000)] // huge
    public void An_offset_past_the_swap_area_fails(ulong offset)
    {
        var (memory, space) = Build(Mode.X86_64Level4, 0, offset);
        using var swap = SwapFile.Open(_swapPath);
        var buffer = new byte[16];
        Assert.False(UserMemory.TryRead(memory, swap, space, Swapped, buffer, out _, out var f));
        Assert.Contains($"swap offset 0x{offset:x} is past the end of the swap area", f);
    }

    [Fact]
    public void Offset_zero_is_the_header_not_a_page()
    {
        var (memory, space) = Build(Mode.X86_64Level4, 0, 0);
        using var swap = SwapFile.Open(_swapPath);
        Assert.False(UserMemory.TryRead(memory, swap, space, Swapped, new byte[8], out _, out var f));
        Assert.Contains("is the header of the swap area", f);
    }

    [Fact]
    public void An_unmapped_page_keeps_its_translation_failure()
    {
        var (memory, space) = Build(Mode.X86_64Level4, 0, 1);
        using var swap = SwapFile.Open(_swapPath);
        Assert.False(UserMemory.TryRead(memory, swap, space, Swapped + 0x1000, new byte[8], out _, out var f));
        Assert.Contains("PTE entry not present (0x0)", f);
    }
}
