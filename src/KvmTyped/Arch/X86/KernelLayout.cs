using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using KvmTyped.Formats;
using KvmTyped.Symbols;
using KvmTyped.Arch;
using KvmTyped.Translation;
using static KvmTyped.Translation.PageTableWalk;

namespace KvmTyped.Arch.X86;

/// <summary>Where a Linux x86 kernel sits in a dump: its KASLR slide, its physical load offset, its paging mode and
/// root table, and the kernel address space built from them (text mapping first, else the page tables, cached).</summary>
/// <remarks>
/// <para>How each value is found, in order of preference:</para>
/// <list type="bullet">
/// <item>KASLR offset. x86-64: VMCOREINFO <c>KERNELOFFSET</c>. i386 (no KERNELOFFSET there): VMCOREINFO
/// <c>SYMBOL(_stext)</c> minus the namelist's <c>_stext</c>. Without VMCOREINFO (raw images): the
/// <c>linux_banner</c> search below.</item>
/// <item>phys_base (x86-64): VMCOREINFO <c>NUMBER(phys_base)</c>, else the banner search. i386 has no phys_base: its
/// image moves in virtual and physical memory together and physical = virtual − PAGE_OFFSET, so it is 0.</item>
/// <item>Paging. x86-64: 5 levels when VMCOREINFO <c>NUMBER(pgtable_l5_enabled)</c> is 1, else 4 (without VMCOREINFO,
/// whichever of 4 and 5 maps linux_banner where the text mapping does). i386: PAE when VMCOREINFO has
/// <c>CONFIG_X86_PAE=y</c>; otherwise the root table is probed (a PAE root is four entries with only the present and
/// cache bits set and the rest of its page zero).</item>
/// <item>PAGE_OFFSET. x86-64: the <c>page_offset_base</c> variable read from memory (randomised under KASLR), else the
/// fixed base of the paging mode. i386: the namelist's <c>startup_32</c> minus <c>phys_startup_32</c> (an absolute
/// symbol), else 0xc0000000.</item>
/// <item>Root table: the namelist's <c>init_top_pgt</c> (x86-64) or <c>swapper_pg_dir</c>, relocated, made physical
/// through the text mapping.</item>
/// </list>
/// <para>The banner search (no VMCOREINFO): the kernel is loaded at an address aligned like its link address (2 MiB on
/// x86-64, a page at least on i386), so <c>linux_banner</c> lies at a physical address congruent to its link
/// address modulo that alignment. Each such address holding "Linux version " is a candidate. On x86-64 the candidate
/// fixes slide + phys_base (the text mapping needs only their sum), hence the root table; the slide is the 2 MiB step
/// in the 1 GiB kernel image window at which the page tables map linux_banner to the candidate. On i386 the candidate
/// fixes the slide directly (slide = physical + PAGE_OFFSET − link address), and the page tables must agree. A
/// candidate the page tables contradict (e.g. the boot message copied into the log buffer) is skipped.</para>
/// <para>The namelist is checked against the dump: every VMCOREINFO SYMBOL(…) of a static kernel symbol must equal the
/// namelist's address plus the slide, and the <c>linux_banner</c> read at the namelist's relocated address must start
/// with "Linux version &lt;OSRELEASE&gt; " (and equal the namelist's own banner text when the caller has it).</para>
/// </remarks>
internal sealed class KernelLayout : IKernelImageLayout
{
    /// <summary>__START_KERNEL_map: where x86-64 maps its image, virtual = physical + this − phys_base.</summary>
    public const ulong StartKernelMap = 0xffff_ffff_8000_0000UL;

    /// <summary>x86-64 PAGE_OFFSET without KASLR, 4-level paging.</summary>
    public const ulong DefaultPageOffset4Level = 0xffff_8880_0000_0000UL;

    /// <summary>x86-64 PAGE_OFFSET without KASLR, 5-level paging.</summary>
    public const ulong DefaultPageOffset5Level = 0xff11_0000_0000_0000UL;

    /// <summary>i386 PAGE_OFFSET of the default 3G/1G split.</summary>
    public const ulong DefaultPageOffsetI386 = 0xc000_0000UL;

