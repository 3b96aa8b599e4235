using System.Reflection;
using KvmTyped.Formats.Elf;
using KvmTyped.IO;
using KvmTyped.Linux;
using KvmTyped.Formats;
using KvmTyped.Formats.Kdump;
using KvmTyped.Formats.Lime;
using KvmTyped.Symbols;
using KvmTyped.Translation;
using KvmTyped.Arch;
using KvmTyped.Arch.Arm64;
using KvmTyped.Arch.X86;
using static KvmTyped.Formats.Elf.ElfConstants;

namespace KvmTyped.Open;

/// <summary>What an open produced, kept by <see cref="Kvm"/> as it is.</summary>
internal sealed record OpenedImage(
    KernelSymbols Symbols, IPhysicalMemory Physical, IKernelImageLayout Layout, SwapFile? Swap,
    DataModel DataModel, KernelMachine Machine, VmcoreInfo? VmcoreInfo, int PageSize,
    KvmOpenFlags Flags, bool IsLive, string NamelistPath, string CorePath, string? SwapPath,
    IReadOnlyList<SectionFileReference> Sections, int CpuCount, IReadOnlyList<string> Warnings, string? TypesPath, string? Truncation);

/// <summary>The open contract of kvm_open(3KVM): sniff formats, open every file or none, apply the data-model rules.</summary>
internal static class ImageOpener
{
    private const KvmOpenFlags Legal = KvmOpenFlags.ReadWrite | KvmOpenFlags.NoSearch;

    public static OpenedImage Open(string? namelist, string? corefile, string? swapfile, KvmOpenFlags flags, KvmOpenOptions options)
    {
        if ((flags & ~Legal) != 0)
            throw new KvmOpenException($"illegal flag 0x{(int)flags:x} to kvm_open()");
        if (options.SymbolsOnly)
            return SymbolsOnlyImage.Open(namelist, corefile, flags, options);
        var writable = (flags & KvmOpenFlags.ReadWrite) != 0;
        var live = corefile is null;
        var corePath = corefile ?? options.LiveCorePath;
        var namelistPath = namelist ?? options.LiveSymbolsPath;

        if (options.TypesPath is { } types && !File.Exists(types))
            throw new KvmOpenException($"{types}: No such file or directory (the file given for the kernel's types)");
        var owned = new List<IDisposable>();
        try
        {
            // The live core first: its refusal (not root, lockdown, no CONFIG_PROC_KCORE) is the error to report.
            var coreFile = live ? LiveKernel.OpenCore(corePath, writable) : null;
            if (coreFile is not null)
                owned.Add(coreFile);
            // Without a namelist the kernel's own symbol table is read once the core is open: the core says where it
            // lies (the running kernel's through /proc/kcore, a dump's through its VMCOREINFO).
            ISymbolTable? symbols = namelist is null ? null : OpenNamelist(namelist, options);
            if (symbols is not null)
                owned.Add(symbols);

            if (coreFile is null)
            {
                coreFile = RandomAccessFile.Open(corePath, writable);
                owned.Add(coreFile);
            }

            var core = OpenCore(coreFile, options);
            owned.Remove(coreFile);
            owned.Add(core.Memory);
            try
            {
                return OpenOnCore(namelist, corePath, namelistPath, swapfile, flags, options, live, writable, symbols, core, owned);
            }
            catch (KvmException e) when (core.Truncation is { } truncated && !e.Message.StartsWith(truncated, StringComparison.Ordinal))
            {
                // What fails on a truncated file (the kernel not found, the namelist taken for another kernel's) follows
                // from the truncation: say that first.
                throw new KvmOpenException($"{truncated}: {e.Message}", e);
            }
        }
        catch
        {
            for (var i = owned.Count - 1; i >= 0; i--)
                owned[i].Dispose();
            throw;
        }
    }

