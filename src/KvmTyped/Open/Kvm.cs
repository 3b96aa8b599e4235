using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using KvmTyped.Linux;
using KvmTyped.Open;
using KvmTyped.Formats;
using KvmTyped.Symbols;
using KvmTyped.Translation;
using KvmTyped.Types;
using KvmTyped.Arch.X86;

namespace KvmTyped;

/// <summary>An opened kernel image: a namelist, a corefile (or the live kernel) and an optional swapfile,
/// as kvm_open(3KVM) opens them. Thread-safe for reads; writes (O_RDWR) are serialised.</summary>
public sealed class Kvm : IDisposable, IKernelMemory, IKernelTypeOffsets
{
    private readonly Lock _writeLock = new();
    private readonly ISymbolTable _symbols;
    private readonly IPhysicalMemory _physical;
    private readonly IAddressSpace _kernelSpace;
    private readonly IDisposable? _swap;
    private int _closed;

    /// <summary>The swap area given at open, which backs swapped-out user pages; null when none was given.</summary>
    internal Formats.SwapFile? Swap => _swap as Formats.SwapFile;
    private Btf.BtfRelocator? _relocator;

    internal Kvm(OpenedImage o)
    {
        _symbols = o.Symbols;
        _physical = o.Physical;
        _kernelSpace = o.KernelSpace;
        _swap = o.Swap;
        DataModel = o.DataModel;
        Machine = o.Machine;
        VmcoreInfo = o.VmcoreInfo;
        Layout = o.Layout;
        KaslrOffset = o.KaslrOffset;
        PhysBase = o.PhysBase;
        PageSize = o.PageSize;
        Flags = o.Flags;
        IsLive = o.IsLive;
        NamelistPath = o.NamelistPath;
        CorePath = o.CorePath;
        SwapPath = o.SwapPath;
        SectionFiles = o.Sections;
        CpuCount = o.CpuCount;
        Warnings = o.Warnings;
        BtfPath = o.BtfPath;
    }

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
    public DataModel DataModel { get; }

    /// <summary>Relocates a preserve_access_index struct against this kernel's BTF (<see cref="KernelBtf.For"/>),
    /// through a <see cref="Btf.BtfRelocator"/> made on first use.</summary>
    /// <exception cref="KvmException">The image has no BTF, lacks the struct, or a member's type disagrees.</exception>
    public KernelRelocation Relocate(KernelRelocationRequest request) =>
        LazyInitializer.EnsureInitialized(ref _relocator, () => new Btf.BtfRelocator(KernelBtf.For(this).Types, DataModel,
            Release is { } release ? $"kernel {release}" : $"the kernel in {CorePath}")).Relocate(request);

    /// <summary>The kernel's machine.</summary>
    public KernelMachine Machine { get; }

    /// <summary>Size of a kernel pointer in bytes.</summary>
    public int PointerSize => DataModel.PointerSize();

    /// <summary>The kernel's page size.</summary>
    public int PageSize { get; }

    /// <summary>The format of the corefile, e.g. "ELF64 core".</summary>
    public string FormatName => Live()._physical.FormatName;

    /// <summary>VMCOREINFO when the core carries it.</summary>
    public VmcoreInfo? VmcoreInfo { get; }

    /// <summary>Where the kernel sits (KASLR, phys_base, paging mode, root table), when the namelist names its page tables.</summary>
    public KernelLayout? Layout { get; }

    /// <summary>The kernel release (VMCOREINFO OSRELEASE), when known.</summary>
    public string? Release => VmcoreInfo?.OsRelease;

    /// <summary>The KASLR slide added to namelist addresses (0 without KASLR).</summary>
    public ulong KaslrOffset { get; }

    /// <summary>x86-64 phys_base: where the kernel text was loaded physically, relative to its link address.</summary>
    public long PhysBase { get; }

    /// <summary>The open flags.</summary>
    public KvmOpenFlags Flags { get; }

    /// <summary>Whether the corefile is writable (opened O_RDWR).</summary>
    public bool IsWritable => (Flags & KvmOpenFlags.ReadWrite) != 0;

