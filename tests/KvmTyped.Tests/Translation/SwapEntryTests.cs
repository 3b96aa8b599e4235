using KvmTyped.Translation;
using static KvmTyped.Tests.TestSupport.PageTableBuilder;

namespace KvmTyped.Tests.Translation;

/// <summary>Swap entries in non-present PTEs, built here with Linux's x86 encodings (__swp_entry_to_pte).</summary>
public class SwapEntryTests
{
    /// <summary>x86-64 and PAE (Linux 4.18+): type in bits 59..63, the offset inverted in bits 9..58, plus the
    /// soft-dirty (bit 1) and exclusive (bit 3) software bits, which the decode must ignore.</summary>
    internal static ulong Encode64(int type, ulong offset, ulong softBits = 0) =>
        (~offset << 14 >> 5) | ((ulong)type << 59) | softBits;

    /// <summary>Non-PAE: type in bits 1..5, offset in bits 9..31.</summary>
    internal static uint Encode32(int type, uint offset) => ((uint)type << 1) | (offset << 9);

    public static TheoryData<int, ulong> Entries64 => new()
    {
        { 0, 1 }, { 0, 0x1234 }, { 1, 0xfffff }, { 7, 0x1_0000_0000 }, { 29, 0x3_ffff_ffff_ffff }, { 31, 0x2_0000_0000_0001 },
    };

    [Theory]
    [MemberData(nameof(Entries64))]
    public void X86_64_decodes_the_kernels_encoding(int type, ulong offset)
    {
        foreach (var levels in new[] { 4, 5 })
        {
            var memory = new SparsePhysicalMemory();
            var b = new PageTableBuilder(memory, levels == 5 ? Mode.X86_64Level5 : Mode.X86_64Level4);
            b.Map(0x7fff_0000_0000UL, 0x20_0000UL);
            var pte = Encode64(type, offset, softBits: 0x2 | 0x8);
            b.SetEntry(0x7fff_0000_1000UL, 1, pte);
            var space = new X86_64PageTables(memory, b.Root, levels);
            Assert.True(space.TryGetSwapEntry(0x7fff_0000_1abcUL, out var t, out var o));
            Assert.Equal(type, t);
            Assert.Equal(offset, o);
            Assert.False(space.TryTranslate(0x7fff_0000_1abcUL, out _, out _, out var f));
            Assert.Contains($"swapped out (swap type {type}, offset 0x{offset:x})", f);
            // Mapped, empty and absent-above pages carry no swap entry.
            Assert.False(space.TryGetSwapEntry(0x7fff_0000_0000UL, out _, out _));
            Assert.False(space.TryGetSwapEntry(0x7fff_0000_2000UL, out _, out _));
            Assert.False(space.TryGetSwapEntry(0x1000UL, out _, out _));
        }
    }

    [Theory]
    [InlineData(0, 1u)]
    [InlineData(3, 0x1234u)]
    [InlineData(31, 0x7ff_ffffu)]
    [InlineData(5, 0x400_0001u)]
    public void Pae_decodes_the_kernels_encoding(int type, uint offset)
    {
        var memory = new SparsePhysicalMemory();
        var b = new PageTableBuilder(memory, Mode.Pae);
        b.Map(0x0804_8000UL, 0x30_0000UL);
        b.SetEntry(0x0804_9000UL, 1, Encode64(type, offset, softBits: 0x8));
        var space = new X86PaeTables(memory, b.Root);
        Assert.True(space.TryGetSwapEntry(0x0804_9010UL, out var t, out var o));
        Assert.Equal(type, t);
        Assert.Equal(offset, o);
        Assert.False(space.TryTranslate(0x0804_9010UL, out _, out _, out var f));
        Assert.Equal($"cannot translate 0x8049010: PTE entry 0x{Encode64(type, offset, 0x8):x} swapped out (swap type {type}, offset 0x{offset:x}) at level 1", f);
        Assert.False(space.TryGetSwapEntry(0x0804_8000UL, out _, out _));
        Assert.False(space.TryGetSwapEntry(0x0804_a000UL, out _, out _));
        Assert.False(space.TryGetSwapEntry(0xc000_0000UL, out _, out _));
    }

    [Theory]
    [InlineData(0, 1u)]
    [InlineData(2, 0xabcdu)]
    [InlineData(31, 0x7f_ffffu)]
    [InlineData(17, 0x40_0000u)]
    public void Non_pae_decodes_the_kernels_encoding(int type, uint offset)
    {
        var memory = new SparsePhysicalMemory();
        var b = new PageTableBuilder(memory, Mode.NonPae);
        b.Map(0x0804_8000UL, 0x30_0000UL);
        b.SetEntry(0x0804_9000UL, 1, Encode32(type, offset));
        var space = new X86NonPaeTables(memory, b.Root);
        Assert.True(space.TryGetSwapEntry(0x0804_9fffUL, out var t, out var o));
        Assert.Equal(type, t);
        Assert.Equal(offset, o);
        Assert.False(space.TryTranslate(0x0804_9fffUL, out _, out _, out var f));
        Assert.Contains($"swapped out (swap type {type}, offset 0x{offset:x})", f);
        Assert.False(space.TryGetSwapEntry(0x0804_8000UL, out _, out _));
        Assert.False(space.TryGetSwapEntry(0x0804_a000UL, out _, out _));
    }

    [Fact]
    public void Protnone_and_accessed_dirty_only_entries_are_not_swap_entries()
    {
        Assert.False(PageTableWalk.SwapEntry64(0, out _, out _));
        Assert.False(PageTableWalk.SwapEntry64(0x60, out _, out _));
        Assert.False(PageTableWalk.SwapEntry64(0x100 | 0x1000, out _, out _));
        Assert.False(PageTableWalk.SwapEntry64(0x1001, out _, out _));
        Assert.False(PageTableWalk.SwapEntry32(0x60, out _, out _));
        Assert.False(PageTableWalk.SwapEntry32(0x100 | (3u << 9), out _, out _));
        Assert.True(PageTableWalk.SwapEntry32(Encode32(0, 1), out _, out var o));
        Assert.Equal(1UL, o);
    }
}
