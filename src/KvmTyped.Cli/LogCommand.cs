using System.CommandLine;
using KvmTyped.Linux;

namespace KvmTyped.Cli;

/// <summary>`log`: the kernel log buffer as dmesg prints it.</summary>
internal static class LogCommand
{
    public static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var cmd = new Command("log", "print the kernel log buffer with timestamps, as dmesg does (layout from VMCOREINFO)");
        cmd.SetAction(r =>
        {
            using var kvm = common.Open(r, stderr);
            if (kvm is null)
                return CommandLine.Failure;
            IReadOnlyList<KernelLogRecord> records;
            try
            {
                records = KernelLog.Read(kvm);
            }
            catch (KvmException e)
            {
                stderr.WriteLine($"kvmtyped: {e.Message}");
                return CommandLine.Failure;
            }
            if (r.GetValue(common.Json))
            {
                stdout.WriteLine(Output.Json(w =>
                {
                    w.WriteStartArray();
                    foreach (var rec in records)
                    {
                        w.WriteStartObject();
                        Output.Number(w, "seq", rec.Sequence);
                        Output.Number(w, "ts", rec.TimestampNs);
                        w.WriteNumber("level", rec.Level);
                        w.WriteString("text", rec.Text);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }));
            }
            else
            {
                foreach (var rec in records)
                    stdout.WriteLine(rec.Format());
            }
            return 0;
        });
        return cmd;
    }
}
