using KvmTyped.Translation;
using static KvmTyped.Tests.TestSupport.PageTableBuilder;

namespace KvmTyped.Tests.Translation;

public class X86PaeTablesTests
{
    private static (SparsePhysicalMemory, PageTableBuilder) Setup()
    {
        var memory = new SparsePhysicalMemory();
        return (memory, new PageTableBuilder(memory, Mode.Pae));
    }

    [Fact]
    public void Translates_4k_and_2m_pages_above_4g()
    {
        var (memory, b) = Setup();
        b.Map(0xc000_0000UL, 0x0, level: 2);
        b.Map(0xc020_0000UL, 0x1_2340_0000UL, level: 2, extra: NX);
        b.Map(0xf800_1000UL, 0x2_0000_3000UL, level: 1, extra: NX);
        var space = new X86PaeTables(memory, b.Root);
        Assert.True(space.TryTranslate(0xc012_3456UL, out var pa, out var run, out var f), f);
        Assert.Equal(0x12_3456UL, pa);
        Assert.Equal(0x20_0000UL - 0x12_3456UL, run);
        Assert.True(space.TryTranslate(0xc020_0010UL, out pa, out _, out f), f);
        Assert.Equal(0x1_2340_0010UL, pa);
        Assert.True(space.TryTranslate(0xf800_1ffcUL, out pa, out run, out f), f);
        Assert.Equal(0x2_0000_3ffcUL, pa);
        Assert.Equal(4UL, run);
    }

    [Fact]
    public void Failures_name_their_level()
    {
        var (memory, b) = Setup();
        b.Map(0xc000_1000UL, 0x5000, level: 1);
        var space = new X86PaeTables(memory, b.Root);
        Assert.False(space.TryTranslate(0x0804_8000UL, out _, out _, out var f));
        Assert.Equal("cannot translate 0x8048000: PGD entry not present (0x0) at level 3", f);
        Assert.False(space.TryTranslate(0xc040_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0xc0400000: PMD entry not present (0x0) at level 2", f);
        Assert.False(space.TryTranslate(0xc000_2000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0xc0002000: PTE entry not present (0x0) at level 1", f);
        Assert.False(space.TryTranslate(0x1_0000_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0x100000000: address beyond the 32-bit address space", f);
    }

    [Fact]
    public void Reserved_bits_are_refused()
    {
        var (memory, b) = Setup();
        b.Map(0xc000_0000UL, 0x20_2000UL, level: 2);       // 2 MiB frame with bit 13 set
        b.Write(b.Root + 8, 0x30_0000UL | P | RW);           // RW is reserved in a PDPTE
        var space = new X86PaeTables(memory, b.Root);
        Assert.False(space.TryTranslate(0xc000_0000UL, out _, out _, out var f));
        Assert.Equal("cannot translate 0xc0000000: reserved bits set in PMD entry 0x202083 at level 2", f);
        Assert.False(space.TryTranslate(0x4000_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0x40000000: reserved bits set in PGD entry 0x300003 at level 3", f);
    }

    [Fact]
    public void Prot_none_ptes_carry_an_inverted_frame()
    {
        var (memory, b) = Setup();
        b.SetEntry(0x0804_8000UL, 1, (~0x0123_4000UL & 0x000f_ffff_ffff_f000UL) | (1UL << 8));
        Assert.True(new X86PaeTables(memory, b.Root).TryTranslate(0x0804_8004UL, out var pa, out _, out var f), f);
        Assert.Equal(0x0123_4004UL, pa);
    }

    [Fact]
    public void A_pdpt_is_told_from_a_two_level_directory()
    {
        var (memory, b) = Setup();
        b.Map(0xc000_0000UL, 0, level: 2);
        var page = memory.Page(b.Root);
        Assert.True(X86PaeTables.LooksLikePdpt(page));

        var nonPae = new SparsePhysicalMemory();
        var n = new PageTableBuilder(nonPae, Mode.NonPae);
        n.Map(0xc000_0000UL, 0, level: 2);
        n.Map(0xc040_0000UL, 0x40_0000, level: 2);
        Assert.False(X86PaeTables.LooksLikePdpt(nonPae.Page(n.Root)));
        Assert.False(X86PaeTables.LooksLikePdpt(new byte[4096]));
    }
}
