using KvmTyped.Translation;
using static KvmTyped.Tests.TestSupport.PageTableBuilder;

namespace KvmTyped.Tests.Translation;

public class X86_64PageTablesTests
{
    public static TheoryData<int> Levels => [4, 5];

    private static (SparsePhysicalMemory Memory, PageTableBuilder Builder) Setup(int levels) =>
        Setup(levels == 5 ? Mode.X86_64Level5 : Mode.X86_64Level4);

    private static (SparsePhysicalMemory Memory, PageTableBuilder Builder) Setup(Mode mode)
    {
        var memory = new SparsePhysicalMemory();
        return (memory, new PageTableBuilder(memory, mode));
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void Translates_4k_2m_and_1g_pages(int levels)
    {
        var (memory, b) = Setup(levels);
        b.Map(0xffff_8880_0000_0000UL, 0x4000_0000UL, level: 3);
        b.Map(0xffff_ffff_8100_0000UL, 0x0120_0000UL, level: 2);
        b.Map(0xffff_c900_0000_3000UL, 0x0000_7000UL, level: 1);
        var space = new X86_64PageTables(memory, b.Root, levels);

        Assert.True(space.TryTranslate(0xffff_8880_1234_5678UL, out var pa, out var run, out var f), f);
        Assert.Equal(0x4000_0000UL + 0x1234_5678UL, pa);
        Assert.Equal(0x4000_0000UL - 0x1234_5678UL, run);

        Assert.True(space.TryTranslate(0xffff_ffff_8101_0008UL, out pa, out run, out f), f);
        Assert.Equal(0x0121_0008UL, pa);
        Assert.Equal(0x20_0000UL - 0x1_0008UL, run);

        Assert.True(space.TryTranslate(0xffff_c900_0000_3ff8UL, out pa, out run, out f), f);
        Assert.Equal(0x7ff8UL, pa);
        Assert.Equal(8UL, run);
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void Nx_software_bits_pat_and_sme_mask_are_not_part_of_the_address(int levels)
    {
        var (memory, b) = Setup(levels);
        const ulong sme = 1UL << 47;
        b.ExtraDirectoryBits = sme | NX;
        b.Map(0xffff_ffff_8100_0000UL, 0x0120_0000UL | sme, level: 2, extra: NX | 0x1000 /* PAT */ | (0x7fUL << 52));
        b.Map(0x7000UL, 0x9000UL | sme, level: 1, extra: NX | (1UL << 58));
        var space = new X86_64PageTables(memory, b.Root, levels, smeMask: sme);
        Assert.True(space.TryTranslate(0xffff_ffff_8100_0010UL, out var pa, out _, out var f), f);
        Assert.Equal(0x0120_0010UL, pa);
        Assert.True(space.TryTranslate(0x7010UL, out pa, out _, out f), f);
        Assert.Equal(0x9010UL, pa);
    }

    [Fact]
    public void Missing_entries_name_their_level()
    {
        var (memory, b) = Setup(4);
        b.Map(0xffff_ffff_8100_0000UL, 0x0020_0000UL, level: 1);
        var space = new X86_64PageTables(memory, b.Root);

        Assert.False(space.TryTranslate(0xffff_ffff_8100_1000UL, out _, out _, out var f));
        Assert.Equal("cannot translate 0xffffffff81001000: PTE entry not present (0x0) at level 1", f);
        Assert.False(space.TryTranslate(0xffff_ffff_8140_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0xffffffff81400000: PMD entry not present (0x0) at level 2", f);
        Assert.False(space.TryTranslate(0xffff_ffff_4000_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0xffffffff40000000: PUD entry not present (0x0) at level 3", f);
        Assert.False(space.TryTranslate(0xffff_8880_0000_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0xffff888000000000: PGD entry not present (0x0) at level 4", f);
    }

    [Fact]
    public void Five_level_tables_name_the_p4d()
    {
        var (memory, b) = Setup(5);
        b.Map(0xff11_0000_0000_0000UL, 0, level: 3);
        var space = new X86_64PageTables(memory, b.Root, 5);
        Assert.True(space.TryTranslate(0xff11_0000_0000_0042UL, out var pa, out _, out var f), f);
        Assert.Equal(0x42UL, pa);
        Assert.False(space.TryTranslate(0xff11_0080_0000_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0xff11008000000000: P4D entry not present (0x0) at level 4", f);
        Assert.False(space.TryTranslate(0xff12_0000_0000_0000UL, out _, out _, out f));
        Assert.EndsWith("PGD entry not present (0x0) at level 5", f);
        Assert.Equal("PGD", space.LevelName(5));
        Assert.Equal("P4D", space.LevelName(4));
    }

    [Theory]
    [InlineData(4, 0x0000_8000_0000_0000UL)]
    [InlineData(4, 0xffff_0000_0000_0000UL)]
    [InlineData(5, 0x0100_0000_0000_0000UL)]
    [InlineData(5, 0xfe00_0000_0000_0000UL)]
    public void Non_canonical_addresses_fail(int levels, ulong va)
    {
        var (memory, b) = Setup(levels);
        var space = new X86_64PageTables(memory, b.Root, levels);
        Assert.False(space.TryTranslate(va, out _, out _, out var f));
        Assert.Equal($"cannot translate 0x{va:x}: non-canonical address for {levels}-level paging", f);
    }

    [Fact]
    public void The_lower_half_beyond_47_bits_is_canonical_with_5_levels()
    {
        var (memory, b) = Setup(5);
        b.Map(0x0000_8000_0000_0000UL, 0x5000, level: 1);
        Assert.True(new X86_64PageTables(memory, b.Root, 5).TryTranslate(0x0000_8000_0000_0008UL, out var pa, out _, out var f), f);
        Assert.Equal(0x5008UL, pa);
    }

    [Fact]
    public void Reserved_bits_are_refused()
    {
        var (memory, b) = Setup(4);
        // PS in a PGD (PML4E) entry is reserved.
        b.SetEntry(0xffff_8880_0000_0000UL, 4, 0x20_0000UL | P | PS);
        // 2 MiB page with bit 13 set; 1 GiB page with bit 20 set.
        b.SetEntry(0xffff_ffff_8100_0000UL, 2, 0x0120_0000UL | 0x2000 | P | PS);
        b.SetEntry(0xffff_c900_0000_0000UL, 3, 0x4000_0000UL | 0x10_0000 | P | PS);
        var space = new X86_64PageTables(memory, b.Root);

        Assert.False(space.TryTranslate(0xffff_8880_0000_0000UL, out _, out _, out var f));
        Assert.Equal("cannot translate 0xffff888000000000: reserved bit PS set in PGD entry 0x200081 at level 4", f);
        Assert.False(space.TryTranslate(0xffff_ffff_8100_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0xffffffff81000000: reserved bits set in PMD entry 0x1202081 at level 2", f);
        Assert.False(space.TryTranslate(0xffff_c900_0000_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0xffffc90000000000: reserved bits set in PUD entry 0x40100081 at level 3", f);
    }

    [Fact]
    public void Frames_beyond_the_physical_width_are_refused()
    {
        var (memory, b) = Setup(4);
        b.Map(0x1000, 1UL << 50, level: 1);
        b.SetEntry(0x4000_0000UL, 3, (1UL << 49) | P | RW);
        var space = new X86_64PageTables(memory, b.Root, physicalAddressBits: 46);
        Assert.False(space.TryTranslate(0x1000, out _, out _, out var f));
        Assert.Equal("cannot translate 0x1000: PTE entry 0x4000000000003 maps beyond the physical address width at level 1", f);
        Assert.False(space.TryTranslate(0x4000_0000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0x40000000: PUD entry 0x2000000000003 points beyond the physical address width at level 3", f);
        // Without the limit the 50-bit frame is accepted.
        Assert.True(new X86_64PageTables(memory, b.Root).TryTranslate(0x1000, out var pa, out _, out f), f);
        Assert.Equal(1UL << 50, pa);
    }

    [Fact]
    public void Unreadable_tables_say_where()
    {
        var (memory, b) = Setup(4);
        b.SetEntry(0x1000, 2, 0x7777_0000UL | P | RW);
        var space = new X86_64PageTables(memory, b.Root);
        Assert.False(space.TryTranslate(0x1000, out _, out _, out var f));
        Assert.Equal("cannot translate 0x1000: cannot read PTE entry at physical 0x77770008 (physical address 0x77770008 not in memory) at level 1", f);
        Assert.False(new X86_64PageTables(memory, 0x9999_0000UL).TryTranslate(0x1000, out _, out _, out f));
        Assert.StartsWith("cannot translate 0x1000: cannot read PGD entry at physical 0x99990000", f);
    }

    [Fact]
    public void A_table_pointing_at_itself_ends_after_one_read_per_level()
    {
        var memory = new SparsePhysicalMemory();
        const ulong root = 0x10_0000;
        // Entry 0 of the root points back to the root: every level reads the same table.
        memory.WriteU64(root, root | P | RW);
        var space = new X86_64PageTables(memory, root);
        var before = memory.Reads;
        Assert.True(space.TryTranslate(0x123, out var pa, out _, out var f), f);
        Assert.Equal(root + 0x123, pa);
        Assert.Equal(4, memory.Reads - before);
    }

    [Fact]
    public void Linux_prot_none_ptes_are_present_with_an_inverted_frame()
    {
        var (memory, b) = Setup(4);
        const ulong protNone = 1UL << 8;
        b.SetEntry(0x40_0000UL, 1, (~0x1234_5000UL & 0x000f_ffff_ffff_f000UL) | protNone);
        var space = new X86_64PageTables(memory, b.Root);
        Assert.True(space.TryTranslate(0x40_0010UL, out var pa, out _, out var f), f);
        Assert.Equal(0x1234_5010UL, pa);
        // A swap entry (neither present nor PROT_NONE) is not present; its failure names the swap entry.
        b.SetEntry(0x40_1000UL, 1, 0x3_0000_0000_0000UL | 0x200);
        Assert.False(space.TryTranslate(0x40_1000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0x401000: PTE entry 0x3000000000200 swapped out (swap type 0, offset 0x3fe7ffffffffe) at level 1", f);
    }

    [Fact]
    public void Constructor_rejects_impossible_modes()
    {
        using var memory = new SparsePhysicalMemory();
        Assert.Throws<ArgumentOutOfRangeException>(() => new X86_64PageTables(memory, 0, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => new X86_64PageTables(memory, 0, 4, physicalAddressBits: 60));
    }
}
