namespace KvmTyped;

/// <summary>The instruction-set architecture a kernel image was built for.</summary>
public enum KernelMachine
{
    /// <summary>Not known (e.g. a raw image with no other evidence yet).</summary>
    Unknown = 0,

    /// <summary>32-bit x86 (ELF EM_386).</summary>
    X86 = 3,

    /// <summary>x86-64 (ELF EM_X86_64).</summary>
    X86_64 = 62,

    /// <summary>64-bit Arm (ELF EM_AARCH64).</summary>
    Arm64 = 183,
}

/// <summary>Helpers on <see cref="KernelMachine"/>.</summary>
public static class KernelMachineExtensions
{
    /// <summary>The data model the Linux kernel uses on this machine.</summary>
    public static DataModel? DataModel(this KernelMachine machine) => machine switch
    {
        KernelMachine.X86 => KvmTyped.DataModel.ILP32,
        KernelMachine.X86_64 or KernelMachine.Arm64 => KvmTyped.DataModel.LP64,
        _ => null,
    };

    /// <summary>The name uname(2) reports for this machine ("i686", "x86_64", "aarch64").</summary>
    public static string UnameName(this KernelMachine machine) => machine switch
    {
        KernelMachine.X86 => "i686",
        KernelMachine.X86_64 => "x86_64",
        KernelMachine.Arm64 => "aarch64",
        _ => "unknown",
    };
}
