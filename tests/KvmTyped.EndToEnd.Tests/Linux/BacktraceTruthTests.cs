using System.Text.Json;
using KvmTyped.Linux;
using KvmTyped.TestSupport;
using Xunit.Abstractions;

namespace KvmTyped.EndToEnd.Tests.Linux;

/// <summary>Backtraces against what the panicked kernels recorded themselves: the oops's Call Trace in each dump's
/// own log, and (for amd64/panic-kaslr) every task's /proc/PID/task/TID/stack read just before the panic.</summary>
public class BacktraceTruthTests(ITestOutputHelper output)
{
    public const string PanicDump = "amd64/panic-kaslr/dump.kdump-zlib";

    /// <summary>The dumps taken through a real panic, in each format and with each namelist.</summary>
    public static TheoryData<DumpCase> Panicked() => new(PanicCases);

    internal static readonly DumpCase[] PanicCases =
    [
        new("amd64/kdump-kaslr", Dumps.Amd64KdumpElf, Dumps.Amd64Map, null, ""),
        new("amd64/kdump-kaslr", Dumps.Amd64Kdump, Dumps.Amd64Map, null, ""),
        new("amd64/kdump-kaslr", Dumps.Amd64Kdump, Dumps.Amd64Vmlinux, null, ""),
        new("i386/pae-kdump-kaslr", Dumps.I386KdumpElf, Dumps.I386Map, DumpCase.I386Btf, ""),
        new("i386/pae-kdump-kaslr", Dumps.I386Kdump, Dumps.I386Map, DumpCase.I386Btf, ""),
        new("amd64/panic-kaslr", PanicDump, Dumps.Amd64Map, null, ""),
    ];

    /// <summary>The oops as the kernel printed it: the "CPU: n PID: p" line and the Call Trace's frames ("? " kept).</summary>
    internal static (int Cpu, int Pid, List<string> Frames) Oops(Kvm kvm)
    {
        var log = KernelLog.Read(kvm);
        var panic = log.ToList().FindLastIndex(r => r.Text.StartsWith("Kernel panic - not syncing", StringComparison.Ordinal));
        Assert.True(panic >= 0, "the log holds no panic");
        var cpuLine = log.Skip(panic).First(r => r.Text.StartsWith("CPU: ", StringComparison.Ordinal)).Text.Split(' ');
        var start = log.ToList().FindIndex(panic, r => r.Text == "Call Trace:");
        var frames = new List<string>();
        foreach (var r in log.Skip(start + 1))
        {
            var line = r.Text.Trim();
            if (line.StartsWith("RIP:", StringComparison.Ordinal) || line.StartsWith("EIP:", StringComparison.Ordinal) || line.StartsWith("---[", StringComparison.Ordinal) || line.StartsWith("Kernel Offset", StringComparison.Ordinal))
                break;
            if (line.StartsWith('<'))
                continue;
            frames.Add(line);
        }
        return (int.Parse(cpuLine[1], System.Globalization.CultureInfo.InvariantCulture), int.Parse(cpuLine[3], System.Globalization.CultureInfo.InvariantCulture), frames);
    }

    [Theory]
    [MemberData(nameof(Panicked))]
    public void The_panicking_task_s_trace_is_the_oops_s_from_panic_on(DumpCase c)
    {
        using var kvm = c.Open();
        var (cpu, pid, oops) = Oops(kvm);
        var stacks = KernelStacks.For(kvm);
        Assert.Equal(cpu, stacks.CrashedCpu);
        Assert.Equal("panic_cpu", stacks.CrashedCpuSource);
        Assert.Equal(pid, stacks.CrashedThread!.Pid);
        var trace = stacks.CrashedThreadStack();
        Assert.Equal(StackTraceEnd.UserMode, trace.End);
        Assert.True(trace.IsActive);
        Assert.Equal(pid, trace.Task!.Pid);
        // The registers were taken below panic (in __crash_kexec for a kdump, in panic's delay loop in a QEMU dump):
        // from panic on, every reliable line of the oops, with the same function and offset.
        var ours = trace.Frames.Where(f => f.IsReliable).Select(f => f.ToString()).ToList();
        var at = ours.FindIndex(f => f.StartsWith("panic+", StringComparison.Ordinal));
        Assert.True(at >= 0, "no panic frame in:\n" + string.Join('\n', ours));
        var expected = oops.SkipWhile(f => !f.StartsWith("panic+", StringComparison.Ordinal)).Skip(1).Where(f => !f.StartsWith("? ", StringComparison.Ordinal)).ToList();
        Assert.True(expected.Count >= 8, $"the oops has {expected.Count} reliable frames above panic");
        Assert.Equal(expected, ours.Skip(at + 1).ToList());
        output.WriteLine($"{c}: CPU {cpu} pid {pid}, {expected.Count} frames above panic match the oops");
        // The user-mode registers the trace ends at are the task's (the oops prints them too).
        Assert.True(trace.UserRegisters!.TryGet("cs", out var cs) && (cs & 3) == 3);
        // THREAD_SIZE from init_stack's extent: 16 KiB on x86-64 without KASAN, 8 KiB on i386 (Debian's configs).
        Assert.Equal(c.Folder.StartsWith("i386", StringComparison.Ordinal) ? 8192UL : 16384UL, stacks.ThreadSize);
    }

