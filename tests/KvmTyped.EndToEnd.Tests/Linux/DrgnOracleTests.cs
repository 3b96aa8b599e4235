using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using KvmTyped.Linux;
using KvmTyped.TestSupport;
using Xunit.Abstractions;

namespace KvmTyped.EndToEnd.Tests.Linux;

/// <summary>A theory that needs drgn (Debian's python3-drgn) and the DWARF vmlinux of linux-image-6.1.0-56-amd64-dbg
/// (tests/Shared/fetch-dbg.sh amd64); skipped, naming what is missing, without them.</summary>
public sealed class DrgnTheoryAttribute : TheoryAttribute
{
    public DrgnTheoryAttribute()
    {
        if (DrgnOracle.SkipReason() is { } why)
            Skip = why;
    }
}

/// <summary>drgn run on a dump with the DWARF vmlinux: each CPU's stack as drgn unwinds it (DWARF CFI, ORC where
/// it prefers), one frame per distinct (pc, sp).</summary>
internal static class DrgnOracle
{
    public const string Python = "/usr/bin/python3";

    public static string Vmlinux
    {
        get
        {
            var dir = Environment.GetEnvironmentVariable("KVMTYPED_DBG_CACHE") is { Length: > 0 } d ? d
                : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x : Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/", ".cache"), "kvmtyped-dbg");
            return Path.Combine(dir, "vmlinux-6.1.0-56-amd64");
        }
    }

    public static string? SkipReason()
    {
        if (!File.Exists(Vmlinux))
            return $"{Vmlinux} is missing: fetch the -dbg package's vmlinux with tests/Shared/fetch-dbg.sh amd64 (about 800 MB download)";
        if (!File.Exists(Python))
            return $"{Python} is missing: drgn needs Debian's python3 and python3-drgn";
        var (code, _, err) = Run(Python, ["-c", "import drgn"]);
        return code == 0 ? null : $"{Python} cannot import drgn (apt-get install python3-drgn): {err.Trim()}";
    }

    private const string Script = """
        import json, sys
        from drgn import Program
        from drgn.helpers.linux.percpu import per_cpu
        prog = Program()
        prog.set_core_dump(sys.argv[1])
        prog.load_debug_info([sys.argv[2]])
        out = {"crashed": prog.crashed_thread().tid, "cpus": []}
        for cpu in range(int(sys.argv[3])):
            task = per_cpu(prog["runqueues"], cpu).curr
            frames, last = [], None
            for f in prog.stack_trace(task):
                if (f.pc, f.sp) == last:
                    continue  # an inlined function's frame shares its caller's pc and sp
                last = (f.pc, f.sp)
                frames.append({"pc": f.pc, "sp": f.sp, "interrupted": f.interrupted})
            out["cpus"].append({"cpu": cpu, "pid": task.pid.value_(), "frames": frames})
        print(json.dumps(out))
        """;

    private const string AllTasksScript = """
        import json, sys
        from drgn import Program
        from drgn.helpers.linux.pid import for_each_task
        prog = Program()
        prog.set_core_dump(sys.argv[1])
        prog.load_debug_info([sys.argv[2]])
        out = []
        for task in for_each_task(prog):
            frames, last, error = [], None, None
            try:
                for f in prog.stack_trace(task):
                    if (f.pc, f.sp) == last:
                        continue
                    last = (f.pc, f.sp)
                    frames.append({"pc": f.pc, "sp": f.sp})
            except Exception as e:
                error = str(e)
            out.append({"pid": task.pid.value_(), "task": task.value_(), "frames": frames, "error": error})
        print(json.dumps(out))
        """;

    /// <summary>drgn's stack of every task of <paramref name="dump"/> (for_each_task: the processes and their
    /// threads, init_task included).</summary>
    public static JsonDocument AllTasks(string dump) => RunScript(AllTasksScript, dump);

    private static JsonDocument RunScript(string text, params string[] args)
    {
        var script = Path.Combine(Path.GetTempPath(), $"kvmtyped-drgn-{Environment.ProcessId}-{Guid.NewGuid():N}.py");
        File.WriteAllText(script, text);
        try
        {
            var (code, o, e) = Run(Python, [script, args[0], Vmlinux, .. args.Skip(1)]);
            Assert.True(code == 0, $"drgn failed on {args[0]}: {e}");
            return JsonDocument.Parse(o);
        }
        finally
        {
            File.Delete(script);
        }
    }

