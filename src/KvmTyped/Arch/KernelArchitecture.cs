using KvmTyped.Arch.Arm64;
using KvmTyped.Formats;
using KvmTyped.Symbols;

namespace KvmTyped.Arch;

/// <summary>Which architecture a kernel was built for, from every file's evidence, and the layout finder for it: the
/// one place the open asks "which Arch folder".</summary>
internal static class KernelArchitecture
{
    /// <summary>The kernel's machine. The core's own word (ELF e_machine, a kdump's utsname machine) comes first, then an
    /// ELF namelist's e_machine; when both are silent (QEMU writes "Unknown" or nothing into a kdump's utsname, a
    /// System.map has no header), VMCOREINFO entries or namelist symbols only arm64 has decide, else the data model
    /// gives the x86 flavour.</summary>
    /// <exception cref="KvmOpenException">The core and the namelist name different machines.</exception>
    public static KernelMachine Decide(KernelMachine core, ISymbolTable? namelist, VmcoreInfo? info, DataModel model, string corePath)
    {
        var named = namelist?.Machine ?? KernelMachine.Unknown;
        if (core != KernelMachine.Unknown && named != KernelMachine.Unknown && core != named)
            throw new KvmOpenException($"{corePath} holds a {core.UnameName()} kernel - cannot examine with a namelist built for {named.UnameName()} ({namelist!.Source})");
        if (core != KernelMachine.Unknown)
            return core;
        if (named != KernelMachine.Unknown)
            return named;
        if (model == DataModel.LP64 && (Arm64KernelLayout.IsArm64VmcoreInfo(info) || (namelist is not null && Arm64KernelLayout.IsArm64Namelist(namelist))))
            return KernelMachine.Arm64;
        return model == DataModel.LP64 ? KernelMachine.X86_64 : KernelMachine.X86;
    }

    /// <summary>Whether this machine's layout is found in its own Arch folder rather than the x86 one.</summary>
    public static bool HasOwnLayout(KernelMachine machine) => machine == KernelMachine.Arm64;

    /// <summary>The layout of a kernel of a machine with its own Arch folder (<see cref="HasOwnLayout"/>).</summary>
    /// <exception cref="KvmOpenException">The layout cannot be found, or the namelist does not belong to the dump.</exception>
    public static IKernelImageLayout Detect(KernelMachine machine, IPhysicalMemory memory, VmcoreInfo? info, ISymbolTable symbols, string corePath,
        string? namelistBanner) => machine switch
        {
            KernelMachine.Arm64 => Arm64KernelLayout.Detect(memory, info, symbols, corePath, namelistBanner),
            _ => throw new ArgumentOutOfRangeException(nameof(machine), machine, "a machine with its own layout"),
        };
}
