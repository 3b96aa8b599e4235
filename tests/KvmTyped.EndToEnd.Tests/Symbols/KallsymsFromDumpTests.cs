using KvmTyped.Formats.Kdump;
using KvmTyped.Symbols;
using KvmTyped.TestSupport;
using Xunit.Abstractions;

namespace KvmTyped.EndToEnd.Tests.Symbols;

/// <summary>The kernel's own symbol table, decoded from each real dump's memory, against the fixture's System.map
/// (relocated by the KASLR offset the open found) and the guest's ground truth.</summary>
public class KallsymsFromDumpTests(ITestOutputHelper output)
{
    private readonly ITestOutputHelper _output = output;

    private const string PanicKdump = "amd64/panic-kaslr/dump.kdump-zlib";

    /// <summary>Folder of truth.json, core, System.map; Debian's amd64 kernel has CONFIG_KALLSYMS_ALL and (x86-64 SMP)
    /// CONFIG_KALLSYMS_ABSOLUTE_PERCPU; its 686-pae kernel has neither: text symbols only, base-relative.</summary>
    public static TheoryData<string, string, string, bool> Dumps => new()
    {
        { "amd64/nokaslr", EndToEnd.Tests.Dumps.NoKaslrElf, EndToEnd.Tests.Dumps.Amd64Map, true },
        { "amd64/kdump-kaslr", EndToEnd.Tests.Dumps.Amd64KdumpElf, EndToEnd.Tests.Dumps.Amd64Map, true },
        { "amd64/kdump-kaslr", EndToEnd.Tests.Dumps.Amd64Kdump, EndToEnd.Tests.Dumps.Amd64Map, true },
        { "amd64/panic-kaslr", PanicKdump, EndToEnd.Tests.Dumps.Amd64Map, true },
        { "i386/pae-kdump-kaslr", EndToEnd.Tests.Dumps.I386KdumpElf, EndToEnd.Tests.Dumps.I386Map, false },
        { "i386/pae-kdump-kaslr", EndToEnd.Tests.Dumps.I386Kdump, EndToEnd.Tests.Dumps.I386Map, false },
    };

    private static KallsymsSymbolTable Decode(Kvm kvm)
    {
        Assert.Empty(KallsymsTables.MissingKeys(kvm.VmcoreInfoData));
        var tables = KallsymsTables.FromVmcoreInfo(kvm.VmcoreInfoData, kvm.CorePath);
        Assert.NotNull(tables.Stext);
        Assert.True(tables.TwoByteLengths);
        return KallsymsImage.Decode(kvm.TryReadVirtual, tables, kvm.DataModel, kvm.CorePath, kvm.Machine);
    }