    private const ulong LargePage = 0x20_0000UL;
    /// <summary>The x86-64 kernel image window from __START_KERNEL_map (KERNEL_IMAGE_SIZE with KASLR: 1 GiB).</summary>
    internal const ulong KernelImageWindow = 0x4000_0000UL;
    private const string BannerPrefix = "Linux version ";

    /// <summary>Most physical addresses the banner search reads: 2^24, i.e. 32 TiB at the x86-64 stride of 2 MiB and
    /// 64 GiB (the PAE limit) at the i386 stride of 4 KiB.</summary>
    internal const int MaxBannerProbes = 1 << 24;

    private static readonly string[] CheckedVmcoreSymbols = ["_stext", "swapper_pg_dir", "init_top_pgt", "init_uts_ns", "prb", "printk_rb_static", "node_online_map"];

    private readonly IPhysicalMemory _memory;
    private readonly TranslationCache _cache;

    private KernelLayout(IPhysicalMemory memory, DataModel model, ulong slide, string slideSource, long physBase,
        int levels, bool pae, ulong rootVirtual, ulong rootPhysical, IAddressSpace pageTables, IAddressSpace uncached,
        ulong smeMask, int physicalAddressBits)
    {
        _memory = memory;
        DataModel = model;
        KaslrOffset = slide;
        KaslrSource = slideSource;
        PhysBase = physBase;
        PagingLevels = levels;
        Pae = pae;
        RootTableVirtual = rootVirtual;
        RootTable = rootPhysical;
        PageTables = pageTables;
        _cache = new TranslationCache(uncached);
        SmeMask = smeMask;
        PhysicalAddressBits = physicalAddressBits;
    }

    /// <summary>The kernel's data model (LP64 = x86-64, ILP32 = i386).</summary>
    public DataModel DataModel { get; }

    /// <summary>The KASLR slide: running address − namelist address of every kernel-image symbol.</summary>
    public ulong KaslrOffset { get; }

    /// <summary>How <see cref="KaslrOffset"/> was found ("VMCOREINFO KERNELOFFSET", "VMCOREINFO SYMBOL(_stext)",
    /// "linux_banner search").</summary>
    public string KaslrSource { get; }

    /// <summary>x86-64 phys_base: physical = virtual − __START_KERNEL_map + phys_base in the text mapping (may be
    /// negative under KASLR). 0 on i386.</summary>
    public long PhysBase { get; }

    /// <summary>Paging levels: 2 (i386), 3 (i386 PAE), 4 or 5 (x86-64).</summary>
    public int PagingLevels { get; }

    /// <summary>Whether an i386 kernel uses PAE.</summary>
    public bool Pae { get; }

    /// <summary>Start of the direct map of physical memory (x86-64 page_offset_base, i386 PAGE_OFFSET).</summary>
    public ulong PageOffset { get; private set; }

    /// <summary>Physical address of the kernel's root page table (init_top_pgt / swapper_pg_dir).</summary>
    public ulong RootTable { get; }

    /// <summary>Virtual (running) address of the kernel's root page table.</summary>
    public ulong RootTableVirtual { get; }

    /// <summary>The memory-encryption mask removed from page-table entries (0 when none).</summary>
    public ulong SmeMask { get; }

    /// <summary>Widest physical address a kernel mapping may name (VMCOREINFO MAX_PHYSMEM_BITS, else the paging
    /// mode's architectural limit).</summary>
    public int PhysicalAddressBits { get; }

    /// <summary>The kernel address space: the text (or i386 low-memory) mapping first, else the page tables, cached.</summary>
    public IAddressSpace AddressSpace => _cache;

    /// <summary>The kernel page tables alone, uncached.</summary>
    public IAddressSpace PageTables { get; }

    /// <summary>The linux_banner text read from memory (without its trailing newline).</summary>
    public string Banner { get; private set; } = "";

    /// <summary>Where the kernel image's addresses begin: __START_KERNEL_map on x86-64, PAGE_OFFSET on i386.</summary>
    private ulong KernelImageBase => DataModel == DataModel.LP64 ? StartKernelMap : PageOffset;

