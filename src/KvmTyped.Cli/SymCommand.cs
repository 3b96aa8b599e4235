using System.CommandLine;
using System.Globalization;
using KvmTyped.Linux;
using KvmTyped.Symbols;

namespace KvmTyped.Cli;

/// <summary>`sym ADDRESS...`: each address as the kernel names code in an oops, func+0xoff/0xlen [module].</summary>
internal static class SymCommand
{
    public static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var addrs = new Argument<string[]>("address") { Arity = ArgumentArity.OneOrMore, Description = "addresses (hex)" };
        var cmd = new Command("sym", "name each address: the symbol it lies in, the offset and the symbol's length, and the module") { addrs };
        cmd.SetAction(r =>
        {
            using var kvm = common.Open(r, stderr);
            if (kvm is null)
                return CommandLine.Failure;
            var rc = 0;
            var results = new List<SymbolizedAddress>();
            var symbolizer = KernelSymbolizer.For(kvm);
            foreach (var text in r.GetValue(addrs) ?? [])
            {
                if (!Output.TryNumber(text, hexDefault: true, out var a))
                {
                    stderr.WriteLine($"kvmtyped: bad address \"{text}\"");
                    rc = CommandLine.Failure;
                    continue;
                }
                var s = symbolizer.Symbolize(a);
                if (!s.IsKnown)
                {
                    stderr.WriteLine($"kvmtyped: {Output.Hex(a)}: {s.Reason}");
                    rc = CommandLine.Failure;
                    continue;
                }
                results.Add(s);
            }
            if (r.GetValue(common.Json))
            {
                stdout.WriteLine(Output.Json(w =>
                {
                    w.WriteStartArray();
                    foreach (var s in results)
                    {
                        w.WriteStartObject();
                        w.WriteString("address", Output.Hex(s.Address));
                        w.WriteString("symbol", s.Name);
                        BtCommand.Number(w, "offset", s.Offset);
                        BtCommand.Number(w, "size", s.Size);
                        if (s.Module is { } module)
                            w.WriteString("module", module);
                        else
                            w.WriteNull("module");
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }));
            }
            else
            {
                var width = kvm.PointerSize * 2;
                foreach (var s in results)
                    stdout.WriteLine($"{s.Address.ToString("x" + width, CultureInfo.InvariantCulture)} {Output.Escape(s.ToString())}");
            }
            return rc;
        });
        return cmd;
    }
}
