using System.CommandLine;
using KvmTyped.Tools;

namespace KvmTyped.Cli;

/// <summary>`struct TYPE ADDRESS|SYMBOL [-o]`: a struct's members with their values, typed by the kernel's BTF.</summary>
internal static class StructCommand
{
    public static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var type = new Argument<string>("type") { Description = "struct or union name (\"task_struct\", \"struct page\", a typedef)" };
        var where = new Argument<string>("address") { Description = "ADDRESS, SYMBOL or SYMBOL+OFF" };
        var offsets = new Option<bool>("-o") { Description = "show each member's offset" };
        var cmd = new Command("struct", "print a struct's members with their values (types from the kernel's BTF; see --btf)") { type, where, offsets };
        cmd.SetAction(r =>
        {
            using var kvm = common.Open(r, stderr);
            if (kvm is null)
                return CommandLine.Failure;
            try
            {
                var printer = new StructPrinter(kvm.Btf) { ShowOffsets = r.GetValue(offsets) };
                var name = r.GetValue(type)!;
                if (!printer.TryGetSize(name, out var size, out var why))
                {
                    stderr.WriteLine($"kvmtyped: {why}");
                    return CommandLine.Failure;
                }
                if (!Output.TryResolve(kvm, r.GetValue(where)!, physical: false, out var address, out var err))
                {
                    stderr.WriteLine($"kvmtyped: {err}");
                    return CommandLine.Failure;
                }
                if (size > 1 << 24)
                {
                    stderr.WriteLine($"kvmtyped: {name} is {size} bytes, too large to print");
                    return CommandLine.Failure;
                }
                var data = new byte[size];
                kvm.ReadVirtual(address, data);
                if (r.GetValue(common.Json))
                {
                    stdout.WriteLine(Output.Json(w => printer.WriteJson(w, name, data, Output.Hex(address))));
                    return 0;
                }
                printer.WriteText(stdout, name, data, Output.Hex(address));
                return 0;
            }
            catch (KvmException e)
            {
                stderr.WriteLine($"kvmtyped: {e.Message}");
                return CommandLine.Failure;
            }
        });
        return cmd;
    }
}
