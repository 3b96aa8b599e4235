using KvmTyped.Translation;

namespace KvmTyped.Tests.TestSupport;

/// <summary>TEST HELPER ONLY: one aarch64 configuration of the test matrix — granule, VA size, output address
/// format — with what the architecture says about it, written out by hand rather than computed.</summary>
internal sealed record Arm64Config(string Name, Arm64Granule Granule, int VaBits, Arm64OutputAddressFormat Format,
    int StartLevel, ulong RootEntries, int[] BlockLevels)
{
    public int PageShift => (int)Granule;

    public ulong PageBytes => 1UL << PageShift;

    /// <summary>The configurations Linux builds: 4 KiB with 39 and 48 bits, 16 KiB with 47 (three levels) and 48 (a
    /// two-entry level 0), 64 KiB with 42 and 48, 64 KiB with 52 bits and LPA, 4 and 16 KiB with 52 bits and LPA2.</summary>
    public static readonly IReadOnlyDictionary<string, Arm64Config> All = new Arm64Config[]
    {
        new("4k-39", Arm64Granule.Size4K, 39, Arm64OutputAddressFormat.Bits48, 1, 512, [1, 2]),
        new("4k-48", Arm64Granule.Size4K, 48, Arm64OutputAddressFormat.Bits48, 0, 512, [1, 2]),
        new("16k-47", Arm64Granule.Size16K, 47, Arm64OutputAddressFormat.Bits48, 1, 2048, [2]),
        new("16k-48", Arm64Granule.Size16K, 48, Arm64OutputAddressFormat.Bits48, 0, 2, [2]),
        new("64k-42", Arm64Granule.Size64K, 42, Arm64OutputAddressFormat.Bits48, 2, 8192, [2]),
        new("64k-48", Arm64Granule.Size64K, 48, Arm64OutputAddressFormat.Bits48, 1, 64, [2]),
        new("64k-52-lpa", Arm64Granule.Size64K, 52, Arm64OutputAddressFormat.Lpa, 1, 1024, [1, 2]),
        new("4k-52-lpa2", Arm64Granule.Size4K, 52, Arm64OutputAddressFormat.Lpa2, -1, 16, [0, 1, 2]),
        new("16k-52-lpa2", Arm64Granule.Size16K, 52, Arm64OutputAddressFormat.Lpa2, 0, 32, [1, 2]),
    }.ToDictionary(c => c.Name);

    public static TheoryData<string> Names => [.. All.Keys];

    /// <summary>Shift of the address bits a level indexes: 12 + 9 per level below 3 for 4 KiB, and so on.</summary>
    public int Shift(int level) => PageShift + ((PageShift - 3) * (3 - level));

    /// <summary>The lowest kernel (TTBR1) address: the top 64 − VaBits bits set.</summary>
    public ulong KernelBase => ~0UL << VaBits;

    /// <summary>One past the highest user (TTBR0) address.</summary>
    public ulong UserEnd => 1UL << VaBits;

    public bool HasHighAddresses => Format != Arm64OutputAddressFormat.Bits48;

    public Arm64PageTables Walker(SparsePhysicalMemory memory, ulong root, Arm64AddressHalf half, int? paBits = null,
        Arm64LinuxPteFormat pte = Arm64LinuxPteFormat.ProtNoneBit58) =>
        new(memory, root, Granule, VaBits, half, Format, paBits, pte);
}

/// <summary>TEST HELPER ONLY: writes aarch64 translation tables into a <see cref="SparsePhysicalMemory"/>, allocating
/// whole granule-sized tables from a bump pointer, with its own encoding of output addresses.</summary>
internal sealed class Arm64TableBuilder
{
    public const ulong Valid = 1, TypeTable = 3, TypePage = 3, TypeBlock = 1;
    public const ulong AF = 1UL << 10, NG = 1UL << 11, Cont = 1UL << 52, PXN = 1UL << 53, UXN = 1UL << 54;

