using System.CommandLine;
using KvmTyped.Linux;

namespace KvmTyped.Cli;

/// <summary>`uname`: the kernel's utsname as uname -a prints it.</summary>
internal static class UnameCommand
{
    public static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var cmd = new Command("uname", "print the kernel's utsname (init_uts_ns) as uname -a does");
        cmd.SetAction(r =>
        {
            using var kvm = common.Open(r, stderr);
            if (kvm is null)
                return CommandLine.Failure;
            Utsname u;
            try
            {
                u = Utsname.Read(kvm);
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
                    w.WriteStartObject();
                    w.WriteString("sysname", u.Sysname);
                    w.WriteString("nodename", u.Nodename);
                    w.WriteString("release", u.Release);
                    w.WriteString("version", u.Version);
                    w.WriteString("machine", u.Machine);
                    w.WriteString("domainname", u.Domainname);
                    w.WriteEndObject();
                }));
            }
            else
            {
                // uname -a on Linux adds the operating system; GNU/Linux is what coreutils prints there.
                stdout.WriteLine($"{Output.Escape(u.ToString())} GNU/Linux");
            }
            return 0;
        });
        return cmd;
    }
}