    /// <summary>How namelist addresses become running ones under this layout's slide.</summary>
    internal SymbolRelocation SymbolRelocation => new(KaslrOffset, KernelImageBase, DataModel);

    SymbolRelocation IKernelImageLayout.SymbolRelocation => SymbolRelocation;

    ulong? IKernelImageLayout.PageOffset => PageOffset;

    int? IKernelImageLayout.PagingLevels => PagingLevels;

    ulong? IKernelImageLayout.RootTable => RootTable;

    string? IKernelImageLayout.KaslrSource => KaslrSource;

    IAddressSpace? IKernelImageLayout.CreateProcessAddressSpace(ulong rootTablePhysical) => CreateProcessAddressSpace(rootTablePhysical);

    /// <summary>Reads kernel virtual memory through <see cref="AddressSpace"/>.</summary>
    public bool TryReadVirtual(ulong virtualAddress, Span<byte> destination, [NotNullWhen(false)] out string? failure) =>
        _cache.TryReadVirtual(_memory, virtualAddress, destination, out failure);

    /// <summary>Forgets cached kernel translations (after page tables were written).</summary>
    public void InvalidateTranslations() => _cache.Clear();

    /// <summary>An address space walking another root table (a process's page global directory, made physical) in
    /// the kernel's paging mode, cached.</summary>
    public IAddressSpace CreateProcessAddressSpace(ulong rootTablePhysical) =>
        new TranslationCache(CreatePageTables(_memory, DataModel, PagingLevels, Pae, rootTablePhysical, SmeMask, PhysicalAddressBits), 1024);

    /// <summary>Finds the layout of the kernel in <paramref name="memory"/>.</summary>
    /// <param name="memory">The dump's physical memory.</param>
    /// <param name="vmcoreInfo">The dump's VMCOREINFO, or null (raw images).</param>
    /// <param name="symbols">The namelist, at link-time addresses.</param>
    /// <param name="dataModel">The kernel's data model: LP64 for x86-64, ILP32 for i386.</param>
    /// <param name="coreName">The dump's name, for messages.</param>
    /// <param name="namelistBanner">The namelist's own linux_banner text when the caller can read it (an ELF vmlinux),
    /// to compare with memory; null otherwise.</param>
    /// <exception cref="KvmOpenException">The layout cannot be found, or the namelist does not belong to the dump.</exception>
    public static KernelLayout Detect(IPhysicalMemory memory, VmcoreInfo? vmcoreInfo, ISymbolTable symbols, DataModel dataModel,
        string? coreName = null, string? namelistBanner = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(symbols);
        var core = coreName ?? memory.FormatName;
        var layout = dataModel == DataModel.LP64
            ? DetectX86_64(memory, vmcoreInfo, symbols, core)
            : DetectI386(memory, vmcoreInfo, symbols, core);
        layout.CheckNamelist(vmcoreInfo, symbols, core, namelistBanner);
        if (dataModel == DataModel.LP64)
            layout.PageOffset = layout.ReadPageOffsetBase(symbols);
        return layout;
    }

    internal static IAddressSpace CreatePageTables(IPhysicalMemory memory, DataModel model, int levels, bool pae, ulong root,
        ulong smeMask, int physicalAddressBits) =>
        model == DataModel.LP64
            ? new X86_64PageTables(memory, root, levels, smeMask, physicalAddressBits)
            : pae ? new X86PaeTables(memory, root) : new X86NonPaeTables(memory, root);

    private static ulong? Link(ISymbolTable symbols, string name) =>
        symbols.TryLookup(name, out var s) ? s.Address : null;

    private static ulong AlignDown(ulong value, ulong alignment) => value & ~(alignment - 1);

    private static ulong AlignUp(ulong value, ulong alignment) => unchecked((value + alignment - 1) & ~(alignment - 1));

