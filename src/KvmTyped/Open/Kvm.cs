using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using KvmTyped.Arch;
using KvmTyped.Formats;
using KvmTyped.Formats.Kdump;
using KvmTyped.Open;
using KvmTyped.Symbols;
using KvmTyped.Translation;
using KvmTyped.Types;

namespace KvmTyped;

/// <summary>An opened kernel image: a namelist, a corefile (or the live kernel) and an optional swapfile,
/// as kvm_open(3KVM) opens them. Thread-safe for reads; writes (O_RDWR) are serialised.</summary>
public sealed class Kvm : IDisposable, IKernelMemory, IKernelTypeOffsets
{
    private readonly Lock _writeLock = new();
    private readonly Lock _typesLock = new();
    private readonly OpenedImage _image;
    private ImageTypes? _types;
    private int _closed;

    internal Kvm(OpenedImage image) => _image = image;

    /// <summary>Opens a kernel image, as kvm_open(3KVM) does.</summary>
    /// <param name="namelist">An unstripped ELF kernel, a System.map or a kallsyms file; null: the running kernel's symbols.</param>
    /// <param name="corefile">An ELF vmcore, kdump-compressed dump or raw physical image; null: the live kernel.</param>
    /// <param name="swapfile">The swap device or file, or null.</param>
    /// <param name="flags">ReadOnly or ReadWrite, optionally with NoSearch; anything else is refused.</param>
    /// <param name="errstr">When not null, each open error is also printed to standard error as "errstr: message".</param>
    /// <param name="options">Less common settings.</param>
    /// <exception cref="KvmException">The open failed; no file is left open.</exception>
    public static Kvm Open(string? namelist, string? corefile, string? swapfile = null, KvmOpenFlags flags = KvmOpenFlags.ReadOnly,
        string? errstr = null, KvmOpenOptions? options = null)
    {
        options ??= new KvmOpenOptions();
        try
        {
            return new Kvm(ImageOpener.Open(namelist, corefile, swapfile, flags, options));
        }
        catch (KvmException e) when (errstr is not null)
        {
            (options.ErrorWriter ?? Console.Error).WriteLine($"{errstr}: {e.Message}");
            throw;
        }
    }

    /// <summary>The kernel's data model.</summary>
    public DataModel DataModel => _image.DataModel;

    /// <summary>The kernel's machine.</summary>
    public KernelMachine Machine => _image.Machine;

    /// <summary>Size of a kernel pointer in bytes.</summary>
    public int PointerSize => DataModel.PointerSize();

    /// <summary>The kernel's page size.</summary>
    public int PageSize => _image.PageSize;

    /// <summary>The format of the corefile, e.g. "ELF64 core".</summary>
    public string FormatName => Live()._image.Physical.FormatName;

    /// <summary>The kernel release (VMCOREINFO OSRELEASE), when known.</summary>
    public string? Release => _image.VmcoreInfo?.OsRelease;

    /// <summary>VMCOREINFO's entries (KEY=value) when the core carries it, else null.</summary>
    public IReadOnlyDictionary<string, string>? VmcoreInfo => _image.VmcoreInfo?.Entries;

    /// <summary>The KASLR slide added to namelist addresses (0 without KASLR).</summary>
    public ulong KaslrOffset => _image.Layout.KaslrOffset;

    /// <summary>How <see cref="KaslrOffset"/> was found ("VMCOREINFO KERNELOFFSET", "linux_banner search", …), or null
    /// when the kernel's page tables are not used (the namelist names none).</summary>
    public string? KaslrSource => _image.Layout.KaslrSource;

    /// <summary>False when the KASLR slide cannot be known: a dump opened without a namelist, whose symbols are already
    /// at their running addresses, and whose VMCOREINFO states no KERNELOFFSET (i386 kernels write none). Reading is
    /// not affected; <see cref="KaslrOffset"/> is then 0.</summary>
    public bool KaslrOffsetKnown => !(_image.Symbols.Table is DumpSymbolTable && _image.VmcoreInfo?.KernelOffset is null);