    /// <summary>The data-model rules of every open (DESIGN.md): the running kernel is examined only by a process of its
    /// model, and a program that names the models it supports (the options, or <see cref="KvmDataModelsAttribute"/> on
    /// its entry assembly) examines only those.</summary>
    /// <param name="model">The kernel's data model.</param>
    /// <param name="live">Whether the kernel is the running one.</param>
    /// <param name="options">The open's options (the process's model, the supported models).</param>
    /// <param name="subject">What the message says of the kernel, e.g. "vmcore is a 64-bit core file".</param>
    internal static void CheckModel(DataModel model, bool live, KvmOpenOptions options, string subject)
    {
        if (live && model != options.ProcessModel)
            throw new KvmOpenException($"{subject} - the live kernel cannot be examined by a {options.ProcessModel.BitsWord()} process");
        var supported = options.SupportedModels ?? Assembly.GetEntryAssembly()?.GetCustomAttribute<KvmDataModelsAttribute>()?.Models;
        if (supported is not null && !supported.Contains(model))
        {
            var other = supported.Count == 1 ? supported.First() : (model == DataModel.LP64 ? DataModel.ILP32 : DataModel.LP64);
            throw new KvmOpenException($"{subject} - cannot examine with {other.BitsWord()} libkvm");
        }
    }