    [Fact]
    public void The_qemu_dump_s_log_and_truth_agree_on_the_oops()
    {
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(PanicDump));
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Root, "amd64/panic-kaslr/truth.json")));
        var panic = doc.RootElement.GetProperty("panic");
        var (cpu, pid, frames) = Oops(kvm);
        Assert.Equal((panic.GetProperty("cpu").GetInt32(), panic.GetProperty("pid").GetInt32()), (cpu, pid));
        Assert.Equal(panic.GetProperty("call_trace_frames").EnumerateArray().Select(f => f.GetString()!), frames);
    }

    [Fact]
    public void Every_sleeping_task_s_trace_is_its_proc_stack_without_sched_text()
    {
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(PanicDump));
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Root, "amd64/panic-kaslr/truth.json")));
        var stacks = KernelStacks.For(kvm);
        var tasks = stacks.Tasks.List().Where(t => t.Pid > 0).ToDictionary(t => t.Pid);
        var schedStart = kvm.SymbolAddress("__sched_text_start");
        var schedEnd = kvm.SymbolAddress("__sched_text_end");
        int compared = 0, frames = 0;
        var skipped = new List<string>();
        foreach (var entry in doc.RootElement.GetProperty("stacks").EnumerateObject())
        {
            var tid = entry.Value.GetProperty("tid").GetInt32();
            var truth = entry.Value.GetProperty("frames").EnumerateArray().Select(f => f.GetString()!).ToList();
            // Sleeping in the dump: a task that ran since the snapshot (state R now), the one that panicked, zombies
            // (no stack) are not the stack /proc saw.
            if (!tasks.TryGetValue(tid, out var task) || task.State is not ('S' or 'I' or 'D') || stacks.ActiveTasks.Values.Contains(task.Address))
            {
                skipped.Add($"{tid} ({entry.Value.GetProperty("comm").GetString()}, {(task is null ? "gone" : task.State.ToString())})");
                continue;
            }
            var trace = stacks.StackTrace(task);
            Assert.True(trace.End is StackTraceEnd.EndOfStack or StackTraceEnd.UserMode, $"task {tid}: {trace.Reason}");
            Assert.Equal("its saved thread.sp", trace.Start);
            // /proc/PID/stack leaves out the scheduler's own frames (.sched.text), which bt shows.
            var ours = trace.Frames
                .Where(f => f.IsReliable)
                .Where(f => (f.IsExact ? f.Address : f.Address - 1) is var a && (a < schedStart || a >= schedEnd))
                .Select(f => f.ToString()).ToList();
            Assert.True(truth.SequenceEqual(ours), $"task {tid} ({task.Comm}):\n  /proc: {string.Join(", ", truth)}\n  bt:    {string.Join(", ", ours)}");
            Assert.True(trace.Frames.Count > ours.Count, $"task {tid}: no .sched.text frame (schedule, __schedule) was shown");
            compared++;
            frames += truth.Count;
        }
        output.WriteLine($"{compared} sleeping tasks match /proc frame for frame ({frames} frames); not compared: {string.Join(", ", skipped)}");
        Assert.True(compared >= 55, $"only {compared} tasks compared");
        Assert.True(skipped.Count <= 5, "not compared: " + string.Join(", ", skipped));
    }

    [Theory]
    [MemberData(nameof(Panicked))]
    public void Every_cpu_s_trace_and_every_task_s_ends_cleanly(DumpCase c)
    {
        using var kvm = c.Open();
        var stacks = KernelStacks.For(kvm);
        Assert.Equal(2, stacks.Cpus.Count);
        Assert.Equal([0, 1], stacks.Cpus.Select(r => r.Cpu).Order());
        foreach (var regs in stacks.Cpus)
        {
            var trace = stacks.StackTraceOfCpu(regs.Cpu);
            Assert.True(trace.End != StackTraceEnd.Error, $"CPU {regs.Cpu}: {trace.Reason}");
            Assert.All(trace.Frames, f => Assert.True(f.IsReliable && f.Symbol.IsKnown, $"CPU {regs.Cpu}: {f}"));
            Assert.Equal(regs.Task, trace.Task!.Address);
            if (trace.End == StackTraceEnd.EndOfStack)
            {
                // An idle CPU's stack starts in the boot code.
                Assert.Matches("^(secondary_startup_64_no_verify|startup_32_smp)\\+", trace.Frames[^1].ToString());
            }
        }
        var errors = new List<string>();
        foreach (var task in stacks.Tasks.List())
        {
            var trace = stacks.StackTrace(task);
            if (trace.End == StackTraceEnd.Error && !(task.State == 'Z' && trace.Frames.Count == 0))
                errors.Add($"{task.Pid} {task.Comm}: {trace.Reason}");
        }
        Assert.Empty(errors);
    }

    [Fact]
    public void A_cpu_stopped_on_its_irq_stack_is_followed_back_to_the_task_stack()
    {
        // In the QEMU dump CPU 0 was stopped by the panic's reboot IPI, handled on its IRQ stack over the idle loop.
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(PanicDump));
        var trace = KernelStacks.For(kvm).StackTraceOfCpu(0);
        Assert.Equal(StackTraceEnd.EndOfStack, trace.End);
        Assert.StartsWith("stop_this_cpu+", trace.Frames[0].ToString(), StringComparison.Ordinal);
        var stacksSeen = trace.Frames.Select(f => f.Stack).Distinct().ToList();
        Assert.Equal(["IRQ", "task"], stacksSeen);
        var interrupted = trace.Frames.Where(f => f.IsExact && f.Index > 0).Select(f => f.Symbol.Name).ToList();
        Assert.Contains("native_safe_halt", interrupted);
        Assert.Contains(trace.Frames, f => f.Symbol.Name == "sysvec_reboot");
        Assert.Contains(trace.Frames, f => f.Symbol.Name == "do_idle");
    }
}
