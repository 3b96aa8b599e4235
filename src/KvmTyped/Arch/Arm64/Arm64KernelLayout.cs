using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using KvmTyped.Formats;
using KvmTyped.Symbols;
using KvmTyped.Translation;
using static KvmTyped.Translation.PageTableWalk;

namespace KvmTyped.Arch.Arm64;

/// <summary>Where a Linux arm64 kernel sits in a dump: its KASLR slide, the offset between the image's virtual and
/// physical addresses, the linear map, the translation granule and VA size, and the kernel address space walked from
/// <c>swapper_pg_dir</c> (TTBR1), cached.</summary>
/// <remarks>
/// <para>Everything comes from VMCOREINFO, which arm64 kernels write with these entries since Linux 4.x (the values
/// are hex, some above 2^63: <see cref="VmcoreNumber"/> reads them):</para>
/// <list type="bullet">
/// <item>KASLR slide: <c>KERNELOFFSET</c>, else <c>SYMBOL(_stext)</c> minus the namelist's <c>_stext</c>.</item>
/// <item>Image virtual − physical: <c>NUMBER(kimage_voffset)</c>; the root table is <c>swapper_pg_dir</c>'s running
/// address minus it.</item>
/// <item>Granule: <c>PAGESIZE</c> (4, 16 or 64 KiB). VA size walked: 64 − <c>NUMBER(TCR_EL1_T1SZ)</c> (what the kernel
/// ran with: a 52-bit kernel may fall back to 48 bits), else <c>NUMBER(VA_BITS)</c>.</item>
/// <item>Linear map: it starts at PAGE_OFFSET = −2^VA_BITS (Linux 5.4 on; −2^(VA_BITS−1) before) and maps
/// <c>NUMBER(PHYS_OFFSET)</c> there. It is reported, not used as a shortcut: the page tables decide (the linear map
/// has holes where memory is "no-map").</item>
/// <item>Output addresses: LPA with 64 KiB pages when <c>NUMBER(MAX_PHYSMEM_BITS)</c> is 52, LPA2 with 4/16 KiB pages
/// when the VA size walked exceeds 48; the Linux layout of invalid-but-present entries by release (6.10 changed it).</item>
/// </list>
/// <para>No linear shortcut for the image either: <c>free_initmem</c> unmaps [__init_begin, __init_end) after boot, and
/// the 64 KiB before <c>_stext</c> has no mapping, so a read there must fail as the kernel's own would.</para>
/// <para>The namelist is checked against the dump as on x86 (<see cref="NamelistConsistency"/>).</para>
/// </remarks>
internal sealed class Arm64KernelLayout : IKernelImageLayout
{
    /// <summary>Most translations the process address spaces cache.</summary>
    private const int ProcessCacheSlots = 1024;

    private readonly IPhysicalMemory _memory;
    private readonly TranslationCache _cache;

    private Arm64KernelLayout(IPhysicalMemory memory, Arm64PageTables tables, ulong slide, string source, ulong imageBase,
        ulong kimageVoffset, ulong physOffset, int vaBits, ulong pageOffset)
    {
        _memory = memory;
        PageTables = tables;
        _cache = new TranslationCache(tables);
        KaslrOffset = slide;
        KaslrSource = source;
        ImageBase = imageBase;
        KimageVoffset = kimageVoffset;
        PhysOffset = physOffset;
        VaBits = vaBits;
        PageOffset = pageOffset;
    }

    /// <inheritdoc />
    public ulong KaslrOffset { get; }

    /// <inheritdoc />
    public string? KaslrSource { get; }

    /// <summary>0: arm64 has no phys_base (its image offset is <see cref="KimageVoffset"/>).</summary>
    public long PhysBase => 0;

    /// <summary>PAGE_OFFSET: the start of the linear map.</summary>
    public ulong? PageOffset { get; }

    /// <summary>Lookup levels of the kernel's tables (4 − the first level).</summary>
    public int? PagingLevels => 4 - PageTables.StartLevel;

    /// <summary>false: PAE is x86's.</summary>
    public bool Pae => false;

    /// <summary>Physical address of <c>swapper_pg_dir</c>.</summary>
    public ulong? RootTable => PageTables.RootTable;

    /// <summary>The kernel address space: the TTBR1 tables behind a translation cache.</summary>
    public IAddressSpace AddressSpace => _cache;

    /// <summary>The kernel tables alone, uncached.</summary>
    public Arm64PageTables PageTables { get; }

    /// <summary>Link address where the kernel image begins (<c>_text</c>): the KASLR slide moves what lies above.</summary>
    public ulong ImageBase { get; }

    /// <summary>kimage_voffset: image virtual address − physical address.</summary>
    public ulong KimageVoffset { get; }

    /// <summary>PHYS_OFFSET (memstart_addr): the physical address at PAGE_OFFSET.</summary>
    public ulong PhysOffset { get; }

    /// <summary>The kernel's configured VA_BITS.</summary>
    public int VaBits { get; }

    /// <summary>The linux_banner text read from memory (no trailing newline), or null when the namelist lacks it.</summary>
    public string? Banner { get; private set; }