    /// <summary>x86-64 phys_base: where the kernel text was loaded physically, relative to its link address.</summary>
    public long PhysBase => _image.Layout.PhysBase;

    /// <summary>Start of the direct map of physical memory (x86-64 page_offset_base, i386 PAGE_OFFSET), when known.</summary>
    public ulong? PageOffset => _image.Layout.PageOffset;

    /// <summary>Paging levels of the kernel's page tables (2, 3 with PAE, 4 or 5), or null when they are not used.</summary>
    public int? PagingLevels => _image.Layout.PagingLevels;

    /// <summary>Whether an i386 kernel uses PAE.</summary>
    public bool IsPae => _image.Layout.Pae;

    /// <summary>Physical address of the kernel's root page table, or null when the page tables are not used.</summary>
    public ulong? RootTable => _image.Layout.RootTable;

    /// <summary>The open flags.</summary>
    public KvmOpenFlags Flags => _image.Flags;

    /// <summary>Whether the corefile is writable (opened O_RDWR).</summary>
    public bool IsWritable => (Flags & KvmOpenFlags.ReadWrite) != 0;

    /// <summary>Whether this is the running kernel.</summary>
    public bool IsLive => _image.IsLive;

    /// <summary>The namelist's path.</summary>
    public string NamelistPath => _image.NamelistPath;

    /// <summary>The kind of namelist: "ELF", "System.map" or "kallsyms".</summary>
    public string NamelistKind => _image.Symbols.Table.Kind;

    /// <summary>How many symbols the namelist holds (for a dump opened without one: kallsyms' and VMCOREINFO's).</summary>
    public int SymbolCount => Live()._image.Symbols.Table.Count;

    /// <summary>The corefile's path.</summary>
    public string CorePath => _image.CorePath;

    /// <summary>The swapfile's path, or null.</summary>
    public string? SwapPath => _image.SwapPath;

    /// <summary>Section files the core names, with whether each was found.</summary>
    public IReadOnlyList<SectionFile> SectionFiles => [.. _image.Sections.Select(s => new SectionFile(s.FileName, s.PhysicalAddress, s.Size, s.Present))];

    /// <summary>Number of CPUs the core describes (NT_PRSTATUS notes), or 0 when unknown.</summary>
    public int CpuCount => _image.CpuCount;

    /// <summary>The type file given at open (<see cref="KvmOpenOptions.TypesPath"/>: BTF, or an ELF file with .BTF or
    /// DWARF), or null: then the kernel's types come from the namelist (.BTF, else DWARF) or the image's own memory.</summary>
    public string? TypesPath => _image.TypesPath;

    /// <summary>The name <see cref="TypesPath"/> had when it took BTF only.</summary>
    public string? BtfPath => _image.TypesPath;

    /// <summary>Why the corefile is shorter than its own headers say (it was cut short: a copy that stopped, a disk that
    /// filled), or null. Memory stored past the end cannot be read; <see cref="Warnings"/> says so too.</summary>
    public string? Truncation => _image.Truncation;

    /// <summary>Non-fatal findings of the open (e.g. a truncated segment).</summary>
    public IReadOnlyList<string> Warnings => _image.Warnings;

    /// <summary>Whether <see cref="Close"/> has been called.</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>The corefile described in format-neutral terms: its format, physical ranges, and for a kdump-compressed
    /// file its header version, page codecs (found by reading every page descriptor) and state.</summary>
    public DumpInfo DescribeDump()
    {
        var physical = Live()._image.Physical;
        KdumpInfo? kdump = null;
        if (physical is KdumpFile k)
        {
            var codecs = k.ScanCodecs().ToString().ToLowerInvariant().Split(", ", StringSplitOptions.RemoveEmptyEntries);
            kdump = new KdumpInfo(k.Header.Version, codecs, k.IsFlattened, k.IsIncomplete || k.Truncation is not null);
        }
        return new DumpInfo(physical.FormatName, [.. physical.Ranges.Select(r => new MemoryRange(r.Start, r.End, r.Origin))], kdump);
    }

