using System.CommandLine;
using System.Globalization;
using KvmTyped.Linux;

namespace KvmTyped.Cli;

/// <summary>`ps`: the kernel's tasks, threads included, as crash's ps lists them.</summary>
internal static class PsCommand
{
    public static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var cmd = new Command("ps", "list every task (threads included): PID PPID CPU TASK ST COMM; task_struct layout from BTF");
        cmd.SetAction(r =>
        {
            using var kvm = common.Open(r, stderr);
            if (kvm is null)
                return CommandLine.Failure;
            IReadOnlyList<KernelTask> tasks;
            HashSet<ulong> running;
            try
            {
                var kt = KernelTasks.For(kvm);
                tasks = Sorted(kt.List());
                running = [.. kt.RunningTasks().Values];
            }
            catch (KvmException e)
            {
                stderr.WriteLine($"kvmtyped: {e.Message}");
                return CommandLine.Failure;
            }
            if (r.GetValue(common.Json))
                stdout.WriteLine(Json(tasks));
            else
                Text(kvm, tasks, running, stdout);
            return 0;
        });
        return cmd;
    }

    /// <summary>Idle tasks first by CPU, then by pid, as crash orders them.</summary>
    internal static IReadOnlyList<KernelTask> Sorted(IReadOnlyList<KernelTask> tasks) =>
        [.. tasks.OrderBy(t => t.Pid).ThenBy(t => t.IsIdle ? t.Cpu : 0).ThenBy(t => t.Address)];

    private static void Text(Kvm kvm, IReadOnlyList<KernelTask> tasks, HashSet<ulong> running, TextWriter o)
    {
        var inv = CultureInfo.InvariantCulture;
        var width = kvm.PointerSize * 2;
        o.WriteLine($" {"PID",6} {"PPID",7} {"CPU",3} {"TASK".PadRight(width)} {"ST"} COMM");
        foreach (var t in tasks)
        {
            // As crash does: kernel threads (no mm) in brackets; a zombie has dropped its mm but is no kernel thread.
            var comm = Output.Escape(t.Comm);
            var display = t.Mm == 0 && t.State is not ('Z' or 'X') ? $"[{comm}]" : comm;
            // As crash does: '>' marks the task each CPU was running.
            var mark = running.Contains(t.Address) ? ">" : " ";
            o.WriteLine($"{mark}{t.Pid.ToString(inv),6} {t.Ppid.ToString(inv),7} {(t.Cpu < 0 ? "-" : t.Cpu.ToString(inv)),3} {t.Address.ToString("x" + width, inv)} {t.State}  {display}");
        }
    }

    private static string Json(IReadOnlyList<KernelTask> tasks) => Output.Json(w =>
    {
        w.WriteStartArray();
        foreach (var t in tasks)
        {
            w.WriteStartObject();
            w.WriteNumber("pid", t.Pid);
            w.WriteNumber("tgid", t.Tgid);
            w.WriteNumber("ppid", t.Ppid);
            w.WriteString("state", t.State.ToString());
            w.WriteString("comm", t.Comm);
            w.WriteNumber("cpu", t.Cpu);
            w.WriteString("task", Output.Hex(t.Address));
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });
}
