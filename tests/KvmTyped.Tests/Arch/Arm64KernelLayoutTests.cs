using System.Globalization;
using System.Text;
using KvmTyped.Arch;
using KvmTyped.Arch.Arm64;
using KvmTyped.Formats;
using KvmTyped.Symbols;
using KvmTyped.Tests.TestSupport;
using KvmTyped.Translation;

namespace KvmTyped.Tests.Arch;

/// <summary>The arm64 layout on tables built in code for the granules and VA sizes Linux uses: KASLR, kimage_voffset,
/// the root table, the linear map's start, user tables from a pgd, the namelist checks, and refusals of a VMCOREINFO
/// that lacks or garbles what the layout needs. Also which machine the open decides on.</summary>
public class Arm64KernelLayoutTests
{
    private const string Release = "6.1.0-test";
    private const string Banner = "Linux version 6.1.0-test (builder@example) (gcc) #1 SMP\n";
    private const ulong Slide = 0x0200_0000;
    private const ulong ImagePhysical = 0x4100_0000;
    private const ulong BannerOffset = 0x1_0100;
    private const ulong SwapperOffset = 0x40_0000;

    /// <summary>A namelist that says it is arm64 (as an ELF vmlinux would) or nothing (as a System.map).</summary>
    private sealed class Arm64Symbols(KernelMachine machine, params (string Name, ulong Address)[] symbols) : ISymbolTable
    {
        private readonly Dictionary<string, KernelSymbol> _byName =
            symbols.ToDictionary(s => s.Name, s => new KernelSymbol(s.Name, s.Address, 'D'), StringComparer.Ordinal);

        public string Source => "arm64.map";

        public string Kind => "System.map";

        public DataModel? DataModel => KvmTyped.DataModel.LP64;

        public KernelMachine Machine => machine;

        public int Count => _byName.Count;

        public bool TryLookup(string name, out KernelSymbol symbol) => _byName.TryGetValue(name, out symbol);

        public bool TryFindNearest(ulong address, out KernelSymbol symbol)
        {
            var best = _byName.Values.Where(s => s.Address <= address).OrderByDescending(s => s.Address).ToList();
            symbol = best.Count > 0 ? best[0] : default;
            return best.Count > 0;
        }

        public bool TryFindNext(ulong address, out KernelSymbol symbol)
        {
            var next = _byName.Values.Where(s => s.Address > address).OrderBy(s => s.Address).ToList();
            symbol = next.Count > 0 ? next[0] : default;
            return next.Count > 0;
        }

        public void Dispose()
        {
        }
    }

    private sealed record Built(SparsePhysicalMemory Memory, Arm64Symbols Symbols, Arm64TableBuilder Tables, ulong TextLink,
        ulong KimageVoffset, Dictionary<string, string> Info)
    {
        public VmcoreInfo Vmcoreinfo() =>
            VmcoreInfo.Parse(Encoding.ASCII.GetBytes(string.Concat(Info.Select(kv => $"{kv.Key}={kv.Value}\n"))));
    }