    private static KernelLayout DetectX86_64(IPhysicalMemory memory, VmcoreInfo? info, ISymbolTable symbols, string core)
    {
        var smeMask = info?.Number("sme_mask") is long sme and > 0 ? (ulong)sme : 0;
        var levelsKnown = info?.Number("pgtable_l5_enabled") is not null;
        var levels = info?.Number("pgtable_l5_enabled") == 1 ? 5 : 4;
        var physBits = info?.Number("MAX_PHYSMEM_BITS") is long bits and >= 32 and <= 52 ? (int)bits : 52;
        var rootLink = Link(symbols, "init_top_pgt") ?? Link(symbols, "swapper_pg_dir")
            ?? throw new KvmOpenException($"{symbols.Source}: no init_top_pgt or swapper_pg_dir symbol: cannot find the kernel page tables");

        ulong? slide = null;
        string source;
        if (info?.KernelOffset is ulong ko)
        {
            slide = ko;
            source = "VMCOREINFO KERNELOFFSET";
        }
        else if (info?.Symbol("_stext") is ulong running && Link(symbols, "_stext") is ulong linked)
        {
            slide = unchecked(running - linked);
            source = "VMCOREINFO SYMBOL(_stext)";
        }
        else
        {
            source = "linux_banner search";
        }

        long? physBase = info?.Number("phys_base");
        if (slide is null || physBase is null)
        {
            var found = SearchBannerX86_64(memory, symbols, rootLink, slide, levelsKnown ? levels : null, smeMask, physBits, core);
            if (slide is null)
                slide = found.Slide;
            physBase = found.PhysBase;
            levels = found.Levels;
        }

        var s = slide.Value;
        var pb = physBase.Value;
        if ((pb & 0xfff) != 0)
            throw new KvmOpenException($"{core}: phys_base {pb} (VMCOREINFO NUMBER(phys_base)) is not page-aligned");
        var rootVirtual = unchecked(rootLink + s);
        var rootPhysical = unchecked(rootVirtual - StartKernelMap + (ulong)pb);
        var pageTables = new X86_64PageTables(memory, rootPhysical, levels, smeMask, physBits);
        if (!levelsKnown && Link(symbols, "linux_banner") is ulong bl)
        {
            // No pgtable_l5_enabled: keep 4 levels unless only 5 map linux_banner where the text mapping puts it.
            var va = unchecked(bl + s);
            var pa = unchecked(va - StartKernelMap + (ulong)pb);
            var five = new X86_64PageTables(memory, rootPhysical, 5, smeMask, physBits);
            if (!MapsTo(pageTables, va, pa) && MapsTo(five, va, pa))
            {
                levels = 5;
                pageTables = five;
            }
        }

        var textStart = AlignDown(unchecked((Link(symbols, "_text") ?? Link(symbols, "_stext") ?? StartKernelMap) + s), LargePage);
        var imageSize = info?.Number("KERNEL_IMAGE_SIZE") is long kis and > 0 and <= (long)KernelImageWindow ? (ulong)kis : 0x2000_0000UL;
        var textEnd = Link(symbols, "_end") is ulong end ? AlignUp(unchecked(end + s), LargePage) : StartKernelMap + imageSize;
        if (textStart < StartKernelMap || textEnd <= textStart || textEnd - StartKernelMap > KernelImageWindow)
            throw new KvmOpenException($"{symbols.Source} does not match {core}: the kernel image {Hex(textStart)}-{Hex(textEnd)} (KASLR offset {Hex(s)}) lies outside the x86-64 kernel text window");
        var text = new LinearAddressSpace(textStart, textEnd - textStart, unchecked(textStart - StartKernelMap + (ulong)pb), pageTables);
        return new KernelLayout(memory, DataModel.LP64, s, source, pb, levels, false, rootVirtual, rootPhysical, pageTables, text, smeMask, physBits);
    }

    private readonly record struct X86_64Found(ulong Slide, long PhysBase, int Levels);