    /// <summary>The namelist, with addresses as it records them (before the KASLR slide).</summary>
    internal ISymbolTable Symbols => Live()._image.Symbols.Table;

    /// <summary>The namelist with the running (KASLR-relocated) addresses of its symbols.</summary>
    internal KernelSymbols KernelSymbols => Live()._image.Symbols;

    /// <summary>Physical memory.</summary>
    internal IPhysicalMemory Physical => Live()._image.Physical;

    /// <summary>What the architecture found out about the kernel's place (KASLR, paging, root table).</summary>
    internal IKernelImageLayout Layout => _image.Layout;

    /// <summary>VMCOREINFO, parsed.</summary>
    internal VmcoreInfo? VmcoreInfoData => _image.VmcoreInfo;

    /// <summary>The swap area given at open, which backs swapped-out user pages; null when none was given.</summary>
    internal SwapFile? Swap => _image.Swap;

    private Kvm Live() => IsClosed ? throw new KvmClosedException() : this;

    /// <summary>The running (relocated) address of a symbol.</summary>
    /// <exception cref="KvmException">The namelist has no such symbol.</exception>
    public ulong SymbolAddress(string name) =>
        TryGetSymbol(name, out var a) ? a : throw new KvmException(MissingSymbol(name));

    /// <summary>Why a symbol the library needs is not there, naming what would supply it.</summary>
    internal string MissingSymbol(string name) =>
        _image.Symbols.Table is DumpSymbolTable
            ? $"{NamelistPath}: the kernel's own symbol table (kallsyms in the dump) has no symbol \"{name}\": kernels built without CONFIG_KALLSYMS_ALL keep text symbols only; give the kernel's System.map or vmlinux as the namelist argument"
            : $"{NamelistPath}: no symbol \"{name}\"";

    /// <summary>Looks up a symbol's running (relocated) address.</summary>
    public bool TryGetSymbol(string name, out ulong address)
    {
        var found = TryLookupSymbol(name, out var symbol);
        address = symbol.Address;
        return found;
    }

    /// <summary>Looks up a symbol: its name, running (relocated) address and nm type letter.</summary>
    public bool TryLookupSymbol(string name, out KernelSymbol symbol) => Live()._image.Symbols.TryLookup(name, out symbol);

    /// <summary>The nearest symbol at or below a running address, and the offset from it.</summary>
    public bool TryFindSymbol(ulong address, [NotNullWhen(true)] out string? name, out ulong offset)
    {
        if (Live()._image.Symbols.TryFindNearest(address, out var symbol, out offset))
        {
            name = symbol.Name;
            return true;
        }
        name = null;
        return false;
    }

    /// <summary>Places the members of a preserve_access_index struct in this kernel. VMCOREINFO answers when it has the
    /// struct's SIZE and an OFFSET for every member asked for (no BTF is needed then: the log reads so on any dump);
    /// else the kernel's BTF (<see cref="Btf"/>), as BPF CO-RE does; else whatever VMCOREINFO has, the rest absent.</summary>
    /// <exception cref="KvmException">Neither source knows the struct, or a member's type disagrees with the BTF.</exception>
    public KernelRelocation Relocate(KernelRelocationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var types = Types();
        if (types.VmcoreInfo is { } vmi && vmi.Covers(request))
            return vmi.Relocate(request);
        if (types.Relocator(this, out var why) is { } btf)
            return btf.Relocate(request);
        if (types.VmcoreInfo is { } partial && partial.Knows(request))
            return partial.Relocate(request);
        throw new KvmException(why ?? "no BTF");
    }

    /// <summary>The kernel's BTF, found on first use (see <see cref="KernelBtf"/>) and kept until <see cref="Close"/>.</summary>
    /// <exception cref="KvmException">No source has BTF; the message names each one tried and why it failed.</exception>
    public KernelBtf Btf => TryGetBtf(out var btf, out var why) ? btf : throw new KvmException(why);

