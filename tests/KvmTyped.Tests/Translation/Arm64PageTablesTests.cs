using KvmTyped.Translation;
using static KvmTyped.Tests.TestSupport.Arm64TableBuilder;

namespace KvmTyped.Tests.Translation;

/// <summary>aarch64 tables built in code for every configuration Linux uses (<see cref="Arm64Config.All"/>).</summary>
public class Arm64PageTablesTests
{
    private static (SparsePhysicalMemory Memory, Arm64TableBuilder Builder, Arm64Config Config) Setup(string name)
    {
        var config = Arm64Config.All[name];
        var memory = new SparsePhysicalMemory();
        return (memory, new Arm64TableBuilder(memory, config), config);
    }

    private static string Name(Arm64Config c, int level) => level == c.StartLevel
        ? "PGD"
        : level switch { 3 => "PTE", 2 => "PMD", 1 => "PUD", 0 => "P4D", _ => throw new ArgumentOutOfRangeException(nameof(level)) };

    private static string X(ulong v) => $"0x{v:x}";

    /// <summary>A page-aligned physical address that needs the config's full width: above 2^48 where descriptors can
    /// hold it (bits 51:48 all set), else below.</summary>
    private static ulong HighPhysical(Arm64Config c) =>
        (c.HasHighAddresses ? 0x000f_0000_0000_0000UL : 0) | (0x0000_edcb_a987_6000UL & ~(c.PageBytes - 1));

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void Walker_starts_where_the_va_size_and_granule_say(string name)
    {
        var (memory, b, c) = Setup(name);
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel);
        Assert.Equal(c.StartLevel, space.StartLevel);
        Assert.Equal(c.RootEntries, space.RootEntries);
        for (var level = c.StartLevel; level <= 3; level++)
        {
            Assert.Equal(Name(c, level), space.LevelName(level));
            Assert.Equal(c.BlockLevels.Contains(level), space.IsBlockLevel(level));
            Assert.Equal(1UL << c.Shift(level), space.EntrySpan(level));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => space.LevelName(c.StartLevel - 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => space.LevelName(4));
    }

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void Pages_translate_through_a_table_at_every_level_reading_one_entry_each(string name)
    {
        var (memory, b, c) = Setup(name);
        var kernelVa = c.KernelBase + ((c.RootEntries - 1) << c.Shift(c.StartLevel)) + (7 * c.PageBytes);
        var pa = HighPhysical(c);
        b.MapPage(kernelVa, pa, PXN | UXN);
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel);

        var before = memory.Reads;
        Assert.True(space.TryTranslate(kernelVa + 0x123, out var phys, out var run, out var f), f);
        Assert.Equal(3 - c.StartLevel + 1, memory.Reads - before);
        Assert.Equal(pa + 0x123, phys);
        Assert.Equal(c.PageBytes - 0x123, run);
        Assert.True(space.TryTranslate(kernelVa + c.PageBytes - 1, out phys, out run, out f), f);
        Assert.Equal(pa + c.PageBytes - 1, phys);
        Assert.Equal(1UL, run);

        // The neighbouring page's PTE is empty; the user half has tables of its own.
        Assert.False(space.TryTranslate(kernelVa + c.PageBytes, out _, out _, out f));
        Assert.Equal($"cannot translate {X(kernelVa + c.PageBytes)}: PTE entry not present (0x0) at level 3", f);

