using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using ELFSharp.ELF;
using ELFSharp.ELF.Sections;
using KvmTyped.EndToEnd.Tests.Linux;
using KvmTyped.Linux;
using KvmTyped.TestSupport;
using Xunit.Abstractions;

namespace KvmTyped.EndToEnd.Tests.Arm64;

/// <summary>Backtraces and modules on the arm64 fixture against what the panicked kernel recorded itself: the oops's
/// call trace in the dump's own log, every task's /proc/PID/task/TID/stack read just before the panic, and the modules
/// of /sys/module with their .ko files.</summary>
public sealed partial class Arm64BacktraceTests(ITestOutputHelper output)
{
    private const string Folder = "arm64";

    /// <summary>The frame the oops prints right above panic: sysrq_handle_crash ends with "bl panic", so the return
    /// address saved there is the next function's first byte, which arm64's dump_backtrace prints unadjusted.</summary>
    private const string OopsFrameAbovePanic = "sysrq_reset_seq_param_set+0x0/0xa0";

    private static Kvm Open() => Kvm.Open(Fixtures.Get(Dumps.Arm64Map), Fixtures.Get(Dumps.Arm64Kdump));

    private static JsonElement TruthJson()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Root, Folder, "truth.json")));
        return doc.RootElement.Clone();
    }

    [GeneratedRegex(@"^(\? )?[\w.$]+\+0x[0-9a-f]+/0x[0-9a-f]+( \[\w+\])?$")]
    private static partial Regex FrameLine();

    /// <summary>The oops as arm64 prints it: "CPU: n PID: p" and the frames after "Call trace:".</summary>
    private static (int Cpu, int Pid, List<string> Frames) Oops(Kvm kvm)
    {
        var log = KernelLog.Read(kvm).Select(r => r.Text.Trim()).ToList();
        var panic = log.FindLastIndex(t => t.StartsWith("Kernel panic - not syncing", StringComparison.Ordinal));
        Assert.True(panic >= 0, "the log holds no panic");
        var cpuLine = log.Skip(panic).First(t => t.StartsWith("CPU: ", StringComparison.Ordinal)).Split(' ');
        var start = log.FindIndex(panic, t => t == "Call trace:");
        Assert.True(start > panic, "the oops has no call trace");
        var frames = log.Skip(start + 1).TakeWhile(t => FrameLine().IsMatch(t)).ToList();
        return (int.Parse(cpuLine[1], CultureInfo.InvariantCulture), int.Parse(cpuLine[3], CultureInfo.InvariantCulture), frames);
    }

    [Fact]
    public void The_dump_s_log_and_truth_agree_on_the_oops()
    {
        using var kvm = Open();
        var panic = TruthJson().GetProperty("panic");
        var (cpu, pid, frames) = Oops(kvm);
        Assert.Equal((panic.GetProperty("cpu").GetInt32(), panic.GetProperty("pid").GetInt32()), (cpu, pid));
        Assert.Equal(panic.GetProperty("call_trace").EnumerateArray().Select(f => f.GetString()!), frames);
    }

    [Fact]
    public void The_panicking_task_s_trace_is_the_oops_s_from_panic_on()
    {
        using var kvm = Open();
        var (cpu, pid, oops) = Oops(kvm);
        var stacks = KernelStacks.For(kvm);
        Assert.Equal(cpu, stacks.CrashedCpu);
        Assert.Equal("panic_cpu", stacks.CrashedCpuSource);
        Assert.Equal(pid, stacks.CrashedThread!.Pid);
        Assert.Equal(16384UL, stacks.ThreadSize);
        Assert.Equal("frame pointers", stacks.Unwinder);
        var trace = stacks.CrashedThreadStack();
        Assert.Equal(StackTraceEnd.UserMode, trace.End);
        Assert.True(trace.IsActive);
        Assert.Equal(pid, trace.Task!.Pid);
        Assert.Equal($"CPU {cpu}'s registers (NT_PRSTATUS)", trace.Start);
        // QEMU stopped the CPU in panic's delay loop (at the IRQ vector, about to take the timer interrupt): the frames
        // below panic differ from the oops's, which was printed from inside panic.
        var ours = trace.Frames.Where(f => f.IsReliable).Select(f => f.ToString()).ToList();
        var at = ours.FindIndex(f => f.StartsWith("panic+", StringComparison.Ordinal));
        Assert.True(at >= 0, "no panic frame in:\n" + string.Join('\n', ours));
        var expected = oops.SkipWhile(f => !f.StartsWith("panic+", StringComparison.Ordinal)).Skip(1).Where(f => !f.StartsWith("? ", StringComparison.Ordinal)).ToList();
        Assert.True(expected.Count >= 12, $"the oops has {expected.Count} reliable frames above panic");
        // The one frame treated on its own (docs/cli.md): the oops names the return address as it is, bt looks it up
        // at address - 1 (%pB), which names the caller at an offset equal to its length.
        Assert.Equal(OopsFrameAbovePanic, expected[0]);
        var above = trace.Frames.Where(f => f.IsReliable).ElementAt(at + 1);
        Assert.Equal(kvm.SymbolAddress("sysrq_reset_seq_param_set"), above.Address);
        Assert.Equal("sysrq_handle_crash+0x20/0x20", above.ToString());
        Assert.Equal(kvm.SymbolAddress("sysrq_handle_crash"), above.Symbol.SymbolAddress);
        // Every other reliable line of the oops, in order, with the same function and offset.
        Assert.Equal(expected.Skip(1), ours.Skip(at + 2));
        output.WriteLine($"CPU {cpu} pid {pid}: {expected.Count} frames above panic match the oops, the first as documented");
        // The trace ends at the user-mode registers saved by el0t_64_sync (pstate EL0t, user pc and sp).
        var user = trace.UserRegisters!;
        Assert.Equal(0UL, user["pstate"]!.Value & 0xf);
        Assert.InRange(user["pc"]!.Value, 0x1000UL, (1UL << 48) - 1);
        Assert.InRange(user["sp"]!.Value, 0x1000UL, (1UL << 48) - 1);
        Assert.Equal("el0t_64_sync", trace.Frames[^1].Symbol.Name);
    }

    [Fact]
    public void Every_sleeping_task_s_trace_is_its_proc_stack_without_sched_text()
    {
        using var kvm = Open();
        var stacks = KernelStacks.For(kvm);
        var tasks = stacks.Tasks.List().Where(t => t.Pid > 0).ToDictionary(t => t.Pid);
        var schedStart = kvm.SymbolAddress("__sched_text_start");
        var schedEnd = kvm.SymbolAddress("__sched_text_end");
        int compared = 0, frames = 0;
        var skipped = new List<string>();
        foreach (var entry in TruthJson().GetProperty("stacks").EnumerateObject())
        {
            var tid = entry.Value.GetProperty("tid").GetInt32();
            var truth = entry.Value.GetProperty("frames").EnumerateArray().Select(f => f.GetString()!).ToList();
            // Sleeping in the dump: a task that ran since the snapshot (state R now), the one that panicked, zombies
            // (no stack) and those /proc gave no frames for are not the stack /proc saw.
            tasks.TryGetValue(tid, out var task);
            if (truth.Count == 0 || task is null || task.State is not ('S' or 'I' or 'D') || stacks.ActiveTasks.Values.Contains(task.Address))
            {
                skipped.Add($"{tid} ({entry.Value.GetProperty("comm").GetString()}, {(task is null ? "gone" : task.State.ToString())}, {truth.Count} frames)");
                continue;
            }
            var trace = stacks.StackTrace(task);
            Assert.True(trace.End is StackTraceEnd.EndOfStack or StackTraceEnd.UserMode, $"task {tid}: {trace.Reason}");
            Assert.Equal("its saved thread.cpu_context", trace.Start);
            // /proc/PID/stack leaves out the scheduler's own frames (.sched.text: __switch_to, __schedule, schedule),
            // which bt shows.
            var ours = trace.Frames
                .Where(f => f.IsReliable)
                .Where(f => (f.IsExact ? f.Address : f.Address - 1) is var a && (a < schedStart || a >= schedEnd))
                .Select(f => f.ToString()).ToList();
            Assert.True(truth.SequenceEqual(ours), $"task {tid} ({task.Comm}):\n  /proc: {string.Join(", ", truth)}\n  bt:    {string.Join(", ", ours)}");
            Assert.True(trace.Frames.Count > ours.Count, $"task {tid}: no .sched.text frame (__switch_to, __schedule) was shown");
            Assert.Equal(trace.End == StackTraceEnd.UserMode, ours[^1].StartsWith("el0t_64_sync+", StringComparison.Ordinal));
            compared++;
            frames += truth.Count;
        }
        output.WriteLine($"{compared} sleeping tasks match /proc frame for frame ({frames} frames); not compared: {string.Join(", ", skipped)}");
        Assert.True(compared >= 50, $"only {compared} tasks compared");
        Assert.True(skipped.Count <= 6, "not compared: " + string.Join(", ", skipped));
    }

    [Fact]
    public void Every_cpu_s_trace_and_every_task_s_ends_cleanly()
    {
        using var kvm = Open();
        var stacks = KernelStacks.For(kvm);
        // QEMU's arm64 notes carry no "QEMU" note: its NT_PRFPREG notes tell pr_pid is the vCPU index + 1.
        Assert.Equal([(0, 1), (1, 2)], stacks.Cpus.Select(r => (r.Cpu, r.NotePid)).Order());
        foreach (var regs in stacks.Cpus)
        {
            var trace = stacks.StackTraceOfCpu(regs.Cpu);
            Assert.True(trace.End != StackTraceEnd.Error, $"CPU {regs.Cpu}: {trace.Reason}");
            Assert.All(trace.Frames, f => Assert.True(f.IsReliable && f.Symbol.IsKnown, $"CPU {regs.Cpu}: {f}"));
            Assert.Equal(regs.Task, trace.Task!.Address);
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
    public void The_stopped_cpu_s_trace_leaves_its_irq_stack_and_crosses_the_el1_exception_frame()
    {
        // CPU 0 was idle when the panic's stop IPI came: handled on its IRQ stack, over el1h_64_irq's pt_regs, over the
        // idle loop of the boot CPU's idle task, whose stack starts in the boot code.
        using var kvm = Open();
        var trace = KernelStacks.For(kvm).StackTraceOfCpu(0);
        Assert.Equal(StackTraceEnd.EndOfStack, trace.End);
        Assert.Equal(0, trace.Task!.Pid);
        Assert.Equal("local_cpu_stop", trace.Frames[0].Symbol.Name);
        Assert.Equal(["IRQ", "task"], trace.Frames.Select(f => f.Stack).Distinct());
        Assert.Contains(trace.Frames, f => f.Symbol.Name == "ipi_handler" && f.Stack == "IRQ");
        var vector = trace.Frames.Single(f => f.Symbol.Name == "el1h_64_irq");
        var interrupted = trace.Frames[vector.Index + 1];
        Assert.True(interrupted.IsExact);
        Assert.Equal("arch_cpu_idle", interrupted.Symbol.Name);
        Assert.Equal(interrupted.Address, interrupted.Registers!["pc"]);
        Assert.Equal(0x5UL, interrupted.Registers!["pstate"]!.Value & 0xf); // EL1h
        Assert.Contains(trace.Frames, f => f.Symbol.Name == "do_idle");
        Assert.Equal("__primary_switched", trace.Frames[^1].Symbol.Name);
    }

    [Theory]
    [InlineData("fat")]
    [InlineData("vfat")]
    [InlineData("nls_cp437")]
    [InlineData("qemu_fw_cfg")]
    public void Module_code_is_named_as_the_ko_file_names_it(string name)
    {
        using var kvm = Open();
        var symbolizer = KernelSymbolizer.For(kvm);
        var sections = TruthJson().GetProperty("modules").EnumerateArray().Single(m => m.GetProperty("name").GetString() == name)
            .GetProperty("sections").EnumerateObject().ToDictionary(p => p.Name, p => Truth.Hex(p.Value.GetString()!));
        var (functions, addresses) = ModuleKoCheck.Check(symbolizer, name, Path.Combine(Fixtures.Root, Folder, name + ".ko"), sections);
        output.WriteLine($"{name}: {functions} functions, {addresses} addresses named as the .ko names them");
    }
}