    /// <summary>The kernel's BTF, or why there is none.</summary>
    public bool TryGetBtf([NotNullWhen(true)] out KernelBtf? btf, [NotNullWhen(false)] out string? why)
    {
        btf = Types().Btf(this, out why);
        why ??= btf is null ? "no BTF" : null;
        return btf is not null;
    }

    /// <summary>Whether the kernel's BTF has been looked for already (found or not).</summary>
    public bool HasLookedForBtf => Volatile.Read(ref _types)?.Searched == true;

    private ImageTypes Types()
    {
        Live();
        var types = Volatile.Read(ref _types);
        if (types is not null)
            return types;
        lock (_typesLock)
        {
            Live();
            return _types ??= new ImageTypes(_image.VmcoreInfo is { } vmi ? new VmcoreInfoOffsets(vmi, ImageName) : null);
        }
    }

    /// <summary>How messages name this kernel: "kernel RELEASE", or the core when the release is unknown.</summary>
    internal string ImageName => Release is { } release ? $"kernel {release}" : $"the kernel in {CorePath}";

    /// <summary>What the image's types are found in: VMCOREINFO's offsets, and the BTF once looked for. Dropped by
    /// <see cref="Close"/>.</summary>
    private sealed class ImageTypes(VmcoreInfoOffsets? vmcoreInfo)
    {
        private readonly Lock _lock = new();
        private KernelBtf? _btf;
        private Btf.BtfRelocator? _relocator;
        private string? _why;

        public VmcoreInfoOffsets? VmcoreInfo { get; } = vmcoreInfo;

        public bool Searched { get; private set; }

        public KernelBtf? Btf(Kvm kvm, out string? why)
        {
            lock (_lock)
            {
                if (!Searched)
                {
                    KernelBtf.TryFind(kvm, out _btf, out _why);
                    Searched = true;
                }
                why = _why;
                return _btf;
            }
        }

        public Btf.BtfRelocator? Relocator(Kvm kvm, out string? why)
        {
            var btf = Btf(kvm, out why);
            if (btf is null)
                return null;
            lock (_lock)
                return _relocator ??= new Btf.BtfRelocator(btf.Types, kvm.DataModel, kvm.ImageName);
        }
    }

    /// <summary>Translates a kernel virtual address.</summary>
    public bool TryTranslate(ulong address, out ulong physical, [NotNullWhen(false)] out string? failure) =>
        Live()._image.Layout.AddressSpace.TryTranslate(address, out physical, out _, out failure);

    /// <inheritdoc />
    public bool TryReadVirtual(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure) =>
        Live()._image.Layout.AddressSpace.TryReadVirtual(_image.Physical, address, destination, out failure);

    /// <summary>Reads kernel virtual memory, or throws <see cref="KvmReadException"/> saying why not.</summary>
    public void ReadVirtual(ulong address, Span<byte> destination)
    {
        if (!TryReadVirtual(address, destination, out var failure))
            throw new KvmReadException(address, failure);
    }

    /// <summary>Reads physical memory, or says why not.</summary>
    public bool TryReadPhysical(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure) =>
        Live()._image.Physical.TryRead(address, destination, out failure);

    /// <summary>Reads physical memory, or throws <see cref="KvmReadException"/> saying why not.</summary>
    public void ReadPhysical(ulong address, Span<byte> destination) => Live()._image.Physical.Read(address, destination);

