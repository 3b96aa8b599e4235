namespace KvmTyped;

/// <summary>What the library uses of the system it runs on beyond .NET itself. Reading a dump file needs nothing
/// more (files are mapped or read by position through .NET, on Linux, macOS and Windows alike); only the running
/// kernel is Linux's own: <c>/proc/kcore</c>, <c>/proc/kallsyms</c> and <c>/sys/kernel/security/lockdown</c>. Those
/// paths are touched only through <see cref="RequireLinuxFile"/> and <see cref="LinuxFiles"/>, so on another system a
/// dump opens as on Linux and asking for the running kernel says why it cannot be done.</summary>
internal static class HostPlatform
{
    private static readonly AsyncLocal<bool?> Override = new();

    /// <summary>Whether the Linux-only files may be read: on Linux, unless a test turned them off for its own flow of
    /// execution (<see cref="WithoutLinuxFiles"/>), to run the dump path as it runs elsewhere.</summary>
    public static bool LinuxFiles => Override.Value ?? OperatingSystem.IsLinux();

    /// <summary>Whether <paramref name="path"/> is one of Linux's kernel interfaces (under /proc or /sys).</summary>
    public static bool IsLinuxKernelFile(string path) =>
        path.StartsWith("/proc/", StringComparison.Ordinal) || path.StartsWith("/sys/", StringComparison.Ordinal);

    /// <summary>Refuses to read a Linux kernel interface where there is none.</summary>
    /// <param name="path">The file about to be read.</param>
    /// <param name="what">What it is for, e.g. "the running kernel's memory".</param>
    /// <exception cref="KvmOpenException">The file is one of Linux's, and this is not Linux.</exception>
    public static void RequireLinuxFile(string path, string what)
    {
        if (!LinuxFiles && IsLinuxKernelFile(path))
            throw new KvmOpenException($"{path}: {what} is read through Linux's {path}, and this system is not Linux: give a corefile (a dump) to read");
    }

    /// <summary>Turns the Linux-only files off for the calling flow of execution until disposed (tests).</summary>
    internal static IDisposable WithoutLinuxFiles()
    {
        var before = Override.Value;
        Override.Value = false;
        return new Restore(before);
    }

    private sealed class Restore(bool? before) : IDisposable
    {
        public void Dispose() => Override.Value = before;
    }
}