    public static (int Code, string Out, string Err) Run(string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>drgn's view of <paramref name="dump"/>: its crashed thread and each CPU's (pid, frames).</summary>
    public static JsonDocument Traces(string dump, int cpus) => RunScript(Script, dump, cpus.ToString(CultureInfo.InvariantCulture));
}

/// <summary>drgn, with the 600 MB DWARF vmlinux, as a second oracle for every CPU's stack (bt -a) on the dumps it can
/// read: the amd64 kdump, as ELF and as kdump-compressed. (drgn 0.0.22 cannot read the other two panicked dumps: it
/// finds no crashed thread in the i386 one, and libkdumpfile cannot tell the architecture of QEMU's kdump file, whose
/// header leaves utsname empty.)</summary>
[Trait("Category", "DebugPackage")]
public class DrgnOracleTests(ITestOutputHelper output)
{
    [DrgnTheory]
    [InlineData(Dumps.Amd64KdumpElf)]
    [InlineData(Dumps.Amd64Kdump)]
    public void Every_cpu_s_frames_are_drgn_s(string dump)
    {
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(dump));
        var stacks = KernelStacks.For(kvm);
        using var drgn = DrgnOracle.Traces(Fixtures.Get(dump), stacks.Cpus.Count);
        Assert.Equal(stacks.CrashedThread!.Pid, drgn.RootElement.GetProperty("crashed").GetInt32());
        var frames = 0;
        foreach (var cpu in drgn.RootElement.GetProperty("cpus").EnumerateArray())
        {
            var trace = stacks.StackTraceOfCpu(cpu.GetProperty("cpu").GetInt32());
            Assert.Equal(cpu.GetProperty("pid").GetInt32(), trace.Task!.Pid);
            var theirs = cpu.GetProperty("frames").EnumerateArray().Select(f => (Pc: f.GetProperty("pc").GetUInt64(), Sp: f.GetProperty("sp").GetUInt64())).ToList();
            // drgn ends a trace that reached user mode with the user frame; ours ends with the user registers.
            if (trace.UserRegisters is { } user)
            {
                Assert.Equal((user["ip"], user["sp"]), (theirs[^1].Pc, theirs[^1].Sp));
                theirs.RemoveAt(theirs.Count - 1);
            }
            var ours = trace.Frames.Where(f => f.IsReliable).Select(f => (Pc: f.Address, Sp: f.StackPointer)).ToList();
            Assert.Equal(theirs, ours);
            frames += ours.Count;
            output.WriteLine($"CPU {cpu.GetProperty("cpu").GetInt32()} (pid {trace.Task.Pid}): {ours.Count} frames, pc and sp as drgn's");
        }
        Assert.True(frames >= 15, $"only {frames} frames compared");
    }

    [DrgnTheory]
    [InlineData(Dumps.Amd64KdumpElf)]
    [InlineData(Dumps.Amd64Kdump)]
    public void Every_task_s_frames_are_drgn_s(string dump)
    {
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(dump));
        var stacks = KernelStacks.For(kvm);
        var tasks = stacks.Tasks.List().ToDictionary(t => t.Address);
        using var drgn = DrgnOracle.AllTasks(Fixtures.Get(dump));
        int compared = 0, frames = 0;
        foreach (var t in drgn.RootElement.EnumerateArray())
        {
            var task = tasks[t.GetProperty("task").GetUInt64()];
            var trace = stacks.StackTrace(task);
            var theirs = t.GetProperty("frames").EnumerateArray().Select(f => (Pc: f.GetProperty("pc").GetUInt64(), Sp: f.GetProperty("sp").GetUInt64())).ToList();
            if (trace.UserRegisters is not null && theirs.Count > 0)
                theirs.RemoveAt(theirs.Count - 1);
            var ours = trace.Frames.Where(f => f.IsReliable).Select(f => (Pc: f.Address, Sp: f.StackPointer)).ToList();
            Assert.True(theirs.SequenceEqual(ours), $"pid {task.Pid} ({task.Comm}): drgn {string.Join(' ', theirs.Select(f => f.Pc.ToString("x", CultureInfo.InvariantCulture)))}, ours {string.Join(' ', ours.Select(f => f.Pc.ToString("x", CultureInfo.InvariantCulture)))}");
            compared++;
            frames += ours.Count;
        }
        output.WriteLine($"{compared} tasks, {frames} frames: pc and sp as drgn's");
        Assert.True(compared >= 55, $"only {compared} tasks compared");
    }
}