    private static X86_64Found SearchBannerX86_64(IPhysicalMemory memory, ISymbolTable symbols, ulong rootLink, ulong? knownSlide,
        int? knownLevels, ulong smeMask, int physBits, string core)
    {
        var bannerLink = Link(symbols, "linux_banner")
            ?? throw new KvmOpenException($"{core}: no VMCOREINFO gives the KASLR offset, and {symbols.Source} has no linux_banner to search for");
        if (bannerLink < StartKernelMap)
            throw new KvmOpenException($"{symbols.Source}: linux_banner at {Hex(bannerLink)} is not in the x86-64 kernel image");
        int[] levelChoices = knownLevels is int k ? [k] : [4, 5];
        foreach (var candidate in BannerCandidates(memory, bannerLink, LargePage))
        {
            // sum = slide + phys_base: the text mapping depends on nothing else.
            var sum = unchecked(candidate - (bannerLink - StartKernelMap));
            var root = unchecked(rootLink - StartKernelMap + sum);
            foreach (var levels in levelChoices)
            {
                var tables = new X86_64PageTables(memory, root, levels, smeMask, physBits);
                if (knownSlide is ulong ks)
                {
                    if (MapsTo(tables, unchecked(bannerLink + ks), candidate))
                        return new X86_64Found(ks, unchecked((long)(sum - ks)), levels);
                    continue;
                }
                for (ulong slide = 0; bannerLink + slide < StartKernelMap + KernelImageWindow && bannerLink + slide >= bannerLink; slide += LargePage)
                {
                    if (MapsTo(tables, bannerLink + slide, candidate))
                        return new X86_64Found(slide, unchecked((long)(sum - slide)), levels);
                }
            }
        }
        throw new KvmOpenException($"{core}: cannot find the kernel: no \"{BannerPrefix}\" at a physical address the page tables map linux_banner to (is {symbols.Source} this dump's namelist?)");
    }

    private static bool MapsTo(IAddressSpace space, ulong virtualAddress, ulong physicalAddress) =>
        space.TryTranslate(virtualAddress, out var pa, out _, out _) && pa == physicalAddress;

    /// <summary>Physical addresses congruent to <paramref name="linkAddress"/> modulo <paramref name="alignment"/> that
    /// hold "Linux version ", in address order.</summary>
    /// <remarks>Only the bytes the source stores are searched (<see cref="IPhysicalMemory.StoredRanges"/>: a core
    /// claiming terabytes its file cannot back costs nothing), and at most <see cref="MaxBannerProbes"/> addresses are
    /// read, so a source claiming absurd ranges cannot make the search run for ever.</remarks>
    internal static IEnumerable<ulong> BannerCandidates(IPhysicalMemory memory, ulong linkAddress, ulong alignment)
    {
        var probes = 0;
        var prefix = Encoding.ASCII.GetBytes(BannerPrefix);
        var buffer = new byte[prefix.Length];
        var residue = linkAddress & (alignment - 1);
        foreach (var range in memory.StoredRanges)
        {
            if (range.Length < (ulong)prefix.Length)
                continue;
            var first = AlignDown(range.Start, alignment) + residue;
            if (first < range.Start)
            {
                if (first + alignment < first)
                    continue;
                first += alignment;
            }
            for (var p = first; p >= first && p + (ulong)prefix.Length <= range.End; p += alignment)
            {
                if (++probes > MaxBannerProbes)
                    yield break;
                if (memory.TryRead(p, buffer, out _) && buffer.AsSpan().SequenceEqual(prefix))
                    yield return p;
                if (p + alignment < p)
                    break;
            }
        }
    }

