using KvmTyped.Linux;

namespace KvmTyped.EndToEnd.Tests.Linux;

public class UtsnameAndLogTests
{
    [Theory]
    [MemberData(nameof(DumpCase.All), MemberType = typeof(DumpCase))]
    public void Uname_equals_the_guest_s_uname_a(DumpCase c)
    {
        var truth = LinuxTruth.Load(c.Folder);
        using var kvm = c.Open();
        var u = Utsname.Read(kvm);
        Assert.Equal(truth.UnameA, $"{u} GNU/Linux");
        Assert.Equal("Linux", u.Sysname);
        Assert.Equal("lab-guest", u.Nodename);
        Assert.Equal(kvm.Release, u.Release);
        Assert.Equal("(none)", u.Domainname);
    }

    [Fact]
    public void Uname_works_without_btf_from_vmcoreinfo()
    {
        var truth = LinuxTruth.Load("i386/pae-kdump-kaslr");
        using var kvm = Kvm.Open(TestSupport.Fixtures.Get(Dumps.I386Map), TestSupport.Fixtures.Get(Dumps.I386Kdump));
        Assert.Equal(truth.UnameA, $"{Utsname.Read(kvm)} GNU/Linux");
    }

    [Theory]
    [MemberData(nameof(DumpCase.All), MemberType = typeof(DumpCase))]
    public void Log_starts_with_the_banner_and_holds_the_command_line(DumpCase c)
    {
        var truth = LinuxTruth.Load(c.Folder);
        using var kvm = c.Open();
        var log = KernelLog.Read(kvm);
        Assert.True(log.Count > 200, $"only {log.Count} records");
        // The ring still holds the boot: its first record is printk's banner, at time 0, level 5 (KERN_NOTICE) — on
        // arm64 the second, after smp_setup_processor_id's "Booting Linux on physical CPU …" (level 6).
        var first = kvm.Machine == KernelMachine.Arm64 ? 1 : 0;
        if (first == 1)
            Assert.Equal((0UL, 0UL, 6, true), (log[0].Sequence, log[0].TimestampNs, log[0].Level, log[0].Text.StartsWith("Booting Linux on physical CPU 0x", StringComparison.Ordinal)));
        Assert.Equal(((ulong)first, 0UL, 5, truth.LinuxBanner), (log[first].Sequence, log[first].TimestampNs, log[first].Level, log[first].Text));
        Assert.Equal("[    0.000000] " + truth.LinuxBanner, log[first].Format());
        Assert.Contains(log, r => r.Text == "Kernel command line: " + truth.Cmdline);
        for (var i = 1; i < log.Count; i++)
        {
            Assert.Equal(log[i - 1].Sequence + 1, log[i].Sequence);
            Assert.InRange(log[i].Level, 0, 7);
        }
        // Records from different CPUs may be a little out of time order (as dmesg shows them); the whole is not.
        Assert.True(log[^1].TimestampNs > 1_000_000_000UL, $"the last record is at {log[^1].TimestampNs} ns");
        if (truth.Panic is { } panic)
        {
            // The dump was taken at the panic: its message is among the last records.
            Assert.Contains(log.TakeLast(200), r => r.Text == panic);
        }
    }
}
