using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using KvmTyped.Arch.X86;
using KvmTyped.Formats;
using KvmTyped.IO;
using KvmTyped.Symbols;
using KvmTyped.Translation;

namespace KvmTyped.Open;

/// <summary>What opening the running kernel needs beyond a dump's open: /proc/kcore opened with its failures said in
/// the user's terms, /proc/kallsyms checked for hidden addresses, and kallsyms' running addresses presented at link
/// addresses for the layout.</summary>
internal static class LiveKernel
{
    /// <summary>Where Linux says whether it is locked down ("none [integrity] confidentiality").</summary>
    internal const string LockdownPath = "/sys/kernel/security/lockdown";

    /// <summary>Opens the live kernel's core for reading: the O_RDWR refusal, a missing file and a refused open are
    /// each said in the user's terms.</summary>
    /// <param name="path">The live core, /proc/kcore unless the options name another.</param>
    /// <param name="writable">O_RDWR was asked for.</param>
    /// <param name="isPrivileged">Whether this process runs as root (injectable for tests).</param>
    /// <exception cref="KvmOpenException">The core cannot be opened; nothing is left open.</exception>
    public static RandomAccessFile OpenCore(string path, bool writable, bool? isPrivileged = null)
    {
        if (writable)
            throw new KvmOpenException($"{path}: the live kernel is opened read-only; O_RDWR is refused (kvmtyped never writes to a running kernel)");
        HostPlatform.RequireLinuxFile(path, "the running kernel's memory");
        if (!File.Exists(path) && !Directory.Exists(path))
        {
            throw new KvmOpenException($"{path}: No such file or directory - the live kernel cannot be examined without it " +
                "(kernel lockdown / CONFIG_PROC_KCORE: this kernel has no /proc/kcore, or /proc is not mounted)");
        }
        try
        {
            return RandomAccessFile.Open(path, writable: false);
        }
        catch (KvmOpenException e) when (e.InnerException is UnauthorizedAccessException && !Directory.Exists(path))
        {
            // .NET reports a folder as access denied too; the file layer's message ("Is a directory") says it right.
            throw new KvmOpenException(RefusedMessage(path, isPrivileged ?? Environment.IsPrivilegedProcess, ReadLockdown()), e);
        }
    }

    /// <summary>Why an open of the live core was refused: to root, only lockdown refuses /proc/kcore; to anyone else,
    /// its mode (0400, root's) does.</summary>
    internal static string RefusedMessage(string path, bool privileged, string? lockdown)
    {
        if (!privileged)
            return $"{path}: Permission denied - reading the live kernel's memory needs root (CAP_SYS_RAWIO); run as root";
        var mode = lockdown is null ? "" : $" ({LockdownPath}: {lockdown.Trim()})";
        return $"{path}: Operation not permitted - the kernel refuses to show its memory even to root (kernel lockdown / CONFIG_PROC_KCORE){mode}";
    }

    private static string? ReadLockdown()
    {
        try
        {
            return HostPlatform.LinuxFiles && File.Exists(LockdownPath) ? File.ReadAllText(LockdownPath) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The running kernel's symbols. Where the live core's VMCOREINFO locates the kernel's own kallsyms tables
    /// (Linux 6.0 on) and places the kernel image (KERNELOFFSET, phys_base), the image's symbols are read from memory
    /// and /proc/kallsyms only for what may concern modules (<see cref="LiveKallsymsTable"/>); otherwise, or when the
    /// tables do not read back whole, /proc/kallsyms is read (in large reads) and checked for hidden addresses.</summary>
    /// <param name="path">/proc/kallsyms, or the file the options name instead.</param>
    /// <param name="memory">The live core's physical memory.</param>
    /// <param name="vmcoreInfo">The live core's VMCOREINFO.</param>
    /// <param name="model">The kernel's data model as the core gives it.</param>
    /// <param name="corePath">The live core, for messages.</param>
    /// <param name="warnings">Where a fallback to the file is noted.</param>
    public static ISymbolTable OpenSymbols(string path, IPhysicalMemory memory, VmcoreInfo? vmcoreInfo, DataModel? model, string corePath, List<string> warnings)
    {
        if (model == DataModel.LP64 && vmcoreInfo?.KernelOffset is not null && vmcoreInfo.Number("phys_base") is long physBase
            && (physBase & 0xfff) == 0 && KallsymsTables.TryFromVmcoreInfo(vmcoreInfo, out var tables, out _))
        {
            // The tables are in the image's read-only data: reached through the kernel text mapping, which needs no
            // page table.
            var text = new LinearAddressSpace(KernelLayout.StartKernelMap, KernelLayout.KernelImageWindow, unchecked((ulong)physBase));
            ReadVirtualMemory read = (ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure) => text.TryReadVirtual(memory, address, destination, out failure);
            try
            {
                var kernel = KernelKallsyms.Load(read, tables, DataModel.LP64, corePath);
                return new LiveKallsymsTable(path, kernel, DataModel.LP64, () => ModulesLoaded(kernel, read));
            }
            catch (KvmException e)
            {
                warnings.Add($"{corePath}: the kernel's symbol table does not read back ({e.Message}); {path} is read instead");
            }
        }
        var table = TextSymbolTable.OpenKallsyms(path);
        try
        {
            CheckAddressesShown(table);
            return table;
        }
        catch
        {
            table.Dispose();
            throw;
        }
    }

    /// <summary>Whether the kernel's module list (the list_head <c>modules</c>) is not empty; true when it cannot be
    /// read, so a module's symbol is then looked for in /proc/kallsyms.</summary>
    private static bool ModulesLoaded(KernelKallsyms kernel, ReadVirtualMemory read)
    {
        if (!kernel.TryLookup("modules", out var modules))
            return true;
        Span<byte> next = stackalloc byte[8];
        return !read(modules.Address, next, out _) || BinaryPrimitives.ReadUInt64LittleEndian(next) != modules.Address;
    }

    /// <summary>Refuses a kallsyms whose addresses the kernel hides: with kptr_restrict, a process without
    /// CAP_SYSLOG reads every address as 0.</summary>
    /// <exception cref="KvmOpenException">The kernel's text symbols read as address 0.</exception>
    public static void CheckAddressesShown(ISymbolTable kallsyms)
    {
        foreach (var name in (ReadOnlySpan<string>)["_stext", "_text", "linux_banner", "init_task"])
        {
            if (!kallsyms.TryLookup(name, out var s))
                continue;
            if (s.Address != 0)
                return;
            throw new KvmOpenException($"{kallsyms.Source}: {name} is at address 0 - the kernel hides its symbol addresses from this process " +
                "(kptr_restrict: run as root, or set /proc/sys/kernel/kptr_restrict to 0)");
        }
    }

    /// <summary>kallsyms at link addresses, so the layout's slide (from the live core's VMCOREINFO KERNELOFFSET) gives
    /// back the addresses kallsyms shows. Without a KERNELOFFSET the layout finds the slide itself and it is 0 for
    /// running addresses, so the table is returned as it is.</summary>
    public static ISymbolTable AtLinkAddresses(ISymbolTable kallsyms, VmcoreInfo? vmcoreInfo, DataModel model, ulong imageBase)
    {
        if (vmcoreInfo?.KernelOffset is not ulong slide || slide == 0)
            return kallsyms;
        return new RunningAddressSymbolTable(kallsyms, new SymbolRelocation(slide, imageBase, model));
    }
}
