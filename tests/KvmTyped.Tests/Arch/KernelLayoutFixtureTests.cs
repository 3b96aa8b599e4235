using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using KvmTyped.Linux;
using KvmTyped.Formats;
using KvmTyped.TestSupport;
using KvmTyped.Tests.Translation;
using KvmTyped.Translation;
using KvmTyped.Arch.X86;

namespace KvmTyped.Tests.Arch;

/// <summary>Kernel layout and translation on the real dumps in ../shared/fixtures, checked against their truth.json.</summary>
public class KernelLayoutFixtureTests
{
    public static TheoryData<string, string, string> Dumps => new()
    {
        { "amd64/nokaslr/dump.elf.gz", "amd64/System.map-6.1.0-56-amd64", "amd64/nokaslr/truth.json" },
        { "amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz", "amd64/System.map-6.1.0-56-amd64", "amd64/kdump-kaslr/truth.json" },
        { "i386/pae-kdump-kaslr/vmcore.mdf-d31.elf.gz", "i386/System.map-6.1.0-50-686-pae", "i386/pae-kdump-kaslr/truth.json" },
    };

    private static ulong Hex(string s) =>
        ulong.Parse(s.Split(' ')[0].AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);

    private static JsonElement Truth(string relative) =>
        JsonDocument.Parse(File.ReadAllText(Fixtures.Get(relative))).RootElement;

    private static string ReadString(IAddressSpace space, TestElfCoreMemory memory, ulong address, int max)
    {
        var buffer = new byte[max];
        space.ReadVirtual(memory, address, buffer);
        var nul = Array.IndexOf(buffer, (byte)0);
        return Encoding.ASCII.GetString(buffer, 0, nul < 0 ? max : nul).TrimEnd('\n');
    }

    [Theory]
    [MemberData(nameof(Dumps))]
    public void Layout_matches_truth(string dump, string map, string truthFile)
    {
        var truth = Truth(truthFile);
        using var memory = new TestElfCoreMemory(Fixtures.Get(dump));
        using var symbols = new TestSystemMap(Fixtures.Get(map));
        var model = symbols.DataModel!.Value;
        var layout = KernelLayout.Detect(memory, memory.VmcoreInfo, symbols, model, dump);

        Assert.Equal(Hex(truth.GetProperty("kaslr_offset").GetString()!), layout.KaslrOffset);
        var values = truth.GetProperty("kernel_values_runtime");
        if (model == DataModel.LP64)
        {
            Assert.Equal(4, layout.PagingLevels);
            Assert.False(layout.Pae);
            Assert.Equal(unchecked((long)Hex(values.GetProperty("phys_base").GetProperty("value_native_long").GetString()!)), layout.PhysBase);
            Assert.Equal(Hex(values.GetProperty("page_offset_base").GetProperty("value_native_long").GetString()!), layout.PageOffset);
            Assert.Equal(Hex(truth.GetProperty("kernel_symbols_runtime").GetProperty("init_top_pgt").GetString()!), layout.RootTableVirtual);
        }
        else
        {
            Assert.Equal(3, layout.PagingLevels);
            Assert.True(layout.Pae);
            Assert.Equal(0L, layout.PhysBase);
            Assert.Equal(0xc0000000UL, layout.PageOffset);
            Assert.Equal(Hex(truth.GetProperty("kernel_symbols_runtime").GetProperty("swapper_pg_dir").GetString()!), layout.RootTableVirtual);
        }
        Assert.Equal(truth.GetProperty("linux_banner").GetString(), layout.Banner);
    }

    [Theory]
    [MemberData(nameof(Dumps))]
    public void Symbols_relocate_to_their_running_addresses(string dump, string map, string truthFile)
    {
        var truth = Truth(truthFile);
        using var memory = new TestElfCoreMemory(Fixtures.Get(dump));
        using var symbols = new TestSystemMap(Fixtures.Get(map));
        var layout = KernelLayout.Detect(memory, memory.VmcoreInfo, symbols, symbols.DataModel!.Value, dump);
        var checkedCount = 0;
        foreach (var entry in truth.GetProperty("kernel_symbols_runtime").EnumerateObject())
        {
            var running = Hex(entry.Value.GetString()!);
            // Per-CPU symbols (runqueues at 0x31c40) are offsets into each CPU's area: not relocated by KASLR.
            if (running < 0xc0000000UL || !symbols.TryLookup(entry.Name, out var symbol))
                continue;
            Assert.Equal(running, layout.SymbolRelocation.ToRunning(symbol.Address));
            Assert.True(layout.AddressSpace.TryTranslate(running, out _, out _, out var failure), failure);
            checkedCount++;
        }
        Assert.True(checkedCount >= 10, $"only {checkedCount} symbols checked");
    }

