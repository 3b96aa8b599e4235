using System.CommandLine;

namespace KvmTyped.Cli;

/// <summary>`nlist SYMBOL...`: running addresses of symbols.</summary>
internal static class NlistCommand
{
    public static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var names = new Argument<string[]>("symbol") { Arity = ArgumentArity.OneOrMore, Description = "symbol names" };
        var cmd = new Command("nlist", "print the running (KASLR-relocated) address of each symbol") { names };
        cmd.SetAction(r =>
        {
            using var kvm = common.Open(r, stderr, symbolsOnly: true);
            if (kvm is null)
                return CommandLine.Failure;
            var found = new List<(string Name, ulong Address)>();
            var rc = 0;
            foreach (var n in r.GetValue(names) ?? [])
            {
                if (kvm.TryGetSymbol(n, out var a))
                    found.Add((n, a));
                else
                {
                    stderr.WriteLine($"kvmtyped: {kvm.NamelistPath}: no symbol \"{n}\"");
                    rc = CommandLine.Failure;
                }
            }
            if (r.GetValue(common.Json))
            {
                stdout.WriteLine(Output.Json(w =>
                {
                    w.WriteStartObject();
                    foreach (var (n, a) in found)
                        w.WriteString(n, Output.Hex(a));
                    w.WriteEndObject();
                }));
            }
            else
            {
                var width = kvm.PointerSize * 2;
                foreach (var (n, a) in found)
                    stdout.WriteLine($"{a.ToString("x" + width, System.Globalization.CultureInfo.InvariantCulture)} {Output.Escape(n)}");
            }
            return rc;
        });
        return cmd;
    }
}
