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
            var found = new List<(string Name, ulong Address, string? Module)>();
            var rc = 0;
            // Symbols the namelist lacks are looked for in the loaded modules' own symbol tables.
            var symbolizer = new Lazy<KvmTyped.Linux.KernelSymbolizer>(() => KvmTyped.Linux.KernelSymbolizer.For(kvm));
            foreach (var n in r.GetValue(names) ?? [])
            {
                if (kvm.TryGetSymbol(n, out var a))
                    found.Add((n, a, null));
                else if (symbolizer.Value.TryLookup(n, out var s, out var module))
                    found.Add((n, s.Address, module));
                else
                {
                    var modules = symbolizer.Value.ModulesUnknown is { } why ? $" (modules unknown: {why})" : " or any module";
                    stderr.WriteLine($"kvmtyped: {kvm.NamelistPath}: no symbol \"{n}\"{modules}");
                    rc = CommandLine.Failure;
                }
            }
            if (r.GetValue(common.Json))
            {
                stdout.WriteLine(Output.Json(w =>
                {
                    w.WriteStartObject();
                    foreach (var (n, a, _) in found)
                        w.WriteString(n, Output.Hex(a));
                    w.WriteEndObject();
                }));
            }
            else
            {
                var width = kvm.PointerSize * 2;
                foreach (var (n, a, m) in found)
                    stdout.WriteLine($"{a.ToString("x" + width, System.Globalization.CultureInfo.InvariantCulture)} {Output.Escape(n)}{(m is null ? "" : " [" + Output.Escape(m) + "]")}");
            }
            return rc;
        });
        return cmd;
    }
}