    /// <inheritdoc />
    public SymbolRelocation SymbolRelocation => new(KaslrOffset, ImageBase, DataModel.LP64);

    /// <summary>A process's address space: its TTBR0 tables (mm->pgd, made physical) in the kernel's granule and VA
    /// size, cached.</summary>
    public IAddressSpace? CreateProcessAddressSpace(ulong rootTablePhysical)
    {
        if ((rootTablePhysical & 7) != 0 || rootTablePhysical >> PageTables.PhysicalAddressBits != 0)
            throw new KvmException($"mm->pgd made physical is {Hex(rootTablePhysical)}: not an 8-byte aligned address within {PageTables.PhysicalAddressBits.ToString(CultureInfo.InvariantCulture)} bits");
        return new TranslationCache(new Arm64PageTables(_memory, rootTablePhysical, PageTables.Granule, PageTables.VirtualAddressBits,
            Arm64AddressHalf.User, PageTables.OutputAddressFormat, PageTables.PhysicalAddressBits, PageTables.LinuxPteFormat), ProcessCacheSlots);
    }

    /// <inheritdoc />
    public void InvalidateTranslations() => _cache.Clear();

    /// <summary>Reads kernel virtual memory through <see cref="AddressSpace"/>.</summary>
    public bool TryReadVirtual(ulong virtualAddress, Span<byte> destination, [NotNullWhen(false)] out string? failure) =>
        _cache.TryReadVirtual(_memory, virtualAddress, destination, out failure);

    /// <summary>Finds the layout of the arm64 kernel in <paramref name="memory"/> and checks the namelist belongs to it.</summary>
    /// <param name="memory">The dump's physical memory.</param>
    /// <param name="info">The dump's VMCOREINFO (required: it alone gives kimage_voffset).</param>
    /// <param name="symbols">The namelist, at link addresses.</param>
    /// <param name="core">The dump's name, for messages.</param>
    /// <param name="namelistBanner">The namelist's own linux_banner text when the caller can read it, else null.</param>
    /// <exception cref="KvmOpenException">VMCOREINFO lacks or garbles what is needed, or the namelist does not belong to
    /// the dump.</exception>
    public static Arm64KernelLayout Detect(IPhysicalMemory memory, VmcoreInfo? info, ISymbolTable symbols, string core, string? namelistBanner = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(symbols);
        if (info is null)
            throw new KvmOpenException($"{core}: an arm64 kernel is located through VMCOREINFO (kimage_voffset, VA_BITS), and this dump carries none");

        var granule = info.PageSize switch
        {
            4096 => Arm64Granule.Size4K,
            16384 => Arm64Granule.Size16K,
            65536 => Arm64Granule.Size64K,
            null => throw new KvmOpenException($"{core}: VMCOREINFO has no PAGESIZE: the arm64 translation granule is unknown"),
            var other => throw new KvmOpenException($"{core}: VMCOREINFO PAGESIZE={other.Value.ToString(CultureInfo.InvariantCulture)} is not an arm64 granule (4096, 16384 or 65536)"),
        };
        var vaBits = Number(info, "VA_BITS", core) is ulong vb && vb is >= 36 and <= 52 ? (int)vb
            : throw new KvmOpenException($"{core}: VMCOREINFO NUMBER(VA_BITS) is {Text(info, "VA_BITS")}: expected 36 to 52");
        var walkedBits = vaBits;
        if (Number(info, "TCR_EL1_T1SZ", core) is ulong t1sz)
        {
            if (t1sz is < 12 or > 39)
                throw new KvmOpenException($"{core}: VMCOREINFO NUMBER(TCR_EL1_T1SZ) is {t1sz.ToString(CultureInfo.InvariantCulture)}: expected 12 to 39 (a 25- to 52-bit kernel half)");
            walkedBits = 64 - (int)t1sz;
        }
        var maxPhysBits = Number(info, "MAX_PHYSMEM_BITS", core);
        var output = granule == Arm64Granule.Size64K
            ? maxPhysBits == 52 ? Arm64OutputAddressFormat.Lpa : Arm64OutputAddressFormat.Bits48
            : walkedBits > 48 ? Arm64OutputAddressFormat.Lpa2 : Arm64OutputAddressFormat.Bits48;
        var maxPa = output == Arm64OutputAddressFormat.Bits48 ? 48 : 52;
        int? paBits = maxPhysBits is ulong mp && mp >= 32 && mp <= (ulong)maxPa ? (int)mp : null;
        if (granule != Arm64Granule.Size64K && walkedBits > 48 && output != Arm64OutputAddressFormat.Lpa2)
            throw new KvmOpenException($"{core}: a {walkedBits.ToString(CultureInfo.InvariantCulture)}-bit kernel half needs LPA2 with this granule");
        var release = ReleaseOf(info.OsRelease);
        var pteFormat = release is { } rel && (rel.Major > 6 || (rel.Major == 6 && rel.Minor >= 10)) ? Arm64LinuxPteFormat.PresentInvalidNg : Arm64LinuxPteFormat.ProtNoneBit58;

        var kimageVoffset = Number(info, "kimage_voffset", core)
            ?? throw new KvmOpenException($"{core}: VMCOREINFO has no NUMBER(kimage_voffset): the arm64 kernel image cannot be placed in physical memory");
        var physOffset = Number(info, "PHYS_OFFSET", core)
            ?? throw new KvmOpenException($"{core}: VMCOREINFO has no NUMBER(PHYS_OFFSET): the arm64 linear map cannot be placed");

        ulong slide;
        string source;
        if (info.KernelOffset is ulong ko)
        {
            slide = ko;
            source = "VMCOREINFO KERNELOFFSET";
        }
        else if (info.Symbol("_stext") is ulong running && Link(symbols, "_stext") is ulong linked)
        {
            slide = unchecked(running - linked);
            source = "VMCOREINFO SYMBOL(_stext)";
        }
        else
        {
            throw new KvmOpenException($"{core}: VMCOREINFO has neither KERNELOFFSET nor SYMBOL(_stext) (with _stext in {symbols.Source}): the arm64 KASLR offset is unknown");
        }

        var rootLink = Link(symbols, "swapper_pg_dir")
            ?? throw new KvmOpenException($"{symbols.Source}: no swapper_pg_dir symbol: cannot find the arm64 kernel page tables");
        var imageBase = Link(symbols, "_text") ?? Link(symbols, "_stext") ?? rootLink;
        var kernelHalf = ~0UL << walkedBits;
        var rootVirtual = unchecked(rootLink + slide);
        if (imageBase < kernelHalf || rootVirtual < kernelHalf)
            throw new KvmOpenException($"{symbols.Source} does not match {core}: the kernel image at {Hex(imageBase)} (swapper_pg_dir {Hex(rootVirtual)} with KASLR offset {Hex(slide)}) is not in the {walkedBits.ToString(CultureInfo.InvariantCulture)}-bit arm64 kernel half");
        var rootPhysical = unchecked(rootVirtual - kimageVoffset);
        var limit = paBits ?? maxPa;
        if ((rootPhysical & ((1UL << (int)granule) - 1)) != 0 || rootPhysical >> limit != 0)
            throw new KvmOpenException($"{core}: swapper_pg_dir at {Hex(rootVirtual)} − kimage_voffset {Hex(kimageVoffset)} = {Hex(rootPhysical)}: not a page-aligned physical address within {limit.ToString(CultureInfo.InvariantCulture)} bits");

        var tables = new Arm64PageTables(memory, rootPhysical, granule, walkedBits, Arm64AddressHalf.Kernel, output, paBits, pteFormat);
        var pageOffset = release is { } r && (r.Major < 5 || (r.Major == 5 && r.Minor < 4)) ? ~0UL << (vaBits - 1) : ~0UL << vaBits;
        var layout = new Arm64KernelLayout(memory, tables, slide, source, imageBase, kimageVoffset, physOffset, vaBits, pageOffset);
        layout.Banner = NamelistConsistency.Check(info, symbols, layout.SymbolRelocation, layout.TryReadVirtual, core, namelistBanner);
        return layout;
    }