    /// <summary>The open once the corefile is read: the live kernel's symbols, section files, the swapfile, the
    /// data-model rules, the kernel's place. Files it opens are added to <paramref name="owned"/>.</summary>
    private static OpenedImage OpenOnCore(string? namelist, string corePath, string namelistPath, string? swapfile, KvmOpenFlags flags,
        KvmOpenOptions options, bool live, bool writable, ISymbolTable? symbols, CoreParts core, List<IDisposable> owned)
    {
        if (symbols is null && live)
        {
            symbols = LiveKernel.OpenSymbols(options.LiveSymbolsPath, core.Memory, core.VmcoreInfo, core.Model, corePath, core.Warnings);
            owned.Add(symbols);
        }

        var sections = new List<SectionFileReference>();
        IPhysicalMemory physical = core.Memory;
        if (core.SectionRefs.Count > 0)
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(corePath)) ?? ".";
            var opened = new List<(SectionFileReference, RandomAccessFile?)>();
            foreach (var r in core.SectionRefs)
            {
                var p = Path.Combine(dir, r.FileName);
                if (!File.Exists(p))
                {
                    if ((flags & KvmOpenFlags.NoSearch) == 0)
                        throw new KvmOpenException($"{corePath}: section file {r.FileName} is missing (looked in {dir})");
                    opened.Add((r, null));
                    sections.Add(r with { Present = false });
                    continue;
                }
                var f = RandomAccessFile.Open(p, writable);
                owned.Add(f);
                if ((ulong)f.Length < r.Size)
                    throw new KvmOpenException($"{p}: section file holds {f.Length} bytes, but {corePath} says its section has {r.Size}");
                opened.Add((r, f));
                sections.Add(r with { Present = true });
            }
            physical = new SectionedPhysicalMemory(core.Memory, opened);
            owned.Clear();
            if (symbols is not null)
                owned.Add(symbols);
            owned.Add(physical);
        }

        SwapFile? swap = null;
        if (swapfile is not null)
        {
            swap = SwapFile.Open(swapfile);
            owned.Add(swap);
        }

        // Data-model rules (DESIGN.md): the kernel's model, from each file; they must agree.
        var coreModel = core.Model ?? ModelFromVmcoreInfo(core.VmcoreInfo);
        var nlModel = symbols?.DataModel;
        var model = coreModel ?? nlModel ?? throw new KvmOpenException($"{corePath}: cannot tell the kernel's data model from the core or the namelist");
        if (coreModel is { } cm && nlModel is { } nm && cm != nm)
            throw new KvmOpenException($"{corePath} is a {cm.BitsWord()} core file - cannot examine with a {nm.BitsWord()} namelist");
        CheckModel(model, live, options, $"{corePath} is a {model.BitsWord()} core file");
        var machine = KernelArchitecture.Decide(core.Machine, symbols, core.VmcoreInfo, model, corePath);

        var vmi = core.VmcoreInfo;
        if (symbols is null)
        {
            symbols = OpenDumpSymbols(core, physical, model, machine, corePath);
            owned.Add(symbols);
            namelistPath = corePath;
        }
        var pageSize = vmi?.PageSize ?? core.PageSize ?? 4096;
        if (symbols.Kind == "kallsyms" && model == DataModel.LP64)
        {
            // kallsyms shows running addresses: the layout takes link addresses and applies the slide itself.
            var linked = LiveKernel.AtLinkAddresses(symbols, vmi, model, KernelLayout.StartKernelMap);
            owned[owned.IndexOf(symbols)] = linked;
            symbols = linked;
        }
        IKernelImageLayout layout;
        if (KernelArchitecture.HasOwnLayout(machine))
            layout = KernelArchitecture.Detect(machine, physical, vmi, symbols, corePath, (symbols as ElfSymbolTable)?.ReadBanner());
        else if (symbols.TryLookup("init_top_pgt", out _) || symbols.TryLookup("swapper_pg_dir", out _))
        {
            // The namelist can name the kernel's page tables: find the kernel properly, and check the
            // namelist belongs to this dump (release, banner, VMCOREINFO symbols).
            layout = KernelLayout.Detect(physical, vmi, symbols, model, corePath, (symbols as ElfSymbolTable)?.ReadBanner());
        }
        else
        {
            core.Warnings.Add($"{namelistPath} names no kernel page table (init_top_pgt, swapper_pg_dir): only the kernel text mapping and the core's own virtual addresses can be read");
            layout = X86TextLayout.Create(model, vmi, symbols, core.VirtualMaps);
        }

        return new OpenedImage(new KernelSymbols(symbols, layout.SymbolRelocation), physical, layout, swap, model, machine, vmi, pageSize,
            flags, live, namelistPath, corePath, swapfile, sections, live ? 0 : core.CpuCount, core.Warnings, options.TypesPath, core.Truncation);
    }

    /// <summary>The kernel's symbols from the dump itself: kallsyms located by VMCOREINFO (Linux 6.0 on), read through
    /// the kernel image's linear mapping (x86: the text mapping; arm64: kimage_voffset), with VMCOREINFO's own
    /// SYMBOL(…) entries for what kallsyms lacks.</summary>
    /// <exception cref="KvmOpenException">The dump does not locate kallsyms, or its kernel's image cannot be placed.</exception>
    private static DumpSymbolTable OpenDumpSymbols(CoreParts core, IPhysicalMemory physical, DataModel model, KernelMachine machine, string corePath)
    {
        var vmi = core.VmcoreInfo;
        if (!KallsymsTables.TryFromVmcoreInfo(vmi, out var tables, out var missing))
        {
            var why = vmi is null ? "it carries no VMCOREINFO" : $"its VMCOREINFO lacks {string.Join(", ", missing)} (Linux writes them since 6.0)";
            throw new KvmOpenException($"{corePath}: no namelist was given, and the dump does not locate the kernel's own symbol table: {why}; give the kernel's System.map or vmlinux as the namelist argument");
        }
        if (machine == KernelMachine.Arm64)
        {
            var window = Arm64ImageWindow.Create(physical, vmi!, corePath);
            return new DumpSymbolTable(KallsymsImage.Decode(window.TryReadVirtual, tables, model, corePath, machine), vmi!, window.Relocation);
        }
        if (machine is not (KernelMachine.X86_64 or KernelMachine.X86))
            throw new KvmOpenException($"{corePath}: the kernel's symbols are read from the dump for x86 and arm64 kernels only, and this one is {machine.UnameName()}; give the kernel's System.map or vmlinux as the namelist argument");
        var text = X86TextLayout.Create(model, vmi, null, core.VirtualMaps);
        var kallsyms = KallsymsImage.Decode((ulong address, Span<byte> into, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure) => text.AddressSpace.TryReadVirtual(physical, address, into, out failure),
            tables, model, corePath, machine);
        return new DumpSymbolTable(kallsyms, vmi!, text.SymbolRelocation);
    }

    /// <summary>Opens the namelist: null is the running kernel's kallsyms; else an ELF vmlinux or a System.map.</summary>
    internal static ISymbolTable OpenNamelist(string? namelist, KvmOpenOptions options)
    {
        if (namelist is null)
            return TextSymbolTable.OpenKallsyms(options.LiveSymbolsPath);
        var file = RandomAccessFile.Open(namelist, writable: false);
        try
        {
            var head = file.Unchecked(0, (int)Math.Min(file.Length, 64));
            if (ElfImage.HasMagic(head))
            {
                var image = ElfImage.Parse(file);
                if (image.Type == EtCore)
                    throw new KvmOpenException($"{namelist}: is a core file, not a kernel image (namelist and corefile swapped?)");
                return new ElfSymbolTable(image);
            }
            if (file.Length == 0)
                throw new KvmFormatException(namelist, 0, "empty file: not a namelist");
            return TextSymbolTable.OpenMap(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private sealed record CoreParts(
        IPhysicalMemory Memory, DataModel? Model, KernelMachine Machine, VmcoreInfo? VmcoreInfo,
        List<(ulong Virt, ulong Phys, ulong Size)> VirtualMaps, List<SectionFileReference> SectionRefs, int CpuCount, List<string> Warnings)
    {
        public int? PageSize { get; init; }

        /// <summary>Why the corefile is shorter than its own headers say, or null.</summary>
        public string? Truncation { get; init; }
    }

    private static CoreParts OpenCore(RandomAccessFile file, KvmOpenOptions options)
    {
        if (file.Length == 0)
            throw new KvmFormatException(file.Path, 0, "empty file: not a core");
        if (options.RawImage)
        {
            if (file.Length < RawImageMinimum)
                throw new KvmFormatException(file.Path, 0, $"{file.Length} bytes: too small for a raw memory image (less than a page)");
            return new CoreParts(new RawImageMemory(file), null, KernelMachine.Unknown, null, [], [], 0, []);
        }
        var head = file.Unchecked(0, (int)Math.Min(file.Length, 64));
        if (ElfImage.HasMagic(head))
            return OpenElfCore(file);
        if (KdumpFile.IsKdump(head))
        {
            // The kdump reader takes the file as it was opened: a corefile is opened once.
            var kdumpOptions = new KdumpOptions { ZeroFillExcluded = options.ZeroFillExcludedPages };
            var kdump = options.SplitFiles is { Count: > 0 } more
                ? KdumpFile.OpenSet(file, more, kdumpOptions)
                : KdumpFile.Open(file, kdumpOptions);
            var warnings = new List<string>();
            if (kdump.IsIncomplete)
                warnings.Add($"{file.Path}: the dump is marked incomplete: some pages were not written");
            if (kdump.Truncation is { } truncated)
                warnings.Add($"{truncated}: pages stored past the end cannot be read");
            return new CoreParts(kdump, kdump.DataModelEvidence, kdump.Machine, kdump.VmcoreInfo, [], [], kdump.Header.CpuCount, warnings)
            {
                PageSize = kdump.PageSize,
                Truncation = kdump.Truncation,
            };
        }
        if (LimeMemory.IsLime(head))
            return new CoreParts(LimeMemory.Open(file), null, KernelMachine.Unknown, null, [], [], 0, []);
        throw new KvmFormatException(file.Path, null, $"not a known dump format (tried {KnownFormats}); a raw physical memory image is read only when asked for ({nameof(KvmOpenOptions)}.{nameof(KvmOpenOptions.RawImage)})");
    }

    /// <summary>The formats a corefile is recognised as, in the order they are tried, as messages name them.</summary>
    internal const string KnownFormats = "ELF core, kdump-compressed (plain or flattened), LiME/AVML";

    /// <summary>The smallest raw image taken: one page.</summary>
    private const int RawImageMinimum = 4096;

    private static CoreParts OpenElfCore(RandomAccessFile file)
    {
        var image = ElfImage.Parse(file);
        if (image.Type != EtCore)
            throw new KvmOpenException($"{file.Path}: is an ELF file of type {image.Type}, not a core file (ET_CORE)");
        var machine = image.Machine switch
        {
            Em386 => KernelMachine.X86,
            EmX86_64 => KernelMachine.X86_64,
            EmAarch64 => KernelMachine.Arm64,
            _ => KernelMachine.Unknown,
        };
        // The kernel's model is the machine's: QEMU writes ELF64 cores with EM_386 for i386 guests.
        DataModel? model = machine.DataModel() ?? (image.Is64 ? DataModel.LP64 : DataModel.ILP32);
        VmcoreInfo? vmi = null;
        var refs = new List<SectionFileReference>();
        var cpus = 0;
        foreach (var note in image.ReadNotes())
        {
            if (note.Name == "VMCOREINFO")
            {
                if (note.DescSize > VmcoreInfo.MaxBytes)
                    throw new KvmFormatException(file.Path, note.DescOffset, $"VMCOREINFO note of {note.DescSize} bytes is larger than {VmcoreInfo.MaxBytes}");
                vmi = VmcoreInfo.Parse(file.Unchecked(note.DescOffset, note.DescSize));
            }
            else if (note.Name == "CORE" && note.Type == 1)
                cpus++;
            else if (note.Name == SectionFileReference.NoteName && note.Type == SectionFileReference.NoteType)
            {
                if (refs.Count >= SectionFileReference.MaxReferences)
                    throw new KvmFormatException(file.Path, note.DescOffset, $"more than {SectionFileReference.MaxReferences} section references");
                refs.Add(SectionFileReference.Decode(file.Unchecked(note.DescOffset, note.DescSize), image.BigEndian, file.Path, note.DescOffset));
            }
        }
        // A file that refused a map (/proc/kcore: its size is not its content) is read by position through a block cache.
        IPhysicalMemory memory = file.IsMapped || file.IsWritable ? new ElfCoreMemory(image) : new KcoreMemory(image);
        var warnings = new List<string>();
        var maps = new List<(ulong, ulong, ulong)>();
        for (var i = 0; i < image.Segments.Count; i++)
        {
            var s = image.Segments[i];
            if (s.Type != PtLoad)
                continue;
            if (s.FileSize > 0 && !file.Contains(s.Offset, s.FileSize))
                warnings.Add($"{file.Path}: PT_LOAD {i} (offset 0x{s.Offset:x}, 0x{s.FileSize:x} bytes) extends past the end of the file (size 0x{file.Length:x}): the dump is truncated");
            var size = Math.Max(s.MemorySize, (ulong)s.FileSize);
            if (s.VirtualAddress != s.PhysicalAddress && s.VirtualAddress != 0 && s.PhysicalAddress != ulong.MaxValue)
                maps.Add((s.VirtualAddress, s.PhysicalAddress, size));
        }
        foreach (var r in refs)
        {
            if (r.VirtualAddress != 0)
                maps.Add((r.VirtualAddress, r.PhysicalAddress, r.Size));
        }
        return new CoreParts(memory, model, machine, vmi, maps, refs, cpus, warnings)
        {
            Truncation = warnings.Count > 0 ? $"{file.Path} is truncated (a PT_LOAD segment extends past the end of the file)" : null,
        };
    }

    /// <summary>Where the machine is silent, VMCOREINFO's addresses tell the pointer width.</summary>
    private static DataModel? ModelFromVmcoreInfo(VmcoreInfo? vmi)
    {
        if (vmi is null)
            return null;
        if (vmi.KernelOffset is not null || vmi.Symbol("init_top_pgt") is not null)
            return DataModel.LP64;
        if (vmi.IsPae)
            return DataModel.ILP32;
        var swapper = vmi.Symbol("swapper_pg_dir");
        return swapper is null ? null : swapper > uint.MaxValue ? DataModel.LP64 : DataModel.ILP32;
    }
}
