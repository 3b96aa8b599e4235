using System.CommandLine;
using KvmTyped.Tools;

namespace KvmTyped.Cli;

/// <summary><c>kvmtyped schema import --btf FILE TYPE... [--fields a,b,c] [-o OUT.h]</c> (or <c>-n NAMELIST -c CORE</c>
/// for the image's BTF): writes a C schema the generator accepts — complete structs with their dependencies, or
/// preserve_access_index subsets with <c>--fields</c>.</summary>
internal static class SchemaImportCommand
{
    internal static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var types = new Argument<string[]>("type") { Arity = ArgumentArity.OneOrMore, Description = "struct or union names" };
        var fields = new Option<string?>("--fields") { Description = "write preserve_access_index subsets with these members (comma-separated) instead of complete structs" };
        var output = new Option<string?>("--output", "-o") { Description = "write the schema to this file (default: standard output)" };
        var cmd = new Command("import", "write a C schema from BTF (--btf FILE, or the image's BTF with -n/-c)") { types, fields, output };
        cmd.SetAction(r =>
        {
            try
            {
                KernelBtf btf;
                Kvm? kvm = null;
                try
                {
                    if (r.GetValue(common.Namelist) is null && r.GetValue(common.Core) is null)
                    {
                        if (r.GetValue(common.Btf) is not { } file)
                        {
                            stderr.WriteLine("kvmtyped: schema import needs --types FILE (BTF or DWARF), or -c CORE for the image's types");
                            return CommandLine.Usage;
                        }
                        btf = KernelBtf.Load(file);
                    }
                    else
                    {
                        kvm = common.Open(r, stderr);
                        if (kvm is null)
                            return CommandLine.Failure;
                        btf = kvm.Btf;
                    }
                    var names = r.GetValue(types) ?? [];
                    using var busy = TerminalBusy.Start(stderr, $"importing {names.Length} type{(names.Length == 1 ? "" : "s")}");
                    var text = r.GetValue(fields) is { } list
                        ? SchemaImport.Subset(btf, names, [.. list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)])
                        : SchemaImport.Complete(btf, names);
                    if (r.GetValue(output) is { } path)
                        File.WriteAllText(path, text);
                    else
                        stdout.Write(text);
                    return 0;
                }
                finally
                {
                    kvm?.Dispose();
                }
            }
            catch (Exception e) when (e is KvmException or IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"kvmtyped: {e.Message}");
                return CommandLine.Failure;
            }
        });
        return cmd;
    }
}