    /// <summary>Reads a little-endian unsigned integer of the given size (1, 2, 4 or 8 bytes) at a kernel virtual address.</summary>
    public ulong ReadUInt(ulong address, int size)
    {
        Span<byte> b = stackalloc byte[8];
        b.Clear();
        if (size is not (1 or 2 or 4 or 8))
            throw new ArgumentOutOfRangeException(nameof(size));
        ReadVirtual(address, b[..size]);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    /// <summary>Reads a kernel pointer (4 or 8 bytes by the data model).</summary>
    public ulong ReadPointer(ulong address) => ReadUInt(address, PointerSize);

    /// <summary>Reads a NUL-terminated string of at most <paramref name="maxLength"/> bytes, decoded as UTF-8.</summary>
    /// <exception cref="KvmReadException">A byte before the end of the string cannot be read.</exception>
    public string ReadCString(ulong address, int maxLength = 4096) => ReadCString(TryReadVirtual, address, maxLength);

    /// <summary>Reads a NUL-terminated string of at most <paramref name="maxLength"/> bytes at a physical address.</summary>
    /// <exception cref="KvmReadException">A byte before the end of the string cannot be read.</exception>
    public string ReadPhysicalCString(ulong address, int maxLength = 4096) => ReadCString(TryReadPhysical, address, maxLength);

    private static string ReadCString(TryReadMemory read, ulong address, int maxLength)
    {
        if (!CStringReader.TryRead(read, address, maxLength, out var bytes, out var failure))
            throw new KvmReadException(address + (ulong)bytes.Length, failure);
        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>Writes kernel virtual memory into the bytes of the corefile that back it (O_RDWR only).
    /// Every address is translated and checked before any byte is written.</summary>
    public void WriteVirtual(ulong address, ReadOnlySpan<byte> source)
    {
        var space = Live()._image.Layout.AddressSpace;
        if (!IsWritable)
            throw new KvmWriteException(address, $"{CorePath} is open read-only");
        var pieces = new List<(ulong Pa, int Offset, int Length)>();
        var done = 0;
        while (done < source.Length)
        {
            var va = address + (ulong)done;
            if (!space.TryTranslate(va, out var pa, out var contiguous, out var failure))
                throw new KvmWriteException(va, failure);
            var n = (int)Math.Min((ulong)(source.Length - done), Math.Max(1, contiguous));
            pieces.Add((pa, done, n));
            done += n;
        }
        WritePhysicalPieces(pieces, source);
    }

    /// <summary>Writes pieces of <paramref name="source"/> at their physical addresses, all of them checked first and
    /// written under the write lock; translations cached before are dropped (the bytes may have been page tables).</summary>
    internal void WritePhysicalPieces(IReadOnlyList<(ulong Pa, int Offset, int Length)> pieces, ReadOnlySpan<byte> source)
    {
        var physical = Live()._image.Physical;
        if (!IsWritable)
            throw new KvmWriteException(pieces.Count > 0 ? pieces[0].Pa : 0, $"{CorePath} is open read-only");
        lock (_writeLock)
        {
            Span<byte> probe = stackalloc byte[1];
            foreach (var p in pieces)
            {
                if (!physical.TryRead(p.Pa, probe, out var failure) || !physical.TryRead(p.Pa + (ulong)p.Length - 1, probe, out failure))
                    throw new KvmWriteException(p.Pa, failure);
            }
            foreach (var p in pieces)
                physical.Write(p.Pa, source.Slice(p.Offset, p.Length));
            _image.Layout.InvalidateTranslations();
        }
    }

    /// <summary>Writes physical memory into the corefile (O_RDWR only).</summary>
    public void WritePhysical(ulong address, ReadOnlySpan<byte> source)
    {
        var physical = Live()._image.Physical;
        if (!IsWritable)
            throw new KvmWriteException(address, $"{CorePath} is open read-only");
        lock (_writeLock)
        {
            physical.Write(address, source);
            _image.Layout.InvalidateTranslations();
        }
    }

    /// <summary>Closes the image, as kvm_close does: releases every file and cache.</summary>
    /// <returns>True the first time; false when already closed.</returns>
    public bool Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
            return false;
        _image.Physical.Dispose();
        _image.Symbols.Table.Dispose();
        _image.Swap?.Dispose();
        lock (_typesLock)
            _types = null;
        return true;
    }

    /// <inheritdoc />
    public void Dispose() => Close();
}