    /// <summary>Whether this is the running kernel.</summary>
    public bool IsLive { get; }

    /// <summary>The namelist's path.</summary>
    public string NamelistPath { get; }

    /// <summary>The corefile's path.</summary>
    public string CorePath { get; }

    /// <summary>The swapfile's path, or null.</summary>
    public string? SwapPath { get; }

    /// <summary>Section files the core names, with whether each was found.</summary>
    public IReadOnlyList<SectionFileReference> SectionFiles { get; }

    /// <summary>Number of CPUs the core describes (NT_PRSTATUS notes), or 0 when unknown.</summary>
    public int CpuCount { get; }

    /// <summary>The BTF file given at open (<see cref="KvmOpenOptions.BtfPath"/>), or null: then the kernel's types
    /// come from the namelist's .BTF section or the image's own memory.</summary>
    public string? BtfPath { get; }

    /// <summary>Non-fatal findings of the open (e.g. a truncated segment).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The namelist, with addresses as it records them (before the KASLR slide).</summary>
    public ISymbolTable Symbols => Live()._symbols;

    /// <summary>Physical memory.</summary>
    public IPhysicalMemory Physical => Live()._physical;

    /// <summary>The kernel's virtual address space.</summary>
    public IAddressSpace KernelSpace => Live()._kernelSpace;

    /// <summary>Whether <see cref="Close"/> has been called.</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    private Kvm Live() => IsClosed ? throw new KvmClosedException() : this;

    /// <summary>The running (relocated) address of a symbol.</summary>
    /// <exception cref="KvmException">The namelist has no such symbol.</exception>
    public ulong SymbolAddress(string name) =>
        TryGetSymbol(name, out var a) ? a : throw new KvmException($"{NamelistPath}: no symbol \"{name}\"");

    /// <summary>Looks up a symbol's running (relocated) address.</summary>
    public bool TryGetSymbol(string name, out ulong address)
    {
        if (Live()._symbols.TryLookup(name, out var s))
        {
            address = Relocate(s);
            return true;
        }
        address = 0;
        return false;
    }

    /// <summary>The nearest symbol at or below a running address, and the offset from it.</summary>
    public bool TryFindSymbol(ulong address, [NotNullWhen(true)] out string? name, out ulong offset)
    {
        var imageBase = DataModel == DataModel.LP64 ? KernelLayout.StartKernelMap : KernelLayout.DefaultPageOffsetI386;
        var link = address >= imageBase + KaslrOffset ? address - KaslrOffset : address;
        if (Live()._symbols.TryFindNearest(link, out var s))
        {
            name = s.Name;
            offset = address - Relocate(s);
            return true;
        }
        name = null;
        offset = 0;
        return false;
    }

    /// <summary>A symbol's address as the kernel runs it: kernel-image symbols move by the KASLR slide; absolute
    /// symbols and x86-64 per-CPU symbols (linked from 0) stay where the namelist puts them.</summary>
    internal ulong Relocate(KernelSymbol s)
    {
        if (KaslrOffset == 0 || s.Type is 'A' or 'a')
            return s.Address;
        var imageBase = DataModel == DataModel.LP64 ? KernelLayout.StartKernelMap : KernelLayout.DefaultPageOffsetI386;
        return s.Address >= imageBase ? s.Address + KaslrOffset : s.Address;
    }

    /// <summary>Translates a kernel virtual address.</summary>
    public bool TryTranslate(ulong address, out ulong physical, [NotNullWhen(false)] out string? failure) =>
        Live()._kernelSpace.TryTranslate(address, out physical, out _, out failure);

    /// <inheritdoc />
    public bool TryReadVirtual(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure) =>
        Live()._kernelSpace.TryReadVirtual(_physical, address, destination, out failure);

    /// <summary>Reads kernel virtual memory, or throws <see cref="KvmReadException"/> saying why not.</summary>
    public void ReadVirtual(ulong address, Span<byte> destination)
    {
        if (!TryReadVirtual(address, destination, out var failure))
            throw new KvmReadException(address, failure);
    }

    /// <summary>Reads physical memory, or throws <see cref="KvmReadException"/> saying why not.</summary>
    public void ReadPhysical(ulong address, Span<byte> destination) => Live()._physical.Read(address, destination);

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

