using System.CommandLine;
using System.Globalization;
using System.Text;
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
        // Each line is formatted into one reused buffer: a line's strings were most of what ps allocated per task.
        var line = new StringBuilder(128);
        foreach (var t in tasks)
        {
            line.Clear();
            // As crash does: '>' marks the task each CPU was running.
            line.Append(running.Contains(t.Address) ? '>' : ' ').Append(inv, $"{t.Pid,6} {t.Ppid,7} ");
            if (t.Cpu < 0)
                line.Append("  -");
            else
                line.Append(inv, $"{t.Cpu,3}");
            if (width == 16)
                line.Append(inv, $" {t.Address:x16} ");
            else
                line.Append(inv, $" {t.Address:x8} ");
            line.Append(t.State).Append("  ");
            // As crash does: kernel threads (no mm) in brackets; a zombie has dropped its mm but is no kernel thread.
            var comm = Output.Escape(t.Comm);
            if (t.Mm == 0 && t.State is not ('Z' or 'X'))
                line.Append('[').Append(comm).Append(']');
            else
                line.Append(comm);
            o.Write(line);
            o.WriteLine();
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
