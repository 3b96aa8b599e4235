namespace KvmTyped;

/// <summary>Less common settings of an open.</summary>
public sealed record KvmOpenOptions
{
    /// <summary>The data models the application supports (null: all). An image outside them is refused as
    /// kvm_open refuses a core of the other word size: "… is a 32-bit core file - cannot examine with 64-bit libkvm".
    /// When null, a <see cref="KvmDataModelsAttribute"/> on the entry assembly applies.</summary>
    public IReadOnlyCollection<DataModel>? SupportedModels { get; init; }

    /// <summary>Where the running kernel's memory is read when corefile is null.</summary>
    public string LiveCorePath { get; init; } = "/proc/kcore";

    /// <summary>Where the running kernel's symbols are read when namelist is null.</summary>
    public string LiveSymbolsPath { get; init; } = "/proc/kallsyms";

    /// <summary>The data model of this process, which must equal the running kernel's to examine it
    /// (kvm_open(3KVM), Notes). Defaults to the process's pointer size.</summary>
    public DataModel ProcessModel { get; init; } = IntPtr.Size == 8 ? DataModel.LP64 : DataModel.ILP32;

    /// <summary>Where errors go when an errstr is given (default: standard error).</summary>
    public TextWriter? ErrorWriter { get; init; }

    /// <summary>The other files of a split kdump set (makedumpfile --split), opened together with the corefile.</summary>
    public IReadOnlyList<string>? SplitFiles { get; init; }

    /// <summary>Read the corefile as a raw physical memory image: byte N of the file is physical address N (a
    /// <c>/dev/mem</c> copy, LiME's <c>format=padded</c>, a VM's memory file). A raw image says nothing about itself, so
    /// any file would pass for one: without this option a corefile that is not an ELF core, a kdump-compressed file or a
    /// LiME/AVML image is refused as not a known dump format.</summary>
    public bool RawImage { get; init; }

    /// <summary>Read pages a dump leaves out (excluded by makedumpfile) as zeros instead of failing.</summary>
    public bool ZeroFillExcludedPages { get; init; }

    /// <summary>Open the namelist alone, for what reads no memory (symbol lookups, nlist): the corefile and swapfile are
    /// not opened, so this works where /proc/kcore is locked down or unreadable. Every memory read then fails saying so.
    /// Addresses are the namelist's own: running addresses from kallsyms, link addresses from a System.map or vmlinux
    /// (nothing gives the KASLR slide without a core).</summary>
    public bool SymbolsOnly { get; init; }

    /// <summary>A file describing the kernel's types, for kernels whose namelist and memory carry none: raw BTF (such as
    /// <c>pahole --btf_encode_detached</c> output or /sys/kernel/btf/vmlinux), an ELF file with a .BTF section, or an
    /// ELF file with DWARF (a <c>-dbg</c> package's vmlinux; DWARF 2 to 5, compressed sections too), converted on first
    /// use and cached per build ID (docs/cache.md).</summary>
    public string? TypesPath { get; init; }

    /// <summary>The name <see cref="TypesPath"/> had when it took BTF only; the same option.</summary>
    public string? BtfPath
    {
        get => TypesPath;
        init => TypesPath = value;
    }
}

/// <summary>Declares, on an application's assembly, the kernel data models it was written for.</summary>
/// <param name="models">The supported models.</param>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class KvmDataModelsAttribute(params DataModel[] models) : Attribute
{
    /// <summary>The supported models.</summary>
    public IReadOnlyList<DataModel> Models { get; } = models;
}
