using KvmTyped.Translation;
using static KvmTyped.Tests.TestSupport.PageTableBuilder;

namespace KvmTyped.Tests.Translation;

public class X86NonPaeTablesTests
{
    private static (SparsePhysicalMemory, PageTableBuilder) Setup()
    {
        var memory = new SparsePhysicalMemory();
        return (memory, new PageTableBuilder(memory, Mode.NonPae));
    }

    [Fact]
    public void Translates_4k_and_4m_pages()
    {
        var (memory, b) = Setup();
        b.Map(0xc000_0000UL, 0x0, level: 2);
        b.Map(0xc040_0000UL, 0x0080_0000UL | (0x3UL << 13), level: 2); // PSE-36: physical bits 32-33 set
        b.Map(0xf800_1000UL, 0x0300_3000UL, level: 1);
        var space = new X86NonPaeTables(memory, b.Root);
        Assert.True(space.TryTranslate(0xc012_3456UL, out var pa, out var run, out var f), f);
        Assert.Equal(0x12_3456UL, pa);
        Assert.Equal(0x40_0000UL - 0x12_3456UL, run);
        Assert.True(space.TryTranslate(0xc040_0010UL, out pa, out _, out f), f);
        Assert.Equal(0x3_0080_0010UL, pa);
        Assert.True(space.TryTranslate(0xf800_1ffcUL, out pa, out run, out f), f);
        Assert.Equal(0x0300_3ffcUL, pa);
        Assert.Equal(4UL, run);
    }

    [Fact]
    public void Failures_name_their_level()
    {
        var (memory, b) = Setup();
        b.Map(0xc000_1000UL, 0x5000, level: 1);
        b.Map(0xc080_0000UL, 0x0080_0000UL | (1UL << 21), level: 2);
        var space = new X86NonPaeTables(memory, b.Root);
        Assert.False(space.TryTranslate(0x0804_8000UL, out _, out _, out var f));
        Assert.Equal("cannot translate 0x8048000: PGD entry not present (0x0) at level 2", f);
        Assert.False(space.TryTranslate(0xc000_2000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0xc0002000: PTE entry not present (0x0) at level 1", f);
        Assert.False(space.TryTranslate(0xc080_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0xc0800000: reserved bits set in PGD entry 0xa00083 at level 2", f);
        Assert.False(space.TryTranslate(0x1_0000_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0x100000000: address beyond the 32-bit address space", f);
    }

    [Fact]
    public void Unreadable_page_tables_say_where()
    {
        var (memory, b) = Setup();
        b.SetEntry(0xc000_0000UL, 2, 0x0700_0000UL | P | RW);
        var space = new X86NonPaeTables(memory, b.Root);
        Assert.False(space.TryTranslate(0xc000_3000UL, out _, out _, out var f));
        Assert.Equal("cannot translate 0xc0003000: cannot read PTE entry at physical 0x700000c (physical address 0x700000c not in memory) at level 1", f);
    }
}