    [Theory]
    [MemberData(nameof(Dumps))]
    public void Banner_and_variables_read_through_the_page_tables(string dump, string map, string truthFile)
    {
        var truth = Truth(truthFile);
        using var memory = new TestElfCoreMemory(Fixtures.Get(dump));
        using var symbols = new TestSystemMap(Fixtures.Get(map));
        var model = symbols.DataModel!.Value;
        var layout = KernelLayout.Detect(memory, memory.VmcoreInfo, symbols, model, dump);
        var banner = truth.GetProperty("linux_banner").GetString()!;
        var bannerVa = layout.SymbolRelocation.ToRunning(symbols.TryLookup("linux_banner", out var b) ? b.Address : 0);

        // The page tables alone, without the text mapping.
        Assert.Equal(banner, ReadString(layout.PageTables, memory, bannerVa, 512));
        // The same bytes through the direct map: PAGE_OFFSET + physical.
        Assert.True(layout.AddressSpace.TryTranslate(bannerVa, out var bannerPa, out _, out var f), f);
        Assert.True(layout.PageTables.TryTranslate(bannerVa, out var viaTables, out _, out f), f);
        Assert.Equal(bannerPa, viaTables);
        Assert.Equal(banner, ReadString(layout.PageTables, memory, layout.PageOffset + bannerPa, 512));

        var size = model.PointerSize();
        var buffer = new byte[size];
        var compared = 0;
        foreach (var entry in truth.GetProperty("kernel_values_runtime").EnumerateObject())
        {
            var va = Hex(entry.Value.GetProperty("addr").GetString()!);
            var expected = Hex(entry.Value.GetProperty("value_native_long").GetString()!);
            Assert.True(layout.TryReadVirtual(va, buffer, out var failure), failure);
            var actual = size == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(buffer) : BinaryPrimitives.ReadUInt32LittleEndian(buffer);
            Assert.True(expected == actual, $"{entry.Name} at 0x{va:x}: 0x{actual:x}, truth 0x{expected:x}");
            compared++;
        }
        Assert.True(compared >= 5);
    }

    [Fact]
    public void Module_space_translates_through_4k_page_tables()
    {
        var truth = Truth("amd64/kdump-kaslr/truth.json");
        using var memory = new TestElfCoreMemory(Fixtures.Get("amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz"));
        using var symbols = new TestSystemMap(Fixtures.Get("amd64/System.map-6.1.0-56-amd64"));
        var layout = KernelLayout.Detect(memory, memory.VmcoreInfo, symbols, DataModel.LP64);
        var module = Hex(truth.GetProperty("proc_modules").GetString()!.Split(' ')[^1]);
        Assert.True(layout.AddressSpace.TryTranslate(module, out var pa, out var contiguous, out var failure), failure);
        Assert.True(contiguous <= 4096, "module memory is mapped with 4 KiB pages");
        Assert.Equal(module & 0xfff, pa & 0xfff);
        // And a module address below the first module is not mapped: a clear, level-naming failure.
        Assert.False(layout.AddressSpace.TryTranslate(0xffffffffc0000000UL, out _, out _, out failure));
        Assert.Matches(@"^cannot translate 0xffffffffc0000000: (PMD|PTE|PUD) entry not present \(0x[0-9a-f]+\) at level [123]$", failure);
    }