    /// <summary>Whether VMCOREINFO carries entries only arm64 writes (kimage_voffset, TCR_EL1_T1SZ, KERNELPACMASK).</summary>
    public static bool IsArm64VmcoreInfo(VmcoreInfo? info) =>
        info is not null && (info["NUMBER(kimage_voffset)"] is not null || info["NUMBER(TCR_EL1_T1SZ)"] is not null || info["NUMBER(KERNELPACMASK)"] is not null);

    /// <summary>Whether a namelist names a symbol only arm64 kernels have (the kimage_voffset variable).</summary>
    public static bool IsArm64Namelist(ISymbolTable symbols) => symbols.TryLookup("kimage_voffset", out _) && symbols.TryLookup("swapper_pg_dir", out _);

    private static ulong? Link(ISymbolTable symbols, string name) => symbols.TryLookup(name, out var s) ? s.Address : null;

    /// <summary>NUMBER(name), refusing a value that is present but not a number.</summary>
    private static ulong? Number(VmcoreInfo info, string name, string core)
    {
        if (info[$"NUMBER({name})"] is null)
            return null;
        return VmcoreNumber.Get(info, name)
            ?? throw new KvmOpenException($"{core}: VMCOREINFO NUMBER({name})={Text(info, name)} is not a number");
    }

    private static string Text(VmcoreInfo info, string name)
    {
        var text = info[$"NUMBER({name})"];
        return text is null ? "absent" : text.Length > 40 ? $"\"{text[..40]}…\"" : $"\"{text}\"";
    }

    /// <summary>Major and minor of a release string ("6.1.0-50-arm64" → (6, 1)), or null.</summary>
    internal static (int Major, int Minor)? ReleaseOf(string? release)
    {
        if (release is null)
            return null;
        var parts = release.Split('.', 3);
        if (parts.Length < 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major))
            return null;
        var minorText = new string(parts[1].TakeWhile(char.IsAsciiDigit).ToArray());
        return int.TryParse(minorText, NumberStyles.None, CultureInfo.InvariantCulture, out var minor) ? (major, minor) : null;
    }
}
