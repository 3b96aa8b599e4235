using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using KvmTyped.Linux;

namespace KvmTyped.Cli;

/// <summary>`bt [PID|TASK...] [-a] [--all]`: kernel stack traces, as crash's bt prints them.</summary>
internal static class BtCommand
{
    public static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var targets = new Argument<string[]>("task") { Arity = ArgumentArity.ZeroOrMore, Description = "pids (decimal) or task_struct addresses (hex, 0x…); default: the task that panicked" };
        var active = new Option<bool>("--active", "-a") { Description = "the task on each CPU" };
        var all = new Option<bool>("--all") { Description = "every task" };
        var cmd = new Command("bt", "kernel stack traces: the panicking task's, the task on each CPU (-a), every task (--all) or those named") { targets, active, all };
        cmd.SetAction(r =>
        {
            using var kvm = common.Open(r, stderr);
            if (kvm is null)
                return CommandLine.Failure;
            var rc = 0;
            var traces = new List<(KernelStackTrace Trace, bool Crashed)>();
            try
            {
                var stacks = KernelStacks.For(kvm);
                var crashedCpu = stacks.CrashedCpu;
                var names = r.GetValue(targets) ?? [];
                if (r.GetValue(all))
                {
                    foreach (var task in PsCommand.Sorted(stacks.Tasks.List()))
                        traces.Add(Mark(stacks.StackTrace(task), crashedCpu));
                }
                else if (r.GetValue(active))
                {
                    var cpus = stacks.ActiveTasks.Keys.Union(stacks.Cpus.Where(c => c.Cpu >= 0).Select(c => c.Cpu)).Order();
                    foreach (var cpu in cpus)
                        traces.Add(Mark(stacks.StackTraceOfCpu(cpu), crashedCpu));
                }
                else if (names.Length == 0)
                {
                    traces.Add((stacks.CrashedThreadStack(), true));
                }
                else
                {
                    var byPid = new Lazy<IReadOnlyList<KernelTask>>(() => stacks.Tasks.List());
                    foreach (var name in names)
                    {
                        if (Find(stacks, byPid, name, out var task, out var error))
                            traces.Add(Mark(stacks.StackTrace(task!), crashedCpu));
                        else
                        {
                            stderr.WriteLine($"kvmtyped: {error}");
                            rc = CommandLine.Failure;
                        }
                    }
                }
            }
            catch (KvmException e)
            {
                stderr.WriteLine($"kvmtyped: {e.Message}");
                return CommandLine.Failure;
            }
            if (r.GetValue(common.Json))
                stdout.WriteLine(Json(traces));
            else
                Text(kvm, traces, stdout);
            return rc;
        });
        return cmd;
    }

    private static (KernelStackTrace, bool) Mark(KernelStackTrace trace, int? crashedCpu) => (trace, trace.IsActive && trace.Cpu == crashedCpu);

    /// <summary>A task by pid (decimal) or task_struct address (hex with 0x, or hex digits that are not all decimal).</summary>
    private static bool Find(KernelStacks stacks, Lazy<IReadOnlyList<KernelTask>> tasks, string text, out KernelTask? task, out string error)
    {
        task = null;
        error = "";
        var isAddress = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) || !text.All(char.IsAsciiDigit);
        if (isAddress)
        {
            if (!Output.TryNumber(text, hexDefault: true, out var address))
            {
                error = $"bad pid or task address \"{text}\"";
                return false;
            }
            task = tasks.Value.FirstOrDefault(t => t.Address == address);
            if (task is null)
            {
                try
                {
                    task = stacks.Tasks.Read(address);
                }
                catch (KvmException e)
                {
                    error = $"0x{address.ToString("x", CultureInfo.InvariantCulture)} is not a task: {e.Message}";
                    return false;
                }
            }
            return true;
        }
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
        {
            error = $"bad pid \"{text}\"";
            return false;
        }
        // pid 0 names every CPU's idle task: the boot CPU's, as crash does.
        task = tasks.Value.Where(t => t.Pid == pid).OrderBy(t => t.IsIdle ? t.Cpu : 0).FirstOrDefault();
        if (task is null)
        {
            error = $"no task with pid {pid}";
            return false;
        }
        return true;
    }

    private static void Text(Kvm kvm, List<(KernelStackTrace Trace, bool Crashed)> traces, TextWriter o)
    {
        var inv = CultureInfo.InvariantCulture;
        var width = kvm.PointerSize * 2;
        var first = true;
        foreach (var (t, crashed) in traces)
        {
            if (!first)
                o.WriteLine();
            first = false;
            var pid = t.Task?.Pid.ToString(inv) ?? "-";
            var task = t.Task?.Address.ToString("x" + width, inv) ?? new string('-', width);
            var cpu = t.Cpu < 0 ? "-" : t.Cpu.ToString(inv);
            o.WriteLine($"PID: {pid,-7}  TASK: {task}  CPU: {cpu,-3}  COMMAND: \"{Output.Escape(t.Task?.Comm ?? "")}\"{(crashed ? "  (panic)" : "")}");
            string? stack = null;
            foreach (var f in t.Frames)
            {
                // As crash does: a line after the frames of a stack left for another names the stack left.
                if (f.Stack is not null && stack is not null && f.Stack != stack && f.IsReliable)
                    o.WriteLine($" --- <{stack} stack> ---");
                stack = f.Stack ?? stack;
                var mark = f.IsReliable ? "" : "? ";
                o.WriteLine($"{("#" + f.Index.ToString(inv)),4} [{f.StackPointer.ToString("x" + width, inv)}] {mark}{Output.Escape(f.Symbol.ToString())} at {f.Address.ToString("x" + width, inv)}");
                if (f.Registers is { } regs && f.Index > 0 && f.IsExact)
                    Registers(regs, kvm.Machine, o);
            }
            switch (t.End)
            {
                case StackTraceEnd.UserMode when t.UserRegisters is { } user:
                    Registers(user, kvm.Machine, o);
                    break;
                case StackTraceEnd.Error:
                    o.WriteLine($"    (stopped: {Output.Escape(t.Reason)})");
                    break;
            }
        }
    }

    private static readonly (string Reg, string X86_64, string I386)[] RegisterNames =
    [
        ("ip", "RIP", "EIP"), ("sp", "RSP", "ESP"), ("flags", "RFLAGS", "EFLAGS"), ("ax", "RAX", "EAX"), ("bx", "RBX", "EBX"), ("cx", "RCX", "ECX"),
        ("dx", "RDX", "EDX"), ("si", "RSI", "ESI"), ("di", "RDI", "EDI"), ("bp", "RBP", "EBP"), ("r8", "R8", "R8"), ("r9", "R9", "R9"),
        ("r10", "R10", "R10"), ("r11", "R11", "R11"), ("r12", "R12", "R12"), ("r13", "R13", "R13"), ("r14", "R14", "R14"), ("r15", "R15", "R15"),
    ];

    private static readonly (string Reg, string X86_64, string I386)[] SegmentNames =
        [("orig_ax", "ORIG_RAX", "ORIG_EAX"), ("cs", "CS", "CS"), ("ss", "SS", "SS"), ("ds", "DS", "DS"), ("es", "ES", "ES"), ("fs", "FS", "FS"), ("gs", "GS", "GS")];

    /// <summary>A register set as crash prints an exception frame: three registers a line, then the segment line (arm64:
    /// PC, LR, SP, then X29 down to X0, then PSTATE).</summary>
    private static void Registers(RegisterSet regs, KernelMachine machine, TextWriter o)
    {
        var inv = CultureInfo.InvariantCulture;
        if (machine == KernelMachine.Arm64)
        {
            Arm64Registers(regs, o);
            return;
        }
        var lp64 = machine == KernelMachine.X86_64;
        var digits = lp64 ? 16 : 8;
        var cells = new List<string>();
        foreach (var (reg, x64, x32) in RegisterNames)
        {
            if (regs.TryGet(reg, out var v))
                cells.Add($"{(lp64 ? x64 : x32),6}: {v.ToString("x" + digits, inv)}");
        }
        for (var i = 0; i < cells.Count; i += 3)
            o.WriteLine("   " + string.Join(" ", cells.Skip(i).Take(3)));
        var segments = new List<string>();
        foreach (var (reg, x64, x32) in SegmentNames)
        {
            if (regs.TryGet(reg, out var v))
                segments.Add($"{(lp64 ? x64 : x32)}: {(reg == "orig_ax" ? v.ToString("x" + digits, inv) : v.ToString("x4", inv))}");
        }
        if (segments.Count > 0)
            o.WriteLine("    " + string.Join("  ", segments));
    }

    private static void Arm64Registers(RegisterSet regs, TextWriter o)
    {
        var inv = CultureInfo.InvariantCulture;
        var cells = new List<string>();
        foreach (var (reg, label) in new[] { ("pc", "PC"), ("x30", "LR"), ("sp", "SP") }.Concat(Enumerable.Range(0, 30).Reverse().Select(i => ("x" + i.ToString(inv), "X" + i.ToString(inv)))))
        {
            if (regs.TryGet(reg, out var v))
                cells.Add($"{label,6}: {v.ToString("x16", inv)}");
        }
        for (var i = 0; i < cells.Count; i += 3)
            o.WriteLine("   " + string.Join(" ", cells.Skip(i).Take(3)));
        if (regs.TryGet("pstate", out var pstate))
            o.WriteLine($"    PSTATE: {pstate.ToString("x8", inv)}");
    }

    private static string Json(List<(KernelStackTrace Trace, bool Crashed)> traces) => Output.Json(w =>
    {
        w.WriteStartArray();
        foreach (var (t, crashed) in traces)
        {
            w.WriteStartObject();
            if (t.Task is { } task)
            {
                w.WriteNumber("pid", task.Pid);
                w.WriteNumber("tgid", task.Tgid);
                w.WriteString("comm", task.Comm);
                w.WriteString("task", Output.Hex(task.Address));
            }
            else
            {
                w.WriteNull("pid");
                w.WriteNull("task");
            }
            w.WriteNumber("cpu", t.Cpu);
            w.WriteBoolean("active", t.IsActive);
            w.WriteBoolean("crashed", crashed);
            w.WriteString("unwinder", t.Unwinder);
            w.WriteString("start", t.Start);
            w.WriteStartArray("frames");
            foreach (var f in t.Frames)
            {
                w.WriteStartObject();
                w.WriteNumber("index", f.Index);
                w.WriteString("sp", Output.Hex(f.StackPointer));
                w.WriteString("address", Output.Hex(f.Address));
                w.WriteString("text", f.Symbol.ToString());
                if (f.Symbol.Name is { } name)
                {
                    w.WriteString("symbol", name);
                    Number(w, "offset", f.Symbol.Offset);
                    Number(w, "size", f.Symbol.Size);
                }
                else
                {
                    w.WriteNull("symbol");
                }
                if (f.Symbol.Module is { } module)
                    w.WriteString("module", module);
                else
                    w.WriteNull("module");
                w.WriteBoolean("reliable", f.IsReliable);
                w.WriteBoolean("exact", f.IsExact);
                if (f.Stack is { } stack)
                    w.WriteString("stack", stack);
                else
                    w.WriteNull("stack");
                w.WritePropertyName("registers");
                Registers(w, f.Registers);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("end", t.End switch { StackTraceEnd.EndOfStack => "end of stack", StackTraceEnd.UserMode => "user mode", _ => "error" });
            w.WriteString("reason", t.Reason);
            w.WritePropertyName("userRegisters");
            Registers(w, t.UserRegisters);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });

    private static void Registers(Utf8JsonWriter w, RegisterSet? regs)
    {
        if (regs is null)
        {
            w.WriteNullValue();
            return;
        }
        w.WriteStartObject();
        foreach (var (k, v) in regs)
            w.WriteString(k, Output.Hex(v));
        w.WriteEndObject();
    }

    /// <summary>A count or offset as a JSON number, or as a "0x…" string above 2^53 (where JSON numbers lose digits).</summary>
    internal static void Number(Utf8JsonWriter w, string name, ulong value) => Output.Number(w, name, value);
}
