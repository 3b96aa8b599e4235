using System.Text;
using System.Text.Json;
using KvmTyped.Compat;
using KvmTyped.EndToEnd.Tests.Linux;
using KvmTyped.TestSupport;
using static KvmTyped.Compat.Libkvm;

namespace KvmTyped.EndToEnd.Tests.Compat;

/// <summary>The facade's process functions change Libkvm.ErrorWriter: they run alone.</summary>
[CollectionDefinition("Libkvm process globals", DisableParallelization = true)]
public sealed class LibkvmProcessGlobalsCollection;

[Collection("Libkvm process globals")]
public sealed class LibkvmProcessTests : IDisposable
{
    private readonly TextWriter _savedWriter = ErrorWriter;
    private readonly StringWriter _err = new();

    public LibkvmProcessTests() => ErrorWriter = _err;

    public void Dispose() => ErrorWriter = _savedWriter;

    private static JsonElement TruthJson(string folder)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Root, folder, "truth.json")));
        return doc.RootElement.Clone();
    }

    private static KvmHandle OpenNoKaslr(int flag = O_RDONLY, string? core = null) =>
        kvm_open(Fixtures.Get(Dumps.Amd64Map), core ?? Fixtures.Get(Dumps.NoKaslrElf), null, flag, "libkvmtest")
        ?? throw new InvalidOperationException("kvm_open failed");

    /// <summary>kvm_open of a fixture; an i386 kernel through the facade of this 64-bit process, with the BTF file
    /// that kernel lacks.</summary>
    private static KvmHandle? Open(string core, string namelist, string? btf)
    {
        try
        {
            if (btf is not null)
            {
                Libkvm.DataModel = KvmTyped.DataModel.ILP32;
                Options = new KvmOpenOptions { BtfPath = Fixtures.Get(btf) };
            }
            return kvm_open(Fixtures.Get(namelist), Fixtures.Get(core), null, O_RDONLY, "libkvmtest");
        }
        finally
        {
            Libkvm.DataModel = null;
            Options = null;
        }
    }

    private static List<proc> All(KvmHandle kd)
    {
        var result = new List<proc>();
        while (kvm_nextproc(kd) is { } p)
        {
            result.Add(p);
            Assert.True(result.Count < 100_000);
        }
        return result;
    }

    /// <summary>task->comm for a /proc comm: at most 15 bytes, a kworker's workqueue suffix removed.</summary>
    private static string KernelComm(string procComm)
    {
        if (procComm.StartsWith("kworker/", StringComparison.Ordinal) && procComm.IndexOf('-', StringComparison.Ordinal) is var dash and > 0)
            procComm = procComm[..dash];
        return procComm.Length > 15 ? procComm[..15] : procComm;
    }

    [Theory]
    [InlineData("amd64/nokaslr", Dumps.NoKaslrElf, Dumps.Amd64Map, null)]
    [InlineData("amd64/kdump-kaslr", Dumps.Amd64Kdump, Dumps.Amd64Vmlinux, null)]
    [InlineData("i386/pae-kdump-kaslr", Dumps.I386Kdump, Dumps.I386Map, DumpCase.I386Btf)]
    [InlineData("arm64", Dumps.Arm64Kdump, Dumps.Arm64Map, null)]
    public void Nextproc_yields_the_processes_proc_listed_once_each(string folder, string core, string namelist, string? btf)
    {
        var truth = LinuxTruth.Load(folder);
        var kd = Open(core, namelist, btf);
        Assert.NotNull(kd);
        try
        {
            Assert.Equal(0, kvm_setproc(kd));
            var procs = All(kd);
            Assert.Null(kvm_nextproc(kd)); // stays at the end
            var byPid = procs.ToDictionary(p => p.p_pid); // each process once
            var expected = truth.Tasks.Where(t => t.Tid == t.Pid).ToList();
            Assert.True(expected.Count >= 20, $"only {expected.Count} truth processes");
            var kdump = folder != "amd64/nokaslr";
            var maxTruthPid = truth.Tasks.Max(t => t.Tid);
            foreach (var t in expected)
            {
                if (!byPid.TryGetValue(t.Pid, out var p))
                {
                    // Idle workers time out; in a kdump, init's transient children of ~20 s before the panic are gone.
                    if (!(kdump && t.Ppid == 1))
                        Assert.StartsWith("kworker/", t.Comm, StringComparison.Ordinal);
                    continue;
                }
                Assert.Equal((t.Pid, t.Ppid, KernelComm(t.Comm)), (p.p_pid, p.p_ppid, p.p_comm));
                // A kernel thread woken between the snapshot and a panic's dump is runnable there (arm64).
                if (t.State != "R" && !(truth.Panic is not null && t.Ppid == 2 && p.p_stat == 'R'))
                    Assert.True(t.State == p.p_stat.ToString(), $"pid {t.Pid}: /proc said {t.State}, kvm_nextproc says {p.p_stat}");
                Assert.Equal(p.Task.Address, p.p_addr);
                Assert.Equal(p.Task.Mm, p.p_mm);
            }
            foreach (var p in procs.Where(p => !expected.Any(t => t.Pid == p.p_pid)))
                Assert.True(p.p_pid > maxTruthPid || p.p_comm.StartsWith("kworker/", StringComparison.Ordinal), $"pid {p.p_pid} ({p.p_comm}) is not in /proc's list");
            // Threads are not processes, nor are the idle tasks.
            var threads = truth.Tasks.Where(t => t.Tid != t.Pid).ToList();
            Assert.NotEmpty(threads);
            Assert.All(threads, t => Assert.DoesNotContain(t.Tid, byPid.Keys));
            Assert.DoesNotContain(0, byPid.Keys);
            Assert.Equal(1, procs[0].p_pid);

            // kvm_setproc rewinds: the same list again.
            Assert.Equal(0, kvm_setproc(kd));
            Assert.Equal(procs.Select(p => p.p_pid), All(kd).Select(p => p.p_pid));
            Assert.Equal("", _err.ToString());
        }
        finally
        {
            Assert.Equal(0, kvm_close(kd));
        }
    }

    [Fact]
    public void Getproc_finds_a_process_by_pid_and_leaves_the_cursor()
    {
        var kd = OpenNoKaslr();
        try
        {
            var first = kvm_nextproc(kd);
            Assert.Equal(1, first!.p_pid);
            var marker = kvm_getproc(kd, 97);
            Assert.NotNull(marker);
            Assert.Equal(("labmarker", 97), (marker.p_comm, marker.p_pid));
            Assert.NotEqual(0UL, marker.p_mm);
            Assert.Null(kvm_getproc(kd, 101)); // labthr-A: a thread, not a process
            Assert.Null(kvm_getproc(kd, 0));
            Assert.Null(kvm_getproc(kd, 999_999));
            Assert.Equal(2, kvm_nextproc(kd)!.p_pid);
        }
        finally
        {
            kvm_close(kd);
        }
    }

    [Fact]
    public void Getcmd_gives_argv_and_environment_as_proc_recorded()
    {
        var truth = LinuxTruth.Load("amd64/nokaslr");
        var json = TruthJson("amd64/nokaslr");
        var kd = OpenNoKaslr();
        try
        {
            var compared = 0;
            foreach (var t in truth.Tasks.Where(t => t.Tid == t.Pid && t.Args.Length > 0))
            {
                var p = kvm_getproc(kd, t.Pid);
                Assert.NotNull(p);
                var u = kvm_getu(kd, p);
                Assert.NotNull(u);
                Assert.Equal(0, kvm_getcmd(kd, p, u, out var arg, out var env));
                Assert.Equal(t.Args, string.Join(' ', arg!));
                Assert.NotNull(env);
                var psargs = t.Args.Length > user.PSARGSZ - 1 ? t.Args[..(user.PSARGSZ - 1)] : t.Args;
                Assert.Equal((KernelComm(t.Comm), psargs), (u.u_comm, u.u_psargs));
                compared++;
            }
            Assert.True(compared >= 6, $"only {compared} processes compared");

            var environs = 0;
            foreach (var e in json.GetProperty("environ").EnumerateArray())
            {
                var pid = int.Parse(e[0].GetString()!, System.Globalization.CultureInfo.InvariantCulture);
                var p = kvm_getproc(kd, pid)!;
                Assert.Equal(e[1].GetString(), p.p_comm);
                Assert.Equal(0, kvm_getcmd(kd, p, null, out _, out var env));
                Assert.Equal(e[2].GetString()!.Split(' ', StringSplitOptions.RemoveEmptyEntries), env);
                environs++;
            }
            Assert.Equal(2, environs);
            Assert.Contains("LABENV_SECRET=lab-env-value-4242", Assert.IsType<string[]>(GetEnv(kd, 94)));

            // A kernel thread has no user memory: kvm_getu gives its name, kvm_getcmd fails and says why.
            var kthreadd = kvm_getproc(kd, 2)!;
            var ku = kvm_getu(kd, kthreadd);
            Assert.Equal(("kthreadd", ""), (ku!.u_comm, ku.u_psargs));
            Assert.Equal(-1, kvm_getcmd(kd, kthreadd, ku, out var none, out var noEnv));
            Assert.Null(none);
            Assert.Null(noEnv);
            Assert.Contains("libkvmtest: kvm_getcmd: pid 2 (kthreadd) has no mm", _err.ToString(), StringComparison.Ordinal);
            Assert.Equal(-1, kvm_uread(kd, 0x400000, new byte[8]));
            Assert.Contains("libkvmtest: kvm_uread: pid 2 (kthreadd) has no user address space", _err.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            kvm_close(kd);
        }
    }

    private static string[]? GetEnv(KvmHandle kd, int pid) =>
        kvm_getcmd(kd, kvm_getproc(kd, pid), null, out _, out var env) == 0 ? env : null;

    [Fact]
    public void Uread_reads_the_labmarker_pages_at_their_virtual_addresses()
    {
        var marker = TruthJson("amd64/nokaslr").GetProperty("labmarker");
        var kd = OpenNoKaslr();
        try
        {
            var p = kvm_getproc(kd, marker.GetProperty("page0").GetProperty("pid").GetInt32());
            Assert.Equal(-1, kvm_uread(kd, 0x13370000, new byte[4])); // no kvm_getu yet
            Assert.Contains("kvm_uread: no process", _err.ToString(), StringComparison.Ordinal);
            Assert.NotNull(kvm_getu(kd, p));
            foreach (var (page, pattern) in new[] { ("page0", "pattern_page0"), ("page1", "pattern_page1") })
            {
                var va = Convert.ToUInt64(marker.GetProperty(page).GetProperty("va").GetString(), 16);
                var expected = Encoding.ASCII.GetBytes(marker.GetProperty(pattern).GetString()!);
                var buf = new byte[expected.Length];
                Assert.Equal(buf.Length, kvm_uread(kd, va, buf));
                Assert.Equal(expected, buf);
                // The same bytes at the physical address /proc/PID/pagemap gave.
                var pa = Convert.ToUInt64(marker.GetProperty(page).GetProperty("pa").GetString(), 16);
                var phys = new byte[expected.Length];
                Assert.Equal(phys.Length, kvm_pread(kd, pa, phys));
                Assert.Equal(expected, phys);
            }
            // Across the two pages' boundary in one read.
            var across = new byte[8192];
            Assert.Equal(8192, kvm_uread(kd, 0x13370000, across));
            Assert.Equal("LABMARKER-P1-pid=97|", Encoding.ASCII.GetString(across, 4096, 20));
            var data = marker.GetProperty("datastr");
            var text = data.GetProperty("text").GetString()!;
            var dataBuf = new byte[text.Length];
            Assert.Equal(text.Length, kvm_uread(kd, Convert.ToUInt64(data.GetProperty("va").GetString(), 16), dataBuf));
            Assert.Equal(text, Encoding.ASCII.GetString(dataBuf));
            // An unmapped user address fails.
            Assert.Equal(-1, kvm_uread(kd, 0x1000, new byte[8]));
            // Read-only: kvm_uwrite refuses.
            Assert.Equal(-1, kvm_uwrite(kd, 0x13370000, "x"u8));
            Assert.Contains("open read-only", _err.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            kvm_close(kd);
        }
    }

    [Fact]
    public void Uwrite_to_a_copy_changes_exactly_the_bytes_written()
    {
        var marker = TruthJson("amd64/nokaslr").GetProperty("labmarker");
        var va = Convert.ToUInt64(marker.GetProperty("page0").GetProperty("va").GetString(), 16) + 0x40;
        var pa = Convert.ToUInt64(marker.GetProperty("page0").GetProperty("pa").GetString(), 16) + 0x40;
        var source = Fixtures.Get(Dumps.NoKaslrElf);
        var dir = Directory.CreateTempSubdirectory("kvmtyped-e2e-");
        try
        {
            var copy = Path.Combine(dir.FullName, "dump.elf");
            File.Copy(source, copy);
            byte[] patch = "written by kvm_uwrite"u8.ToArray();
            var kd = OpenNoKaslr(O_RDWR, copy);
            try
            {
                Assert.NotNull(kvm_getu(kd, kvm_getproc(kd, 97)));
                Assert.Equal(patch.Length, kvm_uwrite(kd, va, patch));
                var back = new byte[patch.Length];
                Assert.Equal(patch.Length, kvm_uread(kd, va, back));
                Assert.Equal(patch, back);
                Assert.Equal(-1, kvm_uwrite(kd, 0x1000, patch)); // unmapped: nothing written
            }
            finally
            {
                kvm_close(kd);
            }
            kd = OpenNoKaslr(O_RDONLY, copy);
            try
            {
                var back = new byte[patch.Length];
                Assert.Equal(patch.Length, kvm_pread(kd, pa, back));
                Assert.Equal(patch, back);
            }
            finally
            {
                kvm_close(kd);
            }

            var differing = FileDiff.DifferingOffsets(source, copy);
            Assert.InRange(differing.Count, 1, patch.Length);
            Assert.True(differing[^1] - differing[0] < patch.Length, "the changed bytes are not one run");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData(Dumps.Amd64Kdump, Dumps.Amd64Map, null)]
    [InlineData(Dumps.I386Kdump, Dumps.I386Map, DumpCase.I386Btf)]
    [InlineData(Dumps.Amd64KdumpElf, Dumps.Amd64Map, null)]
    public void Uread_fails_where_makedumpfile_excluded_user_pages(string core, string namelist, string? btf)
    {
        var kd = Open(core, namelist, btf);
        Assert.NotNull(kd);
        try
        {
            var page0 = TruthJson(Path.GetDirectoryName(core)!).GetProperty("labmarker").GetProperty("page0");
            var va = Convert.ToUInt64(page0.GetProperty("va").GetString(), 16);
            var marker = All(kd).Single(p => p.p_comm == "labmarker");
            Assert.Equal(page0.GetProperty("pid").GetInt32(), marker.p_pid);
            var u = kvm_getu(kd, marker);
            Assert.NotNull(u);
            _err.GetStringBuilder().Clear();
            if (core != Dumps.Amd64KdumpElf)
            {
                Assert.Equal("", u.u_psargs); // its arguments are not in the dump
                Assert.Equal(-1, kvm_getcmd(kd, marker, u, out var arg, out _));
                Assert.Null(arg);
                Assert.Contains("excluded", _err.ToString(), StringComparison.Ordinal);
                _err.GetStringBuilder().Clear();
                Assert.Equal(-1, kvm_uread(kd, va, new byte[20]));
                var line = Assert.Single(_err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
                Assert.StartsWith($"libkvmtest: kvm_uread: pid {marker.p_pid}: ", line, StringComparison.Ordinal);
                Assert.Contains("excluded", line, StringComparison.Ordinal);
            }
            else
            {
                // makedumpfile -E writes excluded pages as zeros: the read succeeds and the pattern is not there.
                // (The stack page with the arguments may have been kept: u_psargs is empty or /proc's.)
                Assert.Contains(u.u_psargs, new[] { "", "/bin/labmarker one two three" });
                var buf = new byte[20];
                var n = kvm_uread(kd, va, buf);
                Assert.True(n == -1 || buf.All(b => b == 0), $"read {n} bytes: {Encoding.ASCII.GetString(buf)}");
            }
        }
        finally
        {
            kvm_close(kd);
        }
    }

    [Fact]
    public void After_close_every_process_call_fails()
    {
        var kd = OpenNoKaslr();
        var p = kvm_getproc(kd, 97);
        var u = kvm_getu(kd, p);
        Assert.NotNull(kvm_nextproc(kd));
        Assert.Equal(0, kvm_close(kd));
        Assert.Equal(-1, kvm_close(kd));
        Assert.Equal(-1, kvm_setproc(kd));
        Assert.Null(kvm_nextproc(kd));
        Assert.Null(kvm_getproc(kd, 1));
        Assert.Null(kvm_getu(kd, p));
        Assert.Equal(-1, kvm_getcmd(kd, p, u, out var arg, out var env));
        Assert.Null(arg);
        Assert.Null(env);
        Assert.Equal(-1, kvm_uread(kd, 0x13370000, new byte[8]));
        Assert.Equal(-1, kvm_uwrite(kd, 0x13370000, new byte[8]));
    }
}