    private static KernelLayout DetectI386(IPhysicalMemory memory, VmcoreInfo? info, ISymbolTable symbols, string core)
    {
        var pageOffset = Link(symbols, "startup_32") is ulong st && Link(symbols, "phys_startup_32") is ulong pst && st > pst
            && (st - pst) is var po && (po & 0x3f_ffffUL) == 0 && po <= uint.MaxValue
            ? st - pst
            : DefaultPageOffsetI386;
        var rootLink = Link(symbols, "swapper_pg_dir")
            ?? throw new KvmOpenException($"{symbols.Source}: no swapper_pg_dir symbol: cannot find the kernel page tables");

        ulong slide;
        string source;
        bool? pae = info is null ? null : info.IsPae ? true : null;
        if (info?.KernelOffset is ulong ko)
        {
            slide = ko;
            source = "VMCOREINFO KERNELOFFSET";
        }
        else if (info?.Symbol("_stext") is ulong running && Link(symbols, "_stext") is ulong linked)
        {
            slide = unchecked((ulong)(uint)(running - linked));
            source = "VMCOREINFO SYMBOL(_stext)";
        }
        else
        {
            var bannerLink = Link(symbols, "linux_banner")
                ?? throw new KvmOpenException($"{core}: no VMCOREINFO gives the KASLR offset, and {symbols.Source} has no linux_banner to search for");
            (slide, pae) = SearchBannerI386(memory, bannerLink, rootLink, pageOffset, pae, symbols, core);
            source = "linux_banner search";
        }

        var rootVirtual = (rootLink + slide) & uint.MaxValue;
        if (rootVirtual < pageOffset)
            throw new KvmOpenException($"{core}: swapper_pg_dir at {Hex(rootVirtual)} lies below PAGE_OFFSET {Hex(pageOffset)}");
        var rootPhysical = rootVirtual - pageOffset;
        pae ??= ProbePae(memory, rootPhysical, core);
        IAddressSpace tables = pae.Value ? new X86PaeTables(memory, rootPhysical) : new X86NonPaeTables(memory, rootPhysical);

        // Low memory is mapped linearly from PAGE_OFFSET up to high_memory; read that variable through the image's
        // own (linear) mapping, and fall back to the image alone when it is unreadable or absurd.
        var imageEnd = AlignUp(((Link(symbols, "_end") ?? rootLink + 0x1000) + slide) & uint.MaxValue, 0x1000);
        if (imageEnd <= rootVirtual || imageEnd > uint.MaxValue)
            throw new KvmOpenException($"{symbols.Source} does not match {core}: the kernel image ends at {Hex(imageEnd)} (KASLR offset {Hex(slide)}), outside the 32-bit kernel space above {Hex(rootVirtual)}");
        var lowEnd = imageEnd;
        if (Link(symbols, "high_memory") is ulong hmLink)
        {
            var image = new LinearAddressSpace(pageOffset, imageEnd - pageOffset, 0);
            Span<byte> word = stackalloc byte[4];
            if (image.TryReadVirtual(memory, (hmLink + slide) & uint.MaxValue, word, out _))
            {
                var hm = (ulong)BinaryPrimitives.ReadUInt32LittleEndian(word);
                if (hm > imageEnd && hm <= uint.MaxValue)
                    lowEnd = AlignDown(hm, 0x1000);
            }
        }
        var lowmem = new LinearAddressSpace(pageOffset, lowEnd - pageOffset, 0, tables);
        var layout = new KernelLayout(memory, DataModel.ILP32, slide, source, 0, pae.Value ? 3 : 2, pae.Value, rootVirtual,
            rootPhysical, tables, lowmem, 0, pae.Value ? 52 : 40);
        layout.PageOffset = pageOffset;
        return layout;
    }

    private static (ulong Slide, bool Pae) SearchBannerI386(IPhysicalMemory memory, ulong bannerLink, ulong rootLink, ulong pageOffset,
        bool? pae, ISymbolTable symbols, string core)
    {
        foreach (var candidate in BannerCandidates(memory, bannerLink, 0x1000))
        {
            if (candidate > uint.MaxValue - pageOffset)
                break;
            var slide = (candidate + pageOffset - bannerLink) & uint.MaxValue;
            var root = ((rootLink + slide) & uint.MaxValue) - pageOffset;
            if (((rootLink + slide) & uint.MaxValue) < pageOffset)
                continue;
            var isPae = pae ?? TryProbePae(memory, root);
            if (isPae is not bool p)
                continue;
            IAddressSpace tables = p ? new X86PaeTables(memory, root) : new X86NonPaeTables(memory, root);
            if (MapsTo(tables, (bannerLink + slide) & uint.MaxValue, candidate))
                return (slide, p);
        }
        throw new KvmOpenException($"{core}: cannot find the kernel: no \"{BannerPrefix}\" at a physical address the page tables map linux_banner to (is {symbols.Source} this dump's namelist?)");
    }

    private static bool ProbePae(IPhysicalMemory memory, ulong root, string core) =>
        TryProbePae(memory, root) ?? throw new KvmOpenException($"{core}: cannot read the root page table at physical {Hex(root)}");

