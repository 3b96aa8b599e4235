using System.CommandLine;
using System.Globalization;
using KvmTyped.Linux;

namespace KvmTyped.Cli;

/// <summary>`mod [NAME...] [-s]`: the loaded modules, as crash's mod and /proc/modules list them.</summary>
internal static class ModCommand
{
    public static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var names = new Argument<string[]>("name") { Arity = ArgumentArity.ZeroOrMore, Description = "module names (default: all)" };
        var symbols = new Option<bool>("--symbols", "-S") { Description = "list each module's symbols (from its in-memory kallsyms)" };
        var cmd = new Command("mod", "list the loaded modules: struct module, name, base, size, state, symbol count; their symbols with -S") { names, symbols };
        cmd.SetAction(r =>
        {
            using var kvm = common.Open(r, stderr);
            if (kvm is null)
                return CommandLine.Failure;
            IReadOnlyList<KernelModule> modules;
            try
            {
                modules = KernelModules.For(kvm).List();
            }
            catch (KvmException e)
            {
                stderr.WriteLine($"kvmtyped: {e.Message}");
                return CommandLine.Failure;
            }
            var rc = 0;
            var wanted = r.GetValue(names) ?? [];
            if (wanted.Length > 0)
            {
                foreach (var n in wanted.Where(n => modules.All(m => m.Name != n)))
                {
                    stderr.WriteLine($"kvmtyped: no module \"{n}\" is loaded");
                    rc = CommandLine.Failure;
                }
                modules = [.. modules.Where(m => wanted.Contains(m.Name))];
            }
            var withSymbols = r.GetValue(symbols);
            if (r.GetValue(common.Json))
                stdout.WriteLine(Json(modules, withSymbols));
            else
                Text(kvm, modules, withSymbols, stdout);
            return rc;
        });
        return cmd;
    }

    private static void Text(Kvm kvm, IReadOnlyList<KernelModule> modules, bool withSymbols, TextWriter o)
    {
        var inv = CultureInfo.InvariantCulture;
        var width = kvm.PointerSize * 2;
        var nameWidth = Math.Max(4, modules.Count == 0 ? 0 : modules.Max(m => Output.Escape(m.Name).Length));
        o.WriteLine($"{"MODULE".PadRight(width)}  {"NAME".PadRight(nameWidth)}  {"BASE".PadRight(width)}  {"SIZE",8}  {"STATE",-9}  SYMBOLS");
        foreach (var m in modules)
        {
            o.WriteLine($"{m.Address.ToString("x" + width, inv)}  {Output.Escape(m.Name).PadRight(nameWidth)}  {m.Base.ToString("x" + width, inv)}  {m.Size.ToString(inv),8}  {m.State,-9}  {m.Symbols.Count.ToString(inv)}");
        }
        if (!withSymbols)
            return;
        foreach (var m in modules)
        {
            o.WriteLine();
            o.WriteLine($"{Output.Escape(m.Name)}:");
            foreach (var s in m.Symbols.OrderBy(s => s.Address).ThenBy(s => s.Name, StringComparer.Ordinal))
                o.WriteLine($"{s.Address.ToString("x" + width, inv)} {Output.Escape(s.Type.ToString())} {Output.Escape(s.Name)}");
        }
    }

    private static string Json(IReadOnlyList<KernelModule> modules, bool withSymbols) => Output.Json(w =>
    {
        w.WriteStartArray();
        foreach (var m in modules)
        {
            w.WriteStartObject();
            w.WriteString("name", m.Name);
            w.WriteString("module", Output.Hex(m.Address));
            w.WriteString("base", Output.Hex(m.Base));
            BtCommand.Number(w, "size", m.Size);
            w.WriteString("state", m.State);
            w.WriteStartArray("memory");
            foreach (var p in m.Memory)
            {
                w.WriteStartObject();
                w.WriteString("kind", p.Kind);
                w.WriteString("base", Output.Hex(p.Base));
                BtCommand.Number(w, "size", p.Size);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNumber("symbolCount", m.Symbols.Count);
            if (withSymbols)
            {
                w.WriteStartArray("symbols");
                foreach (var s in m.Symbols.OrderBy(s => s.Address).ThenBy(s => s.Name, StringComparer.Ordinal))
                {
                    w.WriteStartObject();
                    w.WriteString("name", s.Name);
                    w.WriteString("address", Output.Hex(s.Address));
                    w.WriteString("type", s.Type.ToString());
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });
}