    [Theory]
    [MemberData(nameof(Dumps))]
    public void Kallsyms_in_the_dump_is_the_system_map_at_running_addresses(string folder, string core, string map, bool amd64)
    {
        using var kvm = Kvm.Open(Fixtures.Get(map), Fixtures.Get(core));
        Assert.Equal(Truth.Load(folder).KaslrOffset, kvm.KaslrOffset);
        using var table = Decode(kvm);

        Assert.Equal(KallsymsSymbolTable.KindName, table.Kind);
        Assert.Equal(kvm.CorePath, table.Source);
        Assert.Equal(kvm.DataModel, table.DataModel);
        Assert.Equal(amd64 ? KallsymsAddressMode.AbsolutePerCpu : KallsymsAddressMode.BaseRelative, table.Mode);

        var mapLines = KallsymsExpectation.ReadMap(Fixtures.Get(map));
        var selected = KallsymsExpectation.Select(mapLines, allSymbols: amd64, absolutePerCpu: amd64);
        // Running address = System.map address + the KASLR offset for the kernel image (from __START_KERNEL_map on
        // x86-64, PAGE_OFFSET on i386); x86-64's zero-based per-CPU symbols do not move.
        var imageBase = amd64 ? 0xffffffff80000000 : 0xc0000000;
        var expected = selected.Select(l => l with { Address = l.Address >= imageBase ? l.Address + kvm.KaslrOffset : l.Address })
            .Select(l => new KernelSymbol(l.Name, l.Address, l.Type)).ToList();

        // The count follows from the map and the kernel's selection rules: with CONFIG_KALLSYMS_ALL only a handful of
        // System.map lines are left out (absolute symbols, the kallsyms_* tables themselves); without it, the text only.
        Assert.Equal(expected.Count, table.Count);
        if (amd64)
            Assert.InRange(mapLines.Count - table.Count, 1, 30);
        else
            Assert.InRange(table.Count, mapLines.Count * 4 / 10, mapLines.Count * 6 / 10);

        var decoded = table.Symbols;
        Assert.True(expected.Order(SymbolOrder.Instance).SequenceEqual(decoded.Order(SymbolOrder.Instance)),
            KallsymsExpectation.Differences(expected, decoded));
        var byType = decoded.GroupBy(s => s.Type).ToDictionary(g => g.Key, g => g.Count());
        _output.WriteLine($"{core}: {table.Count} kallsyms symbols ({table.Mode}), {mapLines.Count} System.map lines; by type: " +
            string.Join(' ', byType.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value}")));
        if (amd64)
            Assert.All("TtDdRrBbA", t => Assert.True(byType.ContainsKey(t), $"no '{t}' symbols"));
        else
            Assert.All("dRrBb", t => Assert.False(byType.ContainsKey(t), $"'{t}' symbols in a text-only kallsyms"));

        // Kernel order is address order; the lookups answer with running addresses.
        for (var i = 1; i < decoded.Count; i++)
            Assert.True(decoded[i - 1].Address <= decoded[i].Address, $"symbol {i} out of order");
        Assert.True(table.TryLookup("_stext", out var stext));
        Assert.Equal(kvm.VmcoreInfoData!.Symbol("_stext"), stext.Address);
        Assert.Equal(kvm.SymbolAddress("_stext"), stext.Address);
        Assert.True(table.TryFindNearest(stext.Address + 1, out var near));
        Assert.Equal(stext.Address, near.Address);
    }

    [Theory]
    [MemberData(nameof(Dumps))]
    public void Kallsyms_agrees_with_the_guests_own_runtime_addresses(string folder, string core, string map, bool amd64)
    {
        var truth = Truth.Load(folder);
        using var kvm = Kvm.Open(Fixtures.Get(map), Fixtures.Get(core));
        using var table = Decode(kvm);
        var compared = new List<string>();
        foreach (var (name, address) in truth.RuntimeSymbols())
        {
            if (table.TryLookup(name, out var s))
            {
                Assert.True(address == s.Address, $"{name}: kallsyms 0x{s.Address:x}, the guest said 0x{address:x}");
                compared.Add(name);
            }
        }
        // amd64 carries every symbol truth.json names (data and per-CPU ones too); i386 only its text symbols.
        var all = truth.RuntimeSymbols().Select(x => x.Name).ToList();
        if (amd64)
        {
            Assert.Equal(all, compared);
            Assert.Contains("runqueues", compared);
        }
        else
        {
            Assert.Contains("_stext", compared);
            Assert.Contains("_text", compared);
            Assert.DoesNotContain("init_task", compared);
        }
    }

    [Fact]
    public void Arm64_kallsyms_decodes_through_the_kernel_image_mapping()
    {
        // Kvm cannot translate arm64 addresses yet; the kallsyms tables lie in the kernel image, whose running
        // addresses map linearly to physical ones: phys = virt - kimage_voffset (arm64 VMCOREINFO).
        using var kdump = KdumpFile.Open(Fixtures.Get("arm64/dump.kdump-zlib"));
        var info = kdump.VmcoreInfo!;
        var voffset = Truth.Hex(info["NUMBER(kimage_voffset)"]!);
        var kaslr = info.KernelOffset!.Value;
        var tables = KallsymsTables.FromVmcoreInfo(info, "arm64/dump.kdump-zlib");
        using var table = KallsymsImage.Decode((ulong a, Span<byte> d, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? f) =>
            kdump.TryRead(a - voffset, d, out f), tables, DataModel.LP64, "arm64/dump.kdump-zlib");
        Assert.Equal(KallsymsAddressMode.BaseRelative, table.Mode);

        var config = File.ReadAllLines(Fixtures.Get("arm64/config-6.1.0-50-arm64"));
        var all = config.Contains("CONFIG_KALLSYMS_ALL=y");
        Assert.Contains("# CONFIG_KALLSYMS_ALL is not set", config);
        var mapLines = KallsymsExpectation.ReadMap(Fixtures.Get("arm64/System.map-6.1.0-50-arm64"));
        var expected = KallsymsExpectation.Select(mapLines, all, absolutePerCpu: false)
            .Select(l => new KernelSymbol(l.Name, l.Address + kaslr, l.Type)).ToList();
        Assert.Equal(expected.Count, table.Count);
        Assert.True(expected.Order(SymbolOrder.Instance).SequenceEqual(table.Symbols.Order(SymbolOrder.Instance)),
            KallsymsExpectation.Differences(expected, table.Symbols));
        _output.WriteLine($"arm64: {table.Count} kallsyms symbols, {mapLines.Count} System.map lines");

        var truth = Truth.Load("arm64");
        var compared = 0;
        foreach (var (name, address) in truth.RuntimeSymbols())
        {
            if (table.TryLookup(name, out var s))
            {
                Assert.Equal(address, s.Address);
                compared++;
            }
        }
        Assert.True(compared >= 3, $"only {compared} ground-truth symbols compared");
        Assert.True(table.TryFindNearest(truth.RuntimeSymbols().Single(x => x.Name == "panic").Address + 0x184, out var caller));
        Assert.Equal("panic", caller.Name);
    }

    /// <summary>Orders symbols by address, then name, then type, so two multisets compare as sequences.</summary>
    private sealed class SymbolOrder : IComparer<KernelSymbol>
    {
        public static readonly SymbolOrder Instance = new();

        public int Compare(KernelSymbol x, KernelSymbol y)
        {
            var c = x.Address.CompareTo(y.Address);
            if (c == 0)
                c = string.CompareOrdinal(x.Name, y.Name);
            return c != 0 ? c : x.Type.CompareTo(y.Type);
        }
    }
}