    private static bool? TryProbePae(IPhysicalMemory memory, ulong root)
    {
        var page = new byte[4096];
        if (!memory.TryRead(root & ~0xfffUL, page, out _))
            return null;
        return X86PaeTables.LooksLikePdpt(page);
    }

    private ulong ReadPageOffsetBase(ISymbolTable symbols)
    {
        var fallback = PagingLevels == 5 ? DefaultPageOffset5Level : DefaultPageOffset4Level;
        if (Link(symbols, "page_offset_base") is not ulong link)
            return fallback;
        Span<byte> word = stackalloc byte[8];
        if (!TryReadVirtual(SymbolRelocation.ToRunning(link), word, out _))
            return fallback;
        var value = BinaryPrimitives.ReadUInt64LittleEndian(word);
        // Randomised in 1 GiB (PUD) steps within the kernel half.
        return value >= 0xff00_0000_0000_0000UL && (value & 0x3fff_ffffUL) == 0 ? value : fallback;
    }

    private void CheckNamelist(VmcoreInfo? info, ISymbolTable symbols, string core, string? namelistBanner)
    {
        if (info is not null)
        {
            foreach (var name in CheckedVmcoreSymbols)
            {
                if (info.Symbol(name) is not ulong running || Link(symbols, name) is not ulong linked)
                    continue;
                var expected = SymbolRelocation.ToRunning(linked);
                if (expected != running)
                    throw new KvmOpenException(
                        $"{symbols.Source} does not match {core}: {name} is at {Hex(running)} in the dump's VMCOREINFO (release {info.OsRelease ?? "unknown"}), " +
                        $"but at {Hex(linked)} + KASLR offset {Hex(KaslrOffset)} = {Hex(expected)} in the namelist");
            }
        }

        if (Link(symbols, "linux_banner") is not ulong bannerLink)
        {
            if (namelistBanner is not null)
                throw new KvmOpenException($"{symbols.Source}: no linux_banner symbol to compare with the namelist's banner");
            return;
        }
        var bannerAddress = SymbolRelocation.ToRunning(bannerLink);
        if (!TryReadCString(bannerAddress, 1024, out var banner, out var failure))
            throw new KvmOpenException($"{symbols.Source} does not match {core}: cannot read linux_banner at {Hex(bannerAddress)}: {failure}");
        Banner = banner.TrimEnd('\n');

        if (info?.OsRelease is string release && !Banner.StartsWith(BannerPrefix + release + " ", StringComparison.Ordinal))
            throw new KvmOpenException(
                $"{symbols.Source} does not match {core}: the dump is release {release} (VMCOREINFO OSRELEASE), " +
                $"but linux_banner at the namelist's address {Hex(bannerAddress)} reads \"{Printable(Banner)}\"");
        if (!Banner.StartsWith(BannerPrefix, StringComparison.Ordinal))
            throw new KvmOpenException(
                $"{symbols.Source} does not match {core}: linux_banner at the namelist's address {Hex(bannerAddress)} reads \"{Printable(Banner)}\"");
        if (namelistBanner is not null && !string.Equals(namelistBanner.TrimEnd('\n', '\0'), Banner, StringComparison.Ordinal))
            throw new KvmOpenException(
                $"{symbols.Source} does not match {core}: the namelist's banner is \"{Printable(namelistBanner.TrimEnd('\n', '\0'))}\", " +
                $"the dump's is \"{Printable(Banner)}\"");
    }

    /// <summary>A string of the kernel's memory; a failure after some bytes were read still gives those bytes (a
    /// banner that ends where the mapped memory ends).</summary>
    private bool TryReadCString(ulong address, int max, out string text, [NotNullWhen(false)] out string? failure)
    {
        var ok = CStringReader.TryRead(TryReadVirtual, address, max, out var bytes, out var why);
        text = Encoding.Latin1.GetString(bytes);
        failure = ok || bytes.Length > 0 ? null : why;
        return failure is null;
    }

    private static string Printable(string s)
    {
        var sb = new StringBuilder(Math.Min(s.Length, 200));
        foreach (var c in s.Length > 200 ? s[..200] : s)
            sb.Append(c is >= ' ' and < '\x7f' ? c : '?');
        return sb.ToString();
    }
}
