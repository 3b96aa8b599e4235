using KvmTyped.IO;
using KvmTyped.TestSupport;
using static KvmTyped.EndToEnd.Tests.Tool;

namespace KvmTyped.EndToEnd.Tests.Cli;

/// <summary>The dump path as it runs on macOS and Windows: with the Linux-only files (/proc, /sys) turned off for
/// this test's flow, the sample reads exactly as on Linux, no Linux kernel file is opened, and asking for the running
/// kernel says why it cannot be read.</summary>
public class OtherPlatformsTests
{
    private static readonly string Folder = Path.Combine(Fixtures.RepoRoot, "samples", "linux-amd64");
    private static readonly string[] Files = ["-n", Path.Combine(Folder, "System.map-6.1.0-56-amd64"), "-c", Path.Combine(Folder, "vmcore.kdump")];

    [Fact]
    public void The_sample_reads_the_same_without_the_linux_only_files()
    {
        string[][] commands = [["info"], ["ps"], ["log"], ["uname"], ["bt"], ["mod"], ["rd", "linux_banner", "-s"], ["struct", "list_head", "init_task"]];
        var onLinux = commands.Select(c => Run([.. c, .. Files])).ToList();
        var opened = new List<string>();
        var mine = new AsyncLocal<bool> { Value = true };
        void Record(string path)
        {
            if (mine.Value)
                lock (opened)
                    opened.Add(path);
        }
        RandomAccessFile.Opened += Record;
        try
        {
            using (HostPlatform.WithoutLinuxFiles())
            {
                Assert.False(HostPlatform.LinuxFiles);
                for (var i = 0; i < commands.Length; i++)
                {
                    var elsewhere = Run([.. commands[i], .. Files]);
                    Assert.True(onLinux[i].Code == 0, onLinux[i].Err);
                    Assert.Equal(onLinux[i], elsewhere);
                }
            }
        }
        finally
        {
            RandomAccessFile.Opened -= Record;
        }
        Assert.NotEmpty(opened);
        Assert.DoesNotContain(opened, HostPlatform.IsLinuxKernelFile);
    }

    [Fact]
    public void The_running_kernel_is_refused_saying_why()
    {
        using (HostPlatform.WithoutLinuxFiles())
        {
            var e = Assert.Throws<KvmOpenException>(() => Kvm.Open(null, null));
            Assert.Equal("/proc/kcore: the running kernel's memory is read through Linux's /proc/kcore, and this system is not Linux: give a corefile (a dump) to read", e.Message);
            var (code, _, err) = Run("nlist", "init_task");
            Assert.Equal(1, code);
            Assert.StartsWith("kvmtyped: /proc/kallsyms: the running kernel's symbol table is read through Linux's /proc/kallsyms, and this system is not Linux", err);
        }
        Assert.True(HostPlatform.LinuxFiles);
    }
}
