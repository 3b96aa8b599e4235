using KvmTyped.Linux;
using KvmTyped.TestSupport;

namespace KvmTyped.EndToEnd.Tests.Linux;

public class KernelTasksTests
{
    /// <summary>The comm task->comm holds for a /proc comm: at most 15 bytes, and a kworker's "-workqueue" suffix
    /// (which /proc adds from the worker's current work) removed.</summary>
    private static string KernelComm(string procComm)
    {
        if (procComm.StartsWith("kworker/", StringComparison.Ordinal) && procComm.IndexOf('-', StringComparison.Ordinal) is var dash and > 0)
            procComm = procComm[..dash];
        return procComm.Length > 15 ? procComm[..15] : procComm;
    }

    [Theory]
    [MemberData(nameof(DumpCase.All), MemberType = typeof(DumpCase))]
    public void Ps_lists_the_tasks_proc_listed(DumpCase c)
    {
        var truth = LinuxTruth.Load(c.Folder);
        using var kvm = c.Open();
        Assert.StartsWith(c.ExpectedBtfSource, kvm.Btf.Source, StringComparison.Ordinal);
        var tasks = new KernelTasks(kvm).List();

        var byTid = tasks.Where(t => t.Pid > 0).ToDictionary(t => t.Pid);
        Assert.Equal(tasks.Count(t => t.Pid > 0), byTid.Count); // no task listed twice
        var expected = truth.Tasks;
        var maxTruthTid = expected.Max(t => t.Tid);
        foreach (var p in expected)
        {
            // Allowed: a kworker may have exited between the snapshot and the dump (idle workers time out).
            if (!byTid.TryGetValue(p.Tid, out var k))
            {
                Assert.StartsWith("kworker/", p.Comm, StringComparison.Ordinal);
                continue;
            }
            Assert.Equal((p.Tid, p.Pid, p.Ppid, KernelComm(p.Comm)), (k.Pid, k.Tgid, k.Ppid, k.Comm));
            // Allowed: a task /proc saw running (R) — init running the script that took the snapshot, a kthread
            // caught mid-work — has since gone on; and in a dump taken at a panic, a kernel thread woken in the
            // seconds after the snapshot (arm64: migration/1, kcompactd0, a kworker) is runnable. Every other state
            // must be the same.
            if (p.State != "R" && !(truth.Panic is not null && p.Ppid == 2 && k.State == 'R'))
                Assert.True(p.State == k.State.ToString(), $"tid {p.Tid} ({p.Comm}): /proc said {p.State}, the dump says {k.State}");
        }
        // Allowed extra tasks: ones created after the snapshot (a higher pid) and kworkers.
        foreach (var k in byTid.Values.Where(k => !expected.Any(p => p.Tid == k.Pid)))
            Assert.True(k.Pid > maxTruthTid || k.Comm.StartsWith("kworker/", StringComparison.Ordinal), $"pid {k.Pid} ({k.Comm}) is not in /proc's list");
        // Every CPU's idle task, pid 0; init_task is swapper/0.
        var idle = tasks.Where(t => t.Pid == 0).ToList();
        Assert.All(idle, t => Assert.True(t.IsIdle));
        Assert.Equal(kvm.SymbolAddress("init_task"), idle[0].Address);
        Assert.Equal("swapper/0", idle[0].Comm);
        Assert.Equal(kvm.CpuCount, idle.Count);
        Assert.Equal(Enumerable.Range(0, idle.Count).Select(i => $"swapper/{i}"), idle.Select(t => t.Comm).Order(StringComparer.Ordinal));
        Assert.All(tasks, t => Assert.InRange(t.Cpu, 0, kvm.CpuCount - 1));
        // User processes have an mm, kernel threads (children of kthreadd) none.
        Assert.All(tasks.Where(t => t.Ppid == 2), t => Assert.Equal(0UL, t.Mm));
        Assert.All(tasks.Where(t => t.Pid == 1 || t.Comm == "labsleeper"), t => Assert.NotEqual(0UL, t.Mm));
    }