    /// <summary>Reads a NUL-terminated string of at most <paramref name="maxLength"/> bytes (Latin-1/UTF-8 as written).</summary>
    public string ReadCString(ulong address, int maxLength = 4096) =>
        ReadCString(maxLength, (a, span) => ReadVirtual(a, span), address);

    /// <summary>Reads a NUL-terminated string of at most <paramref name="maxLength"/> bytes at a physical address.</summary>
    public string ReadPhysicalCString(ulong address, int maxLength = 4096) =>
        ReadCString(maxLength, (a, span) => ReadPhysical(a, span), address);

    /// <summary>Reads a NUL-terminated string page by page through <paramref name="read"/>; the buffer grows with
    /// the string, not with <paramref name="maxLength"/>. Stops at the top of the address space.</summary>
    internal static string ReadCString(int maxLength, Action<ulong, Span<byte>> read, ulong address)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxLength);
        var buffer = new byte[Math.Min(maxLength, 256)];
        var got = 0;
        var page = new byte[4096];
        while (got < maxLength)
        {
            var at = address + (ulong)got;
            if (got > 0 && at == 0)
                break;
            // Stop at page ends so a string that ends just before an unreadable page still reads.
            var n = (int)Math.Min((ulong)(maxLength - got), 4096 - (at & 4095));
            read(at, page.AsSpan(0, n));
            var nul = page.AsSpan(0, n).IndexOf((byte)0);
            var take = nul >= 0 ? nul : n;
            if (got + take > buffer.Length)
                Array.Resize(ref buffer, (int)Math.Min(maxLength, Math.Max((long)buffer.Length * 2, got + take)));
            page.AsSpan(0, take).CopyTo(buffer.AsSpan(got));
            got += take;
            if (nul >= 0)
                break;
        }
        return Encoding.UTF8.GetString(buffer, 0, got);
    }

    /// <summary>Writes kernel virtual memory into the bytes of the corefile that back it (O_RDWR only).
    /// Every address is translated and checked before any byte is written.</summary>
    public void WriteVirtual(ulong address, ReadOnlySpan<byte> source)
    {
        var space = Live()._kernelSpace;
        if (!IsWritable)
            throw new KvmReadException(address, $"{CorePath} is open read-only");
        var pieces = new List<(ulong Pa, int Offset, int Length)>();
        var done = 0;
        while (done < source.Length)
        {
            var va = address + (ulong)done;
            if (!space.TryTranslate(va, out var pa, out var contiguous, out var failure))
                throw new KvmReadException(va, failure);
            var n = (int)Math.Min((ulong)(source.Length - done), Math.Max(1, contiguous));
            pieces.Add((pa, done, n));
            done += n;
        }
        lock (_writeLock)
        {
            Span<byte> probe = stackalloc byte[1];
            foreach (var p in pieces)
            {
                if (!_physical.TryRead(p.Pa, probe, out var failure) || !_physical.TryRead(p.Pa + (ulong)p.Length - 1, probe, out failure))
                    throw new KvmReadException(p.Pa, failure);
            }
            foreach (var p in pieces)
                _physical.Write(p.Pa, source.Slice(p.Offset, p.Length));
            // The bytes written may have been page tables.
            Layout?.InvalidateTranslations();
        }
    }

    /// <summary>Writes physical memory into the corefile (O_RDWR only).</summary>
    public void WritePhysical(ulong address, ReadOnlySpan<byte> source)
    {
        var physical = Live()._physical;
        if (!IsWritable)
            throw new KvmReadException(address, $"{CorePath} is open read-only");
        lock (_writeLock)
        {
            physical.Write(address, source);
            Layout?.InvalidateTranslations();
        }
    }

    /// <summary>Closes the image, as kvm_close does: releases every file and cache.</summary>
    /// <returns>True the first time; false when already closed.</returns>
    public bool Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
            return false;
        _physical.Dispose();
        _symbols.Dispose();
        _swap?.Dispose();
        return true;
    }

    /// <inheritdoc />
    public void Dispose() => Close();
}