    private static string H(ulong v) => v.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>An image linked 2 GiB into the kernel half, slid by 32 MiB, loaded at 0x41000000; swapper_pg_dir 4 MiB
    /// into it, the tables written there; the banner mapped by a page.</summary>
    private static Built Build(string configName)
    {
        var config = Arm64Config.All[configName];
        var memory = new SparsePhysicalMemory();
        var textLink = config.KernelBase + 0x8000_0000UL;
        var textRunning = textLink + Slide;
        var kimageVoffset = textRunning - ImagePhysical;
        var tables = new Arm64TableBuilder(memory, config, tablesAt: ImagePhysical + SwapperOffset);
        var bannerVa = textRunning + BannerOffset;
        tables.MapPage(bannerVa & ~(config.PageBytes - 1), (bannerVa - kimageVoffset) & ~(config.PageBytes - 1));
        memory.Write(bannerVa - kimageVoffset, Encoding.ASCII.GetBytes(Banner + "\0"));
        var symbols = new Arm64Symbols(KernelMachine.Unknown,
            ("_text", textLink), ("_stext", textLink + 0x1_0000), ("linux_banner", textLink + BannerOffset),
            ("swapper_pg_dir", textLink + SwapperOffset), ("kimage_voffset", textLink + 0x30_0000), ("_end", textLink + 0x80_0000));
        var info = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["OSRELEASE"] = Release,
            ["PAGESIZE"] = config.PageBytes.ToString(CultureInfo.InvariantCulture),
            ["SYMBOL(swapper_pg_dir)"] = H(textRunning + SwapperOffset),
            ["SYMBOL(_stext)"] = H(textRunning + 0x1_0000),
            ["NUMBER(VA_BITS)"] = config.VaBits.ToString(CultureInfo.InvariantCulture),
            ["NUMBER(kimage_voffset)"] = "0x" + H(kimageVoffset),
            ["NUMBER(PHYS_OFFSET)"] = "0x40000000",
            ["NUMBER(TCR_EL1_T1SZ)"] = "0x" + H((ulong)(64 - config.VaBits)),
            ["NUMBER(MAX_PHYSMEM_BITS)"] = config.HasHighAddresses ? "52" : "48",
            ["KERNELOFFSET"] = H(Slide),
        };
        return new Built(memory, symbols, tables, textLink, kimageVoffset, info);
    }

    public static TheoryData<string> Configs => ["4k-39", "4k-48", "16k-47", "64k-42", "64k-52-lpa", "4k-52-lpa2", "16k-52-lpa2"];

    [Theory]
    [MemberData(nameof(Configs))]
    public void Layout_is_found_from_vmcoreinfo_and_the_namelist(string configName)
    {
        var b = Build(configName);
        var config = b.Tables.Config;
        var layout = Arm64KernelLayout.Detect(b.Memory, b.Vmcoreinfo(), b.Symbols, "test.kdump");

        Assert.Equal(Slide, layout.KaslrOffset);
        Assert.Equal("VMCOREINFO KERNELOFFSET", layout.KaslrSource);
        Assert.Equal(b.Tables.Root, layout.RootTable);
        Assert.Equal(ImagePhysical + SwapperOffset, layout.RootTable);
        Assert.Equal(b.KimageVoffset, layout.KimageVoffset);
        Assert.Equal(0x4000_0000UL, layout.PhysOffset);
        Assert.Equal(config.KernelBase, layout.PageOffset);
        Assert.Equal(4 - config.StartLevel, layout.PagingLevels);
        Assert.Equal(config.Granule, layout.PageTables.Granule);
        Assert.Equal(config.Format, layout.PageTables.OutputAddressFormat);
        Assert.Equal(0, layout.PhysBase);
        Assert.Equal(Banner.TrimEnd('\n'), layout.Banner);

        // The one KASLR rule: image symbols move by the slide, a linear-map address below the image does not.
        var relocation = layout.SymbolRelocation;
        Assert.Equal(b.TextLink + BannerOffset + Slide, relocation.ToRunning(b.TextLink + BannerOffset));
        Assert.Equal(b.TextLink + BannerOffset, relocation.ToLink(b.TextLink + BannerOffset + Slide));
        Assert.Equal(config.KernelBase + 0x1000, relocation.ToLink(config.KernelBase + 0x1000));
        Assert.Equal(DataModel.LP64, relocation.Model);

        Assert.True(layout.AddressSpace.TryTranslate(b.TextLink + BannerOffset + Slide, out var pa, out _, out var f), f);
        Assert.Equal(ImagePhysical + BannerOffset, pa);
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void A_process_address_space_walks_its_own_user_tables(string configName)
    {
        var b = Build(configName);
        var layout = Arm64KernelLayout.Detect(b.Memory, b.Vmcoreinfo(), b.Symbols, "test.kdump");
        var user = new Arm64TableBuilder(b.Memory, b.Tables.Config, tablesAt: 0x4800_0000);
        var va = 0x1337_0000UL & ~(b.Tables.Config.PageBytes - 1);
        user.MapPage(va, 0x4900_0000);
        b.Memory.Write(0x4900_0010, Encoding.ASCII.GetBytes("user bytes"));

        var space = layout.CreateProcessAddressSpace(user.Root)!;
        var bytes = new byte[10];
        Assert.True(space.TryReadVirtual(b.Memory, va + 0x10, bytes, out var f), f);
        Assert.Equal("user bytes", Encoding.ASCII.GetString(bytes));
        // The kernel half is not the process's.
        Assert.False(space.TryTranslate(b.TextLink + Slide + BannerOffset, out _, out _, out f));
        Assert.Contains("kernel (TTBR1) address", f, StringComparison.Ordinal);
        Assert.Throws<KvmException>(() => layout.CreateProcessAddressSpace(user.Root + 4));
    }

    [Theory]
    [InlineData("SYMBOL(swapper_pg_dir)", "ffff000012340000", "swapper_pg_dir is at 0xffff000012340000 in the dump's VMCOREINFO")]
    [InlineData("OSRELEASE", "6.2.0-other", "the dump is release 6.2.0-other (VMCOREINFO OSRELEASE), but linux_banner")]
    [InlineData("KERNELOFFSET", "4000000", "_stext is at")]
    [InlineData("NUMBER(kimage_voffset)", "0xzz", "NUMBER(kimage_voffset)=\"0xzz\" is not a number")]
    [InlineData("NUMBER(VA_BITS)", "64", "NUMBER(VA_BITS) is \"64\": expected 36 to 52")]
    [InlineData("NUMBER(TCR_EL1_T1SZ)", "0x40", "NUMBER(TCR_EL1_T1SZ) is 64")]
    [InlineData("PAGESIZE", "8192", "PAGESIZE=8192 is not an arm64 granule")]
    [InlineData("NUMBER(PHYS_OFFSET)", null, "no NUMBER(PHYS_OFFSET)")]
    [InlineData("NUMBER(kimage_voffset)", null, "no NUMBER(kimage_voffset)")]
    [InlineData("NUMBER(kimage_voffset)", "0xffff000000000001", "not a page-aligned physical address")]
    public void A_vmcoreinfo_that_does_not_fit_is_refused_by_name(string key, string? value, string expected)
    {
        var b = Build("4k-48");
        if (value is null)
            b.Info.Remove(key);
        else
            b.Info[key] = value;
        if (key == "KERNELOFFSET")
            b.Info.Remove("SYMBOL(swapper_pg_dir)");
        var e = Assert.Throws<KvmOpenException>(() => Arm64KernelLayout.Detect(b.Memory, b.Vmcoreinfo(), b.Symbols, "test.kdump"));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_vmcoreinfo_or_page_tables_the_layout_says_what_is_missing()
    {
        var b = Build("4k-48");
        var e = Assert.Throws<KvmOpenException>(() => Arm64KernelLayout.Detect(b.Memory, null, b.Symbols, "test.kdump"));
        Assert.Equal("test.kdump: an arm64 kernel is located through VMCOREINFO (kimage_voffset, VA_BITS), and this dump carries none", e.Message);

        // The banner page unmapped: the namelist cannot be checked against the dump.
        b.Tables.SetEntry((b.TextLink + Slide + BannerOffset) & ~0xfffUL, 3, 0);
        e = Assert.Throws<KvmOpenException>(() => Arm64KernelLayout.Detect(b.Memory, b.Vmcoreinfo(), b.Symbols, "test.kdump"));
        Assert.StartsWith($"arm64.map does not match test.kdump: cannot read linux_banner at 0x{H(b.TextLink + Slide + BannerOffset)}: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_kerneloffset_the_slide_comes_from_symbol_stext()
    {
        var b = Build("4k-48");
        b.Info.Remove("KERNELOFFSET");
        var layout = Arm64KernelLayout.Detect(b.Memory, b.Vmcoreinfo(), b.Symbols, "test.kdump");
        Assert.Equal(Slide, layout.KaslrOffset);
        Assert.Equal("VMCOREINFO SYMBOL(_stext)", layout.KaslrSource);
    }

    [Fact]
    public void The_machine_comes_from_the_core_then_the_namelist_then_arm64_only_evidence()
    {
        var b = Build("4k-48");
        var info = b.Vmcoreinfo();
        var plain = VmcoreInfo.Parse("OSRELEASE=6.1.0\nKERNELOFFSET=0\n"u8);
        var x86Map = new Arm64Symbols(KernelMachine.Unknown, ("init_top_pgt", 0xffff_ffff_8200_0000));
        var arm64Elf = new Arm64Symbols(KernelMachine.Arm64, ("swapper_pg_dir", 0xffff_8000_0965_3000));

        // The core's word first (a kdump's utsname "aarch64", an ELF core's EM_AARCH64).
        Assert.Equal(KernelMachine.Arm64, KernelArchitecture.Decide(KernelMachine.Arm64, x86Map, plain, DataModel.LP64, "c"));
        Assert.Equal(KernelMachine.X86_64, KernelArchitecture.Decide(KernelMachine.X86_64, b.Symbols, info, DataModel.LP64, "c"));
        // Then an ELF namelist's e_machine.
        Assert.Equal(KernelMachine.Arm64, KernelArchitecture.Decide(KernelMachine.Unknown, arm64Elf, plain, DataModel.LP64, "c"));
        // The core silent (QEMU's "Unknown"): VMCOREINFO entries only arm64 writes, or the namelist's kimage_voffset.
        Assert.Equal(KernelMachine.Arm64, KernelArchitecture.Decide(KernelMachine.Unknown, x86Map, info, DataModel.LP64, "c"));
        Assert.Equal(KernelMachine.Arm64, KernelArchitecture.Decide(KernelMachine.Unknown, b.Symbols, plain, DataModel.LP64, "c"));
        Assert.Equal(KernelMachine.Arm64, KernelArchitecture.Decide(KernelMachine.Unknown, null, info, DataModel.LP64, "c"));
        // No arm64 evidence: the data model picks the x86 flavour.
        Assert.Equal(KernelMachine.X86_64, KernelArchitecture.Decide(KernelMachine.Unknown, x86Map, plain, DataModel.LP64, "c"));
        Assert.Equal(KernelMachine.X86, KernelArchitecture.Decide(KernelMachine.Unknown, null, null, DataModel.ILP32, "c"));
        Assert.True(KernelArchitecture.HasOwnLayout(KernelMachine.Arm64));
        Assert.False(KernelArchitecture.HasOwnLayout(KernelMachine.X86_64));

        var e = Assert.Throws<KvmOpenException>(() => KernelArchitecture.Decide(KernelMachine.X86_64, arm64Elf, plain, DataModel.LP64, "core"));
        Assert.Equal("core holds a x86_64 kernel - cannot examine with a namelist built for aarch64 (arm64.map)", e.Message);
    }

    [Fact]
    public void Arm64_is_an_lp64_machine_named_aarch64()
    {
        Assert.Equal(183, (int)KernelMachine.Arm64);
        Assert.Equal(DataModel.LP64, KernelMachine.Arm64.DataModel());
        Assert.Equal("aarch64", KernelMachine.Arm64.UnameName());
        Assert.Equal((6, 1), Arm64KernelLayout.ReleaseOf("6.1.0-50-arm64"));
        Assert.Equal((5, 10), Arm64KernelLayout.ReleaseOf("5.10.0"));
        Assert.Null(Arm64KernelLayout.ReleaseOf("garbage"));
    }
}