    [Fact]
    public void A_namelist_of_another_kernel_is_refused_naming_both()
    {
        using var memory = new TestElfCoreMemory(Fixtures.Get("amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz"));
        using var symbols = new TestSystemMap(Fixtures.Get("i386/System.map-6.1.0-50-686-pae"));
        // Force the 64-bit path with a 32-bit namelist: its symbols disagree with VMCOREINFO.
        var ex = Assert.Throws<KvmOpenException>(() => KernelLayout.Detect(memory, memory.VmcoreInfo, symbols, DataModel.LP64, "vmcore"));
        Assert.Contains("System.map-6.1.0-50-686-pae", ex.Message, StringComparison.Ordinal);
        Assert.Contains("vmcore", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_release_mismatch_is_refused_naming_both()
    {
        using var memory = new TestElfCoreMemory(Fixtures.Get("amd64/nokaslr/dump.elf.gz"));
        using var symbols = new TestSystemMap(Fixtures.Get("amd64/System.map-6.1.0-56-amd64"));
        var text = string.Join('\n', memory.VmcoreInfo!.Entries.Select(kv => kv.Key == "OSRELEASE" ? "OSRELEASE=6.1.0-99-amd64" : $"{kv.Key}={kv.Value}"));
        var info = VmcoreInfo.Parse(Encoding.ASCII.GetBytes(text));
        var ex = Assert.Throws<KvmOpenException>(() => KernelLayout.Detect(memory, info, symbols, DataModel.LP64, "dump.elf"));
        Assert.Contains("6.1.0-99-amd64", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Linux version 6.1.0-56-amd64", ex.Message, StringComparison.Ordinal);
        Assert.Contains("System.map-6.1.0-56-amd64", ex.Message, StringComparison.Ordinal);
        Assert.Contains("dump.elf", ex.Message, StringComparison.Ordinal);

        var ex2 = Assert.Throws<KvmOpenException>(() => KernelLayout.Detect(memory, memory.VmcoreInfo, symbols, DataModel.LP64, "dump.elf",
            namelistBanner: "Linux version 6.1.0-56-amd64 (someone@else) #2 SMP"));
        Assert.Contains("someone@else", ex2.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Dumps))]
    public void Without_vmcoreinfo_the_banner_search_finds_the_same_layout(string dump, string map, string truthFile)
    {
        var truth = Truth(truthFile);
        using var memory = new TestElfCoreMemory(Fixtures.Get(dump));
        using var symbols = new TestSystemMap(Fixtures.Get(map));
        var model = symbols.DataModel!.Value;
        var withInfo = KernelLayout.Detect(memory, memory.VmcoreInfo, symbols, model, dump);
        var raw = KernelLayout.Detect(memory, null, symbols, model, dump);
        Assert.Equal("linux_banner search", raw.KaslrSource);
        Assert.Equal(Hex(truth.GetProperty("kaslr_offset").GetString()!), raw.KaslrOffset);
        Assert.Equal(withInfo.PhysBase, raw.PhysBase);
        Assert.Equal(withInfo.PagingLevels, raw.PagingLevels);
        Assert.Equal(withInfo.Pae, raw.Pae);
        Assert.Equal(withInfo.RootTable, raw.RootTable);
        Assert.Equal(withInfo.PageOffset, raw.PageOffset);
        Assert.Equal(truth.GetProperty("linux_banner").GetString(), raw.Banner);
    }

    [Fact]
    public void A_process_address_space_reads_the_labmarker_pages()
    {
        // The QEMU dump keeps user pages. Find the labmarker process's page global directory without task structs:
        // a page whose kernel half matches init_top_pgt and whose walk maps the marker's first page where truth says.
        var truth = Truth("amd64/nokaslr/truth.json").GetProperty("labmarker");
        var va0 = Hex(truth.GetProperty("page0").GetProperty("va").GetString()!);
        var pa0 = Hex(truth.GetProperty("page0").GetProperty("pa").GetString()!);
        var va1 = Hex(truth.GetProperty("page1").GetProperty("va").GetString()!);
        var pa1 = Hex(truth.GetProperty("page1").GetProperty("pa").GetString()!);
        using var memory = new TestElfCoreMemory(Fixtures.Get("amd64/nokaslr/dump.elf.gz"));
        using var symbols = new TestSystemMap(Fixtures.Get("amd64/System.map-6.1.0-56-amd64"));
        var layout = KernelLayout.Detect(memory, memory.VmcoreInfo, symbols, DataModel.LP64);

        var kernelTop = new byte[8];
        memory.Read(layout.RootTable + (511 * 8), kernelTop);
        var entry = new byte[8];
        var roots = new List<ulong>();
        foreach (var range in memory.Ranges)
        {
            for (var page = range.Start; page + 4096 <= range.End; page += 4096)
            {
                if (page == layout.RootTable || !memory.TryRead(page + (511 * 8), entry, out _) || !entry.AsSpan().SequenceEqual(kernelTop))
                    continue;
                var process = layout.CreateProcessAddressSpace(page);
                if (process.TryTranslate(va0, out var pa, out _, out _) && pa == pa0)
                    roots.Add(page);
            }
        }
        Assert.NotEmpty(roots);
        foreach (var root in roots)
        {
            var process = layout.CreateProcessAddressSpace(root);
            Assert.True(process.TryTranslate(va1, out var pa, out _, out var f), f);
            Assert.Equal(pa1, pa);
            Assert.Equal(truth.GetProperty("pattern_page1").GetString(), ReadString(process, memory, va1, 20));
            // The kernel half is shared: linux_banner reads the same through the process's tables.
            Assert.True(symbols.TryLookup("linux_banner", out var banner));
            Assert.Equal(layout.Banner, ReadString(process, memory, layout.SymbolRelocation.ToRunning(banner.Address), 512));
        }
    }
}