        var um = new SparsePhysicalMemory();
        var ub = new Arm64TableBuilder(um, c);
        var userVa = (c.UserEnd >> 1) + (3 * c.PageBytes);
        ub.MapPage(userVa, 0x8000_0000UL, NG | UXN);
        var user = c.Walker(um, ub.Root, Arm64AddressHalf.User);
        Assert.True(user.TryTranslate(userVa + 0x10, out phys, out run, out f), f);
        Assert.Equal(0x8000_0010UL, phys);
        Assert.Equal(c.PageBytes - 0x10, run);
    }

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void Every_block_size_the_granule_allows_translates(string name)
    {
        var (memory, b, c) = Setup(name);
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel);
        foreach (var level in c.BlockLevels)
        {
            var span = 1UL << c.Shift(level);
            var va = c.KernelBase + ((ulong)(level - c.StartLevel + 1) * 3 * span);
            var pa = (c.HasHighAddresses ? 0x000c_0000_0000_0000UL : 0) + (5 * span);
            b.MapBlock(va, pa, level, PXN);
            Assert.True(space.TryTranslate(va + 0x1238, out var phys, out var run, out var f), f);
            Assert.Equal(pa + 0x1238, phys);
            Assert.Equal(span - 0x1238, run);
            Assert.True(space.TryTranslate(va + span - 8, out phys, out run, out f), f);
            Assert.Equal(pa + span - 8, phys);
            Assert.Equal(8UL, run);
        }
    }

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void The_contiguous_hint_changes_nothing_and_contiguous_stops_at_the_descriptor(string name)
    {
        var (memory, b, c) = Setup(name);
        var va = c.KernelBase + (16 * c.PageBytes);
        for (ulong i = 0; i < 16; i++)
            b.MapPage(va + (i * c.PageBytes), 0x6000_0000UL + (i * c.PageBytes), Cont);
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel);
        Assert.True(space.TryTranslate(va + (3 * c.PageBytes) + 0x40, out var phys, out var run, out var f), f);
        Assert.Equal(0x6000_0000UL + (3 * c.PageBytes) + 0x40, phys);
        Assert.Equal(c.PageBytes - 0x40, run);

        var level = c.BlockLevels.Max();
        var span = 1UL << c.Shift(level);
        b.MapBlock(c.KernelBase + (2 * span), 4 * span, level, Cont);
        Assert.True(space.TryTranslate(c.KernelBase + (2 * span) + 0x1000, out phys, out run, out f), f);
        Assert.Equal((4 * span) + 0x1000, phys);
        Assert.Equal(span - 0x1000, run);
    }

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void Missing_entries_name_their_level(string name)
    {
        var c = Arm64Config.All[name];
        for (var level = c.StartLevel; level <= 3; level++)
        {
            var memory = new SparsePhysicalMemory();
            var b = new Arm64TableBuilder(memory, c);
            var va = c.KernelBase + (5 * c.PageBytes) + 0x18;
            b.EntryAddress(va, level);
            var space = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel);
            Assert.False(space.TryTranslate(va, out _, out _, out var f));
            Assert.Equal($"cannot translate {X(va)}: {Name(c, level)} entry not present (0x0) at level {level}", f);
        }
    }

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void Blocks_where_the_level_forbids_them_and_0b01_at_level_3_are_reserved(string name)
    {
        var (memory, b, c) = Setup(name);
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel);
        var forbidden = Enumerable.Range(c.StartLevel, 3 - c.StartLevel).Where(l => !c.BlockLevels.Contains(l)).ToList();
        List<int> expectedForbidden = name switch
        {
            "4k-48" => [0], "16k-47" => [1], "16k-48" => [0, 1], "64k-48" => [1], "4k-52-lpa2" => [-1], "16k-52-lpa2" => [0],
            _ => new List<int>(),
        };
        Assert.Equal(expectedForbidden, forbidden);
        foreach (var level in forbidden)
        {
            var va = c.KernelBase + ((ulong)(level - c.StartLevel + 1) << c.Shift(level));
            var entry = b.Encode(0x4000_0000UL & ~((1UL << c.Shift(level)) - 1)) | TypeBlock | AF;
            b.SetEntry(va, level, entry);
            Assert.False(space.TryTranslate(va, out _, out _, out var f));
            Assert.Equal($"cannot translate {X(va)}: reserved block descriptor in {Name(c, level)} entry {X(entry)} at level {level}", f);
        }

        var pageVa = c.KernelBase + (9 * c.PageBytes);
        var pte = b.Encode(0x5000_0000UL) | TypeBlock | AF;
        b.SetEntry(pageVa, 3, pte);
        Assert.False(space.TryTranslate(pageVa + 4, out _, out _, out var failure));
        Assert.Equal($"cannot translate {X(pageVa + 4)}: reserved descriptor type 0b01 in PTE entry {X(pte)} at level 3", failure);
    }

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void Reserved_bits_are_refused_with_level_and_entry(string name)
    {
        var (memory, b, c) = Setup(name);
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel);

        // Address bits inside a block: the lowest address bit of every block size.
        foreach (var level in c.BlockLevels)
        {
            var span = 1UL << c.Shift(level);
            var va = c.KernelBase + (6 * span);
            var entry = b.Encode(8 * span) | (span >> 1) | TypeBlock | AF;
            b.SetEntry(va, level, entry);
            Assert.False(space.TryTranslate(va, out _, out _, out var f));
            Assert.Equal($"cannot translate {X(va)}: reserved bits set in {Name(c, level)} entry {X(entry)} at level {level}", f);
        }

        // Descriptor bits that are no address in this format: 48 (49:48 are RES0 in leaves without LPA2), and 12 with
        // 16 or 64 KiB pages (below the granule, unless LPA puts address bits 51:48 there).
        var pageVa = c.KernelBase + (20 * c.PageBytes);
        var noAddress = new List<ulong>();
        if (c.Format != Arm64OutputAddressFormat.Lpa2)
            noAddress.Add(1UL << 48);
        if (c.Granule != Arm64Granule.Size4K && c.Format != Arm64OutputAddressFormat.Lpa)
            noAddress.Add(1UL << 12);
        Assert.Equal(name switch { "4k-52-lpa2" => 0, "16k-52-lpa2" or "64k-52-lpa" or "4k-39" or "4k-48" => 1, _ => 2 }, noAddress.Count);
        foreach (var bit in noAddress)
        {
            var pte = b.Encode(0x5000_0000UL) | bit | TypePage | AF;
            b.SetEntry(pageVa, 3, pte);
            Assert.False(space.TryTranslate(pageVa, out _, out _, out var f));
            Assert.Equal($"cannot translate {X(pageVa)}: reserved bits set in PTE entry {X(pte)} at level 3", f);
        }

        // A table descriptor with an address bit its format does not have (51 is RES0 in every format).
        var tableVa = c.KernelBase + ((c.RootEntries - 1) << c.Shift(c.StartLevel));
        var table = b.Encode(b.Allocate()) | (1UL << 51) | TypeTable;
        b.SetEntry(tableVa, c.StartLevel, table);
        Assert.False(space.TryTranslate(tableVa, out _, out _, out var tf));
        Assert.Equal($"cannot translate {X(tableVa)}: reserved bits set in PGD entry {X(table)} at level {c.StartLevel}", tf);
    }

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void Attributes_never_reach_the_address(string name)
    {
        var (memory, b, c) = Setup(name);
        // Lower attributes 11:2 (LPA2 uses 9:8 for the address), upper attributes and ignored bits 63:50; tables carry
        // their hierarchical attributes 63:59 and ignored bits 58:52 and 11:2.
        var lower = c.Format == Arm64OutputAddressFormat.Lpa2 ? 0xcfcUL : 0xffcUL;
        var upper = 0xfffc_0000_0000_0000UL;
        b.ExtraTableBits = lower | 0xfff0_0000_0000_0000UL;
        var va = c.KernelBase + (33 * c.PageBytes);
        var pa = HighPhysical(c);
        b.MapPage(va, pa, lower | upper);
        var level = c.BlockLevels.Min();
        var span = 1UL << c.Shift(level);
        var blockVa = c.KernelBase + (2 * span);
        // nT (bit 16, FEAT_BBM) is an attribute of blocks.
        b.MapBlock(blockVa, 3 * span, level, lower | upper | (1UL << 16));
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel);

        Assert.True(space.TryTranslate(va + 0x88, out var phys, out _, out var f), f);
        Assert.Equal(pa + 0x88, phys);
        Assert.True(space.TryTranslate(blockVa + 0x10_0000, out phys, out _, out f), f);
        Assert.Equal((3 * span) + 0x10_0000, phys);
    }

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void Addresses_beyond_the_physical_width_are_refused(string name)
    {
        var (memory, b, c) = Setup(name);
        var va = c.KernelBase + (40 * c.PageBytes);
        b.MapPage(va, 1UL << 41);
        var tableVa = c.KernelBase + ((c.RootEntries - 1) << c.Shift(c.StartLevel));
        var table = b.Encode(1UL << 42) | TypeTable;
        b.SetEntry(tableVa, c.StartLevel, table);
        var narrow = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel, paBits: 40);
        var pte = b.Encode(1UL << 41) | TypePage | AF;

        Assert.False(narrow.TryTranslate(va, out _, out _, out var f));
        Assert.Equal($"cannot translate {X(va)}: PTE entry {X(pte)} maps beyond the physical address width at level 3", f);
        Assert.False(narrow.TryTranslate(tableVa, out _, out _, out f));
        Assert.Equal($"cannot translate {X(tableVa)}: PGD entry {X(table)} points beyond the physical address width at level {c.StartLevel}", f);
        // The default width takes them.
        Assert.True(c.Walker(memory, b.Root, Arm64AddressHalf.Kernel).TryTranslate(va + 1, out var phys, out _, out f), f);
        Assert.Equal((1UL << 41) + 1, phys);

        // A block that starts inside the width but ends beyond it is refused as well.
        var level = c.BlockLevels.Max();
        var span = 1UL << c.Shift(level);
        var blockVa = c.KernelBase + (4 * span);
        b.MapBlock(blockVa, (1UL << 40) - span, level);
        Assert.True(narrow.TryTranslate(blockVa + span - 1, out phys, out _, out f), f);
        Assert.Equal((1UL << 40) - 1, phys);
        b.MapBlock(blockVa, 1UL << 40, level);
        Assert.False(narrow.TryTranslate(blockVa, out _, out _, out f));
        Assert.EndsWith($"maps beyond the physical address width at level {level}", f);

        if (!c.HasHighAddresses)
            return;
        // With LPA or LPA2 the default width is 52 bits; a 48-bit limit refuses what only the high bits reach.
        var highVa = c.KernelBase + (41 * c.PageBytes);
        b.MapPage(highVa, HighPhysical(c));
        Assert.True(c.Walker(memory, b.Root, Arm64AddressHalf.Kernel).TryTranslate(highVa, out phys, out _, out f), f);
        Assert.Equal(HighPhysical(c), phys);
        Assert.False(c.Walker(memory, b.Root, Arm64AddressHalf.Kernel, paBits: 48).TryTranslate(highVa, out _, out _, out f));
        Assert.EndsWith("maps beyond the physical address width at level 3", f);
    }

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void Tables_above_2_to_the_48_are_followed_where_the_format_allows(string name)
    {
        var c = Arm64Config.All[name];
        if (!c.HasHighAddresses)
            return;
        var memory = new SparsePhysicalMemory();
        var b = new Arm64TableBuilder(memory, c, tablesAt: 0x000f_0000_4000_0000UL);
        var va = c.KernelBase + (12 * c.PageBytes);
        b.MapPage(va, 0x4000_0000UL);
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel);
        Assert.True(space.TryTranslate(va + 5, out var phys, out _, out var f), f);
        Assert.Equal(0x4000_0005UL, phys);
    }

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void Addresses_of_the_other_half_or_of_neither_half_are_refused(string name)
    {
        var (memory, b, c) = Setup(name);
        var kernel = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel);
        var user = c.Walker(memory, b.Root, Arm64AddressHalf.User);
        var bits = c.VaBits;

        Assert.False(kernel.TryTranslate(0x1000, out _, out _, out var f));
        Assert.Equal($"cannot translate 0x1000: a user (TTBR0) address, but these are kernel (TTBR1) tables (bits 63:{bits} are all zeros)", f);
        Assert.False(user.TryTranslate(c.KernelBase, out _, out _, out f));
        Assert.Equal($"cannot translate {X(c.KernelBase)}: a kernel (TTBR1) address, but these are user (TTBR0) tables (bits 63:{bits} are all ones)", f);
        foreach (var va in new[] { c.UserEnd, c.KernelBase - 1, 0x8000_0000_0000_0000UL, 0x00ff_0000_0000_1000UL })
        {
            if (bits == 52 && va == 0x00ff_0000_0000_1000UL)
                continue;
            foreach (var space in new[] { kernel, user })
            {
                Assert.False(space.TryTranslate(va, out _, out _, out f));
                Assert.Equal($"cannot translate {X(va)}: in neither half of the {bits}-bit address space (bits 63:{bits} are neither all zeros nor all ones)", f);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void The_top_of_each_half_translates_without_wrapping(string name)
    {
        var (memory, b, c) = Setup(name);
        var last = ~0UL - c.PageBytes + 1;
        b.MapPage(last, 0x7000_0000UL);
        var kernel = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel);
        Assert.True(kernel.TryTranslate(ulong.MaxValue, out var phys, out var run, out var f), f);
        Assert.Equal(0x7000_0000UL + c.PageBytes - 1, phys);
        Assert.Equal(1UL, run);

        var um = new SparsePhysicalMemory();
        var ub = new Arm64TableBuilder(um, c);
        ub.MapPage(c.UserEnd - c.PageBytes, 0x7100_0000UL);
        var user = c.Walker(um, ub.Root, Arm64AddressHalf.User);
        Assert.True(user.TryTranslate(c.UserEnd - 1, out phys, out run, out f), f);
        Assert.Equal(0x7100_0000UL + c.PageBytes - 1, phys);
        Assert.Equal(1UL, run);
        Assert.False(user.TryTranslate(c.UserEnd, out _, out _, out f));
        Assert.Contains("in neither half", f);
    }

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void Unreadable_tables_say_where(string name)
    {
        var (memory, b, c) = Setup(name);
        var va = c.KernelBase + (2 * c.PageBytes);
        var missing = 0x7770_0000UL;
        b.SetEntry(va, 2, b.Encode(missing) | TypeTable);
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel);
        var entryAt = missing + (((va >> c.PageShift) & ((1UL << (c.PageShift - 3)) - 1)) * 8);
        Assert.False(space.TryTranslate(va, out _, out _, out var f));
        Assert.Equal($"cannot translate {X(va)}: cannot read PTE entry at physical {X(entryAt)} (physical address {X(entryAt)} not in memory) at level 3", f);
        Assert.False(c.Walker(memory, 0x9999_0000UL, Arm64AddressHalf.Kernel).TryTranslate(va, out _, out _, out f));
        Assert.StartsWith($"cannot translate {X(va)}: cannot read PGD entry at physical 0x9999", f);
        Assert.EndsWith($"at level {c.StartLevel}", f);
    }

    [Theory]
    [MemberData(nameof(Arm64Config.Names), MemberType = typeof(Arm64Config))]
    public void A_table_pointing_at_itself_ends_after_one_read_per_level(string name)
    {
        var c = Arm64Config.All[name];
        var memory = new SparsePhysicalMemory();
        var b = new Arm64TableBuilder(memory, c);
        // Entry 0 of the root points back at the root: every level reads it, and level 3 takes it as a page.
        memory.WriteU64(b.Root, b.Encode(b.Root) | TypeTable);
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.User);
        var before = memory.Reads;
        Assert.True(space.TryTranslate(0x123, out var phys, out _, out var f), f);
        Assert.Equal(b.Root + 0x123, phys);
        Assert.Equal(4 - c.StartLevel, memory.Reads - before);
    }

    [Fact]
    public void Linux_6_1_prot_none_and_splitting_huge_pages_are_translated()
    {
        var (memory, b, c) = Setup("4k-48");
        // PAGE_NONE: PTE_TYPE_PAGE without the valid bit, PTE_PROT_NONE (58), RDONLY, nG, PXN, UXN.
        var protNone = b.Encode(0x4394_2000UL) | 0x2 | AF | NG | (1UL << 7) | PXN | UXN | (1UL << 58);
        b.SetEntry(0x1337_0000UL, 3, protNone);
        // A PMD huge page being split: valid bit and table bit clear, PMD_PRESENT_INVALID (59).
        var splitting = b.Encode(0x4060_0000UL) | AF | (1UL << 59);
        b.SetEntry(0x4000_0000UL, 2, splitting);
        // A PROT_NONE huge PMD: bit 1 clear (pmd_mkhuge), bit 58.
        b.SetEntry(0x4020_0000UL, 2, b.Encode(0x4080_0000UL) | AF | (1UL << 58));
        // Shaped like a table (bit 1 set) above level 3: not present, never followed.
        var tableShaped = b.Encode(0x4200_0000UL) | 0x2 | (1UL << 58);
        b.SetEntry(0x4040_0000UL, 2, tableShaped);
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.User);

        Assert.True(space.TryTranslate(0x1337_0abcUL, out var phys, out var run, out var f), f);
        Assert.Equal(0x4394_2abcUL, phys);
        Assert.Equal(0x544UL, run);
        Assert.False(space.TryGetSwapEntry(0x1337_0000UL, out _, out _));
        Assert.True(space.TryTranslate(0x4001_0000UL, out phys, out run, out f), f);
        Assert.Equal(0x4061_0000UL, phys);
        Assert.Equal(0x1f_0000UL, run);
        Assert.True(space.TryTranslate(0x4020_0010UL, out phys, out _, out f), f);
        Assert.Equal(0x4080_0010UL, phys);
        Assert.False(space.TryTranslate(0x4040_0000UL, out _, out _, out f));
        Assert.Equal($"cannot translate 0x40400000: PMD entry not present ({X(tableShaped)}) at level 2", f);

        // Under the 6.10 layout bit 58 marks nothing and bit 59 is swap offset: the PTE reads as a swap entry.
        var newer = c.Walker(memory, b.Root, Arm64AddressHalf.User, pte: Arm64LinuxPteFormat.PresentInvalidNg);
        Assert.True(newer.TryTranslate(0x1337_0000UL, out phys, out _, out f), f); // nG (bit 11) is set in PAGE_NONE too
        Assert.False(newer.TryTranslate(0x4000_0000UL, out _, out _, out f));
        Assert.Equal($"cannot translate 0x40000000: PMD entry not present ({X(splitting)}) at level 2", f);
    }

    [Fact]
    public void Linux_6_10_present_invalid_entries_overlay_ng()
    {
        var (memory, b, c) = Setup("16k-52-lpa2");
        var pa = HighPhysical(c);
        // 6.10+ PAGE_NONE: the valid bit clear, PTE_PRESENT_INVALID = nG (bit 11).
        var pte = b.Encode(pa) | 0x2 | AF | NG | PXN | UXN;
        b.SetEntry(0x1000_0000UL, 3, pte);
        var span = 1UL << c.Shift(2);
        b.SetEntry(4 * span, 2, b.Encode(8 * span) | AF | NG);
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.User, pte: Arm64LinuxPteFormat.PresentInvalidNg);
        Assert.True(space.TryTranslate(0x1000_0008UL, out var phys, out _, out var f), f);
        Assert.Equal(pa + 8, phys);
        Assert.True(space.TryTranslate((4 * span) + 0x20, out phys, out _, out f), f);
        Assert.Equal((8 * span) + 0x20, phys);
        Assert.False(space.TryGetSwapEntry(0x1000_0000UL, out _, out _));
    }

    public static TheoryData<int, ulong> SwapEntries => new()
    {
        { 0, 1 }, { 1, 0x1234 }, { 7, 0xf_ffff }, { 29, 0x3_ffff_ffff_ffffUL }, { 31, 0x2_0000_0000_0001UL },
    };

    /// <summary>Linux 6.1 (__swp_entry, arch/arm64/include/asm/pgtable.h): type in bits 3–7, offset in bits 8–57,
    /// PG_anon_exclusive in bit 2.</summary>
    [Theory]
    [MemberData(nameof(SwapEntries))]
    public void Linux_6_1_swap_entries_decode(int type, ulong offset)
    {
        var (memory, b, c) = Setup("4k-48");
        b.MapPage(0x7fff_0000_0000UL, 0x4000_0000UL);
        var pte = ((ulong)type << 3) | (offset << 8) | 0x4;
        b.SetEntry(0x7fff_0000_1000UL, 3, pte);
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.User);
        Assert.True(space.TryGetSwapEntry(0x7fff_0000_1abcUL, out var t, out var o));
        Assert.Equal((type, offset), (t, o));
        Assert.False(space.TryTranslate(0x7fff_0000_1abcUL, out _, out _, out var f));
        Assert.Equal($"cannot translate 0x7fff00001abc: PTE entry {X(pte)} swapped out (swap type {type}, offset {X(offset)}) at level 3", f);
        Assert.False(space.TryGetSwapEntry(0x7fff_0000_0000UL, out _, out _));
        Assert.False(space.TryGetSwapEntry(0x7fff_0000_2000UL, out _, out _));
        Assert.False(space.TryGetSwapEntry(0x1000UL, out _, out _));

        // The kernel's tables have no swap: the same bits there are just an invalid entry.
        var kernelVa = 0xffff_8000_0000_1000UL;
        b.SetEntry(kernelVa, 3, pte);
        var kernel = c.Walker(memory, b.Root, Arm64AddressHalf.Kernel);
        Assert.False(kernel.TryGetSwapEntry(kernelVa, out _, out _));
        Assert.False(kernel.TryTranslate(kernelVa, out _, out _, out f));
        Assert.Equal($"cannot translate 0xffff800000001000: PTE entry not present ({X(pte)}) at level 3", f);
    }

    /// <summary>Linux 6.10 on (6.12 headers): type in bits 6–10, offset in bits 12–61, uffd-wp in bit 3.</summary>
    [Theory]
    [MemberData(nameof(SwapEntries))]
    public void Linux_6_10_swap_entries_decode(int type, ulong offset)
    {
        var (memory, b, c) = Setup("64k-42");
        var pte = ((ulong)type << 6) | (offset << 12) | 0x4 | 0x8;
        b.SetEntry(0x10_0000_0000UL, 3, pte);
        var space = c.Walker(memory, b.Root, Arm64AddressHalf.User, pte: Arm64LinuxPteFormat.PresentInvalidNg);
        Assert.True(space.TryGetSwapEntry(0x10_0000_0010UL, out var t, out var o));
        Assert.Equal((type, offset), (t, o));
        Assert.False(space.TryTranslate(0x10_0000_0010UL, out _, out _, out var f));
        Assert.Equal($"cannot translate 0x1000000010: PTE entry {X(pte)} swapped out (swap type {type}, offset {X(offset)}) at level 3", f);
    }

    [Fact]
    public void A_cache_in_front_serves_64k_pages_and_blocks_per_4k_slot()
    {
        var (memory, b, c) = Setup("64k-42");
        b.MapPage(0xffff_fc00_0001_0000UL, 0x5000_0000UL);
        b.MapBlock(0xffff_fc00_2000_0000UL, 0x6000_0000UL, 2);
        var cache = new TranslationCache(c.Walker(memory, b.Root, Arm64AddressHalf.Kernel), 16);
        foreach (var (va, pa) in new[] { (0xffff_fc00_0001_f123UL, 0x5000_f123UL), (0xffff_fc00_2345_6789UL, 0x6345_6789UL) })
        {
            for (var i = 0; i < 2; i++)
            {
                Assert.True(cache.TryTranslate(va, out var phys, out _, out var f), f);
                Assert.Equal(pa, phys);
            }
        }
    }

    [Fact]
    public void Constructor_rejects_impossible_configurations()
    {
        using var memory = new SparsePhysicalMemory();
        Assert.Throws<ArgumentException>(() => new Arm64PageTables(memory, 0, Arm64Granule.Size4K, 48, Arm64AddressHalf.Kernel, Arm64OutputAddressFormat.Lpa));
        Assert.Throws<ArgumentException>(() => new Arm64PageTables(memory, 0, Arm64Granule.Size64K, 48, Arm64AddressHalf.Kernel, Arm64OutputAddressFormat.Lpa2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Arm64PageTables(memory, 0, Arm64Granule.Size4K, 52, Arm64AddressHalf.Kernel));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Arm64PageTables(memory, 0, Arm64Granule.Size16K, 49, Arm64AddressHalf.Kernel));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Arm64PageTables(memory, 0, Arm64Granule.Size4K, 24, Arm64AddressHalf.Kernel));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Arm64PageTables(memory, 0, Arm64Granule.Size4K, 48, Arm64AddressHalf.Kernel, physicalAddressBits: 52));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Arm64PageTables(memory, 0, Arm64Granule.Size64K, 48, Arm64AddressHalf.Kernel, Arm64OutputAddressFormat.Lpa, physicalAddressBits: 31));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Arm64PageTables(memory, 0x1004, Arm64Granule.Size4K, 48, Arm64AddressHalf.Kernel));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Arm64PageTables(memory, 1UL << 48, Arm64Granule.Size4K, 48, Arm64AddressHalf.Kernel));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Arm64PageTables(memory, 0, (Arm64Granule)13, 48, Arm64AddressHalf.Kernel));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Arm64PageTables(memory, 0, Arm64Granule.Size4K, 48, (Arm64AddressHalf)2));
        // 64 KiB pages take 52-bit VAs with 48-bit output addresses (FEAT_LVA without LPA).
        Assert.Equal(1, new Arm64PageTables(memory, 0, Arm64Granule.Size64K, 52, Arm64AddressHalf.Kernel).StartLevel);
    }

    [Fact]
    public void Random_tables_never_throw_and_stay_bounded()
    {
        var random = new Random(11);
        var memory = new SparsePhysicalMemory();
        // 1 MiB of noise; a third of the words are descriptors of random type pointing into it.
        for (ulong page = 0; page < 256; page++)
        {
            var bytes = memory.Page(page << 12);
            random.NextBytes(bytes);
            for (var i = 0; i < bytes.Length; i += 8)
            {
                if (random.Next(3) == 0)
                    BitConverter.TryWriteBytes(bytes.AsSpan(i), ((ulong)(uint)random.Next(256) << 12) | (uint)random.Next(4) | (random.Next(4) == 0 ? 1UL << 58 : 0));
            }
        }
        var answered = 0;
        var refused = 0;
        foreach (var c in Arm64Config.All.Values)
        {
            foreach (var half in new[] { Arm64AddressHalf.User, Arm64AddressHalf.Kernel })
            {
                var space = c.Walker(memory, 0x1_0000, half);
                for (var i = 0; i < 3000; i++)
                {
                    var va = (ulong)random.NextInt64() & (c.UserEnd - 1);
                    if (half == Arm64AddressHalf.Kernel)
                        va |= c.KernelBase;
                    var before = memory.Reads;
                    if (space.TryTranslate(va, out _, out var run, out var failure))
                    {
                        Assert.True(run >= 1);
                        answered++;
                    }
                    else
                    {
                        Assert.StartsWith($"cannot translate 0x{va:x}: ", failure);
                        refused++;
                    }
                    space.TryGetSwapEntry(va, out _, out _);
                    Assert.InRange(memory.Reads - before, 0, 2 * (4 - c.StartLevel));
                }
            }
        }
        Assert.True(answered > 0 && refused > 0, $"{answered} answered, {refused} refused");
    }
}