    [Theory]
    [MemberData(nameof(DumpCase.All), MemberType = typeof(DumpCase))]
    public void The_lab_zombie_is_Z_under_its_parent_and_threads_share_their_leader_s_tgid(DumpCase c)
    {
        var truth = LinuxTruth.Load(c.Folder);
        using var kvm = c.Open();
        var tasks = KernelTasks.For(kvm).List();
        var (parent, zombie) = truth.Zombie;
        var z = Assert.Single(tasks, t => t.Pid == zombie);
        Assert.Equal('Z', z.State);
        Assert.Equal(parent, z.Ppid);
        Assert.Equal(0x20UL, z.ExitState); // EXIT_ZOMBIE
        Assert.Equal(0x80UL, z.RawState); // TASK_DEAD: the state the letter comes from with exit_state
        Assert.Equal('Z', KernelTasks.StateLetter(z.RawState, z.ExitState));
        Assert.Equal(0UL, z.Mm);
        var threads = tasks.Where(t => t.Comm.StartsWith("labthr-", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, threads.Count);
        var leader = Assert.Single(tasks, t => t.Comm == "labmarker");
        Assert.All(threads, t => Assert.Equal((leader.Pid, leader.Mm), (t.Tgid, t.Mm)));
        Assert.All(threads, t => Assert.NotEqual(leader.Pid, t.Pid));
    }

    [Theory]
    [MemberData(nameof(DumpCase.All), MemberType = typeof(DumpCase))]
    public void Each_cpu_s_running_task_is_listed_on_that_cpu(DumpCase c)
    {
        var truth = LinuxTruth.Load(c.Folder);
        using var kvm = c.Open();
        var kt = KernelTasks.For(kvm);
        var tasks = kt.List().ToDictionary(t => t.Address);
        var running = kt.RunningTasks();
        Assert.Equal(Enumerable.Range(0, kvm.CpuCount), running.Keys.Order());
        foreach (var (cpu, address) in running)
            Assert.Equal((cpu, 'R'), (tasks[address].Cpu, tasks[address].State));
        var busy = running.Values.Select(a => tasks[a]).Where(t => !t.IsIdle).ToList();
        if (truth.Panic is null)
            Assert.Empty(busy); // QEMU stopped an idle guest
        else
            Assert.NotEqual(0UL, Assert.Single(busy).Mm); // the process that wrote to /proc/sysrq-trigger
    }

    [Fact]
    public void Args_of_every_user_process_equal_proc_s_on_the_dump_with_user_pages()
    {
        var truth = LinuxTruth.Load("amd64/nokaslr");
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(Dumps.NoKaslrElf));
        var kt = KernelTasks.For(kvm);
        var tasks = kt.List().Where(t => !t.IsIdle).ToDictionary(t => t.Pid);
        var compared = 0;
        foreach (var p in truth.Tasks.Where(p => p.Args.Length > 0))
        {
            var task = tasks[p.Tid];
            Assert.Equal(p.Args, string.Join(' ', kt.GetArgs(task)));
            compared++;
        }
        Assert.True(compared >= 8, $"only {compared} processes compared");
        Assert.Equal(new[] { "/bin/labmarker", "one", "two", "three" }, kt.GetArgs(tasks[97]));
        var kthread = tasks[2];
        Assert.Contains("no mm", Assert.Throws<KvmException>(() => kt.GetArgs(kthread)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Dumps.Amd64Kdump, Dumps.Amd64Map, null)]
    [InlineData(Dumps.I386Kdump, Dumps.I386Map, DumpCase.I386Btf)]
    public void Args_fail_cleanly_where_makedumpfile_excluded_user_pages(string core, string namelist, string? btf)
    {
        using var kvm = Kvm.Open(Fixtures.Get(namelist), Fixtures.Get(core), options: new KvmOpenOptions { BtfPath = btf is null ? null : Fixtures.Get(btf) });
        var kt = KernelTasks.For(kvm);
        var marker = Assert.Single(kt.List(), t => t.Comm == "labmarker");
        var e = Assert.ThrowsAny<KvmReadException>(() => kt.GetArgs(marker));
        Assert.Contains($"pid {marker.Pid} arguments", e.Message, StringComparison.Ordinal);
        Assert.Contains("page excluded from dump", e.Message, StringComparison.Ordinal);
    }

    /// <summary>makedumpfile -E -d 31 leaves excluded pages out of its ELF file as zeros: such an argument area is
    /// refused, and the ones that were kept read as /proc read them.</summary>
    [Theory]
    [InlineData(Dumps.Amd64KdumpElf, Dumps.Amd64Map, null, "amd64/kdump-kaslr")]
    [InlineData(Dumps.I386KdumpElf, Dumps.I386Map, DumpCase.I386Btf, "i386/pae-kdump-kaslr")]
    public void Args_in_an_elf_d31_dump_are_truth_or_a_clean_failure(string core, string namelist, string? btf, string folder)
    {
        var truth = LinuxTruth.Load(folder);
        using var kvm = Kvm.Open(Fixtures.Get(namelist), Fixtures.Get(core), options: new KvmOpenOptions { BtfPath = btf is null ? null : Fixtures.Get(btf) });
        var kt = KernelTasks.For(kvm);
        var tasks = kt.List().Where(t => !t.IsIdle).ToDictionary(t => t.Pid);
        int read = 0, refused = 0;
        foreach (var p in truth.Tasks.Where(p => p.Args.Length > 0 && p.Tid != 1))
        {
            try
            {
                Assert.Equal(p.Args, string.Join(' ', kt.GetArgs(tasks[p.Tid])));
                read++;
            }
            catch (KvmReadException e)
            {
                Assert.Matches("excluded", e.Message);
                refused++;
            }
        }
        Assert.True(read + refused >= 7, $"{read} read, {refused} refused");
    }

    [Theory]
    [InlineData(Dumps.I386KdumpElf)]
    [InlineData(Dumps.I386Kdump)]
    public void The_i386_kernel_without_btf_asks_for_a_btf_file(string core)
    {
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.I386Map), Fixtures.Get(core));
        var e = Assert.Throws<KvmException>(() => KernelTasks.For(kvm));
        Assert.Contains("--btf", e.Message, StringComparison.Ordinal);
        Assert.Contains("System.map", e.Message, StringComparison.Ordinal);
        Assert.Contains("__start_BTF", e.Message, StringComparison.Ordinal);
        using var withVmlinux = Kvm.Open(Fixtures.Get(Dumps.I386Vmlinux), Fixtures.Get(core));
        e = Assert.Throws<KvmException>(() => KernelTasks.For(withVmlinux));
        Assert.Contains(".BTF", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Btf_of_another_kernel_is_refused()
    {
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(Dumps.Amd64Kdump), options: new KvmOpenOptions { BtfPath = Fixtures.Get(DumpCase.I386Btf) });
        var e = Assert.Throws<KvmException>(() => KernelTasks.For(kvm).List());
        Assert.StartsWith($"file {Fixtures.Get(DumpCase.I386Btf)}: the BTF does not fit this kernel", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Kernel_btf_is_kept_per_image()
    {
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(Dumps.NoKaslrElf));
        Assert.False(kvm.HasLookedForBtf);
        var a = kvm.Btf;
        Assert.True(kvm.HasLookedForBtf);
        Assert.Same(a, KernelBtf.For(kvm));
        Assert.True(kvm.TryGetBtf(out var b, out _));
        Assert.Same(a, b);
        Assert.Equal(8, a.PointerSize);
    }

    [Fact]
    public void Explicit_btf_file_wins_and_a_missing_one_is_an_error()
    {
        var e = Assert.Throws<KvmOpenException>(() => Kvm.Open(Fixtures.Get(Dumps.Amd64Vmlinux), Fixtures.Get(Dumps.NoKaslrElf),
            options: new KvmOpenOptions { BtfPath = "/nonexistent/vmlinux.btf" }));
        Assert.Contains("/nonexistent/vmlinux.btf", e.Message, StringComparison.Ordinal);
        var vmlinux = Fixtures.Get(Dumps.Amd64Vmlinux);
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(Dumps.NoKaslrElf), options: new KvmOpenOptions { BtfPath = vmlinux });
        Assert.Equal($"file {vmlinux}", KernelBtf.For(kvm).Source);
    }
}
