using System.Diagnostics.CodeAnalysis;
using KvmTyped.Arch;
using KvmTyped.Formats;
using KvmTyped.Symbols;
using KvmTyped.Translation;

namespace KvmTyped.Open;

/// <summary>A symbols-only open (<see cref="KvmOpenOptions.SymbolsOnly"/>): the namelist alone, for what reads no memory
/// (nlist, symbol lookups). The corefile and swapfile are not opened, so it works where /proc/kcore is locked down or
/// a dump is not at hand; every memory read fails saying why.</summary>
/// <remarks>Addresses are the namelist's own: running addresses for kallsyms (what the running kernel shows), link
/// addresses for a System.map or vmlinux, since without a core nothing tells the KASLR slide.</remarks>
internal static class SymbolsOnlyImage
{
    /// <summary>Why a read fails after a symbols-only open.</summary>
    internal const string NoMemory = "no memory was opened: the image was opened for symbols only (KvmOpenOptions.SymbolsOnly)";

    /// <summary>Opens the namelist under the data-model rules that apply without a core.</summary>
    /// <exception cref="KvmOpenException">O_RDWR was asked for, the namelist cannot be read, or its data model is refused.</exception>
    public static OpenedImage Open(string? namelist, string? corefile, KvmOpenFlags flags, KvmOpenOptions options)
    {
        if ((flags & KvmOpenFlags.ReadWrite) != 0)
            throw new KvmOpenException("O_RDWR with a symbols-only open: no memory is opened, so nothing can be written");
        var live = corefile is null;
        var namelistPath = namelist ?? options.LiveSymbolsPath;
        var symbols = ImageOpener.OpenNamelist(namelist, options);
        try
        {
            if (namelist is null)
                LiveKernel.CheckAddressesShown(symbols);
            var model = symbols.DataModel
                ?? (symbols.Machine != KernelMachine.Unknown ? symbols.Machine.DataModel() : null)
                ?? throw new KvmOpenException($"{namelistPath}: cannot tell the kernel's data model from the namelist");
            ImageOpener.CheckModel(model, live, options, $"{namelistPath} names a {model.BitsWord()} kernel");
            var machine = symbols.Machine != KernelMachine.Unknown ? symbols.Machine : model == DataModel.LP64 ? KernelMachine.X86_64 : KernelMachine.X86;
            var layout = new NoMemoryLayout(model);
            return new OpenedImage(new KernelSymbols(symbols, layout.SymbolRelocation), new NoPhysicalMemory(), layout, null, model, machine,
                null, 4096, flags, live, namelistPath, corefile ?? options.LiveCorePath, null, [], 0, [], options.TypesPath, null);
        }
        catch
        {
            symbols.Dispose();
            throw;
        }
    }

    /// <summary>Physical memory of a symbols-only open: none.</summary>
    private sealed class NoPhysicalMemory : IPhysicalMemory
    {
        public string FormatName => "none (symbols only)";

        public IReadOnlyList<PhysicalRange> Ranges => [];

        public bool IsWritable => false;

        public bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
        {
            failure = NoMemory;
            return false;
        }

        public void Write(ulong address, ReadOnlySpan<byte> source) => throw new KvmWriteException(address, NoMemory);

        public void Dispose()
        {
        }
    }

    /// <summary>The layout of a symbols-only open: no slide, no page tables, nothing translates.</summary>
    private sealed class NoMemoryLayout(DataModel model) : IKernelImageLayout, IAddressSpace
    {
        public ulong KaslrOffset => 0;

        public string? KaslrSource => null;

        public long PhysBase => 0;

        public ulong? PageOffset => null;

        public int? PagingLevels => null;

        public bool Pae => false;

        public ulong? RootTable => null;

        public IAddressSpace AddressSpace => this;

        public SymbolRelocation SymbolRelocation => SymbolRelocation.None(model);

        public IAddressSpace? CreateProcessAddressSpace(ulong rootTablePhysical) => null;

        public void InvalidateTranslations()
        {
        }

        public bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous, [NotNullWhen(false)] out string? failure)
        {
            physicalAddress = contiguous = 0;
            failure = $"cannot translate 0x{virtualAddress:x}: {NoMemory}";
            return false;
        }
    }
}
