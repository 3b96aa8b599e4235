using System.CommandLine;
using System.Globalization;

namespace KvmTyped.Cli;

/// <summary>`sym ADDRESS...`: the nearest symbol at or below each address, with the offset.</summary>
internal static class SymCommand
{
    public static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var addrs = new Argument<string[]>("address") { Arity = ArgumentArity.OneOrMore, Description = "addresses (hex)" };
        var cmd = new Command("sym", "print the nearest symbol and offset for each address") { addrs };
        cmd.SetAction(r =>
        {
            using var kvm = common.Open(r, stderr);
            if (kvm is null)
                return CommandLine.Failure;
            var rc = 0;
            var results = new List<(ulong Address, string Name, ulong Offset)>();
            foreach (var text in r.GetValue(addrs) ?? [])
            {
                if (!Output.TryNumber(text, hexDefault: true, out var a))
                {
                    stderr.WriteLine($"kvmtyped: bad address \"{text}\"");
                    rc = CommandLine.Failure;
                    continue;
                }
                if (!kvm.TryFindSymbol(a, out var name, out var off))
                {
                    stderr.WriteLine($"kvmtyped: no symbol at or below {Output.Hex(a)}");
                    rc = CommandLine.Failure;
                    continue;
                }
                results.Add((a, name, off));
            }
            if (r.GetValue(common.Json))
            {
                stdout.WriteLine(Output.Json(w =>
                {
                    w.WriteStartArray();
                    foreach (var (a, n, o) in results)
                    {
                        w.WriteStartObject();
                        w.WriteString("address", Output.Hex(a));
                        w.WriteString("symbol", n);
                        w.WriteNumber("offset", o);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }));
            }
            else
            {
                var width = kvm.PointerSize * 2;
                foreach (var (a, n, o) in results)
                    stdout.WriteLine($"{a.ToString("x" + width, CultureInfo.InvariantCulture)} {Output.Escape(n)}{(o == 0 ? "" : "+" + Output.Hex(o))}");
            }
            return rc;
        });
        return cmd;
    }
}