    private readonly SparsePhysicalMemory _memory;
    private ulong _next;

    public Arm64TableBuilder(SparsePhysicalMemory memory, Arm64Config config, ulong tablesAt = 0x4000_0000)
    {
        _memory = memory;
        Config = config;
        _next = tablesAt;
        Root = Allocate();
    }

    public Arm64Config Config { get; }

    public ulong Root { get; }

    /// <summary>Bits OR-ed into every table descriptor written (hierarchical attributes, ignored bits).</summary>
    public ulong ExtraTableBits { get; set; }

    public ulong Allocate()
    {
        var table = _next;
        _next += Config.PageBytes;
        for (ulong off = 0; off < Config.PageBytes; off += 0x1000)
            _memory.Page(table + off);
        return table;
    }

    /// <summary>Places the tables allocated from now on at <paramref name="address"/>.</summary>
    public void MoveTablesTo(ulong address) => _next = address;

    /// <summary>An output address in descriptor form: bits 47 (49 with LPA2) down to the granule in place; with LPA
    /// bits 51:48 in 15:12; with LPA2 bits 51:50 in 9:8.</summary>
    public ulong Encode(ulong pa) => Config.Format switch
    {
        Arm64OutputAddressFormat.Lpa => (pa & 0x0000_ffff_ffff_0000UL) | (((pa >> 48) & 0xf) << 12),
        Arm64OutputAddressFormat.Lpa2 => (pa & 0x0003_ffff_ffff_f000UL & ~(Config.PageBytes - 1)) | (((pa >> 50) & 3) << 8),
        _ => pa & 0x0000_ffff_ffff_f000UL & ~(Config.PageBytes - 1),
    };

    private ulong Decode(ulong entry) => Config.Format switch
    {
        Arm64OutputAddressFormat.Lpa => (entry & 0x0000_ffff_ffff_0000UL) | (((entry >> 12) & 0xf) << 48),
        Arm64OutputAddressFormat.Lpa2 => (entry & 0x0003_ffff_ffff_f000UL & ~(Config.PageBytes - 1)) | (((entry >> 8) & 3) << 50),
        _ => entry & 0x0000_ffff_ffff_f000UL & ~(Config.PageBytes - 1),
    };

    private ulong Index(ulong va, int level)
    {
        var bits = level == Config.StartLevel ? Config.VaBits - Config.Shift(level) : Config.PageShift - 3;
        return (va >> Config.Shift(level)) & ((1UL << bits) - 1);
    }

    /// <summary>The physical address of the entry for <paramref name="va"/> at <paramref name="level"/>, creating the
    /// tables above it.</summary>
    public ulong EntryAddress(ulong va, int level)
    {
        var table = Root;
        for (var l = Config.StartLevel; l < level; l++)
        {
            var at = table + (Index(va, l) * 8);
            var entry = _memory.ReadU64(at);
            if ((entry & 3) != TypeTable)
            {
                entry = Encode(Allocate()) | TypeTable | ExtraTableBits;
                _memory.WriteU64(at, entry);
            }
            table = Decode(entry);
        }
        return table + (Index(va, level) * 8);
    }

    public void MapPage(ulong va, ulong pa, ulong extra = 0) =>
        _memory.WriteU64(EntryAddress(va, 3), Encode(pa) | TypePage | AF | extra);

    public void MapBlock(ulong va, ulong pa, int level, ulong extra = 0) =>
        _memory.WriteU64(EntryAddress(va, level), Encode(pa) | TypeBlock | AF | extra);

    public void SetEntry(ulong va, int level, ulong value) => _memory.WriteU64(EntryAddress(va, level), value);
}

internal static class SparsePhysicalMemoryArm64Extensions
{
    public static ulong ReadU64(this SparsePhysicalMemory memory, ulong at)
    {
        Span<byte> b = stackalloc byte[8];
        Assert.True(memory.TryRead(at, b, out var f), f);
        return BitConverter.ToUInt64(b);
    }
}
