using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace KvmTyped.Tests.Btf;

/// <summary>A member as pahole prints it, anonymous structs and unions flattened in (pahole prints the offsets
/// of their members from the start of the outermost struct). Bitfields carry BitSize &gt; 0 and an absolute
/// BitOffset (pahole prints the storage unit's byte offset and the bit within it, counted from the lowest bit).</summary>
internal readonly record struct PaholeField(string Name, long Offset, long Size, long BitOffset, int BitSize);

internal sealed record PaholeStruct(string Keyword, string Name, long Size, List<PaholeField> Fields);

/// <summary>Runs pahole (dwarves) and reads its struct layouts.</summary>
internal static partial class Pahole
{
    public static string Run(params string[] args)
    {
        var psi = new ProcessStartInfo("pahole")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException("pahole did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Fail($"pahole is not installed (Debian package dwarves): {e.Message}");
            throw;
        }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            string stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            _ = stderr.Result;
            Assert.True(process.ExitCode == 0, $"pahole {string.Join(' ', args)} exited with {process.ExitCode}");
            return stdout;
        }
    }

    /// <summary>`pahole --sizes`: every named struct and union with its size.</summary>
    public static Dictionary<string, long> Sizes(string file)
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in Run("-F", "btf", "--sizes", file).Split('\n'))
        {
            var parts = line.Split('\t');
            if (parts.Length >= 2 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long size))
                result.TryAdd(parts[0], size);
        }
        return result;
    }

    [GeneratedRegex(@"^(struct|union) (\S+) \{$")]
    private static partial Regex Header();

    [GeneratedRegex(@"/\*\s*(\d+)(?::\s*(\d+))?\s+(\d+)\s*\*/$")]
    private static partial Regex OffsetComment();

    [GeneratedRegex(@"/\*\s*size:\s*(\d+),")]
    private static partial Regex SizeComment();

    [GeneratedRegex(@"\s*__attribute__\(\((?:[^()]|\([^()]*\))*\)\)")]
    private static partial Regex Attribute();

    [GeneratedRegex(@":\s*(\d+)$")]
    private static partial Regex BitfieldWidth();

    /// <summary>The name in a function-pointer declarator, after any qualifiers of the pointers:
    /// <c>int (*filter)(…)</c>, <c>int (*const filter)(…)</c>, <c>void (* volatile *cb)(void)</c>.</summary>
    [GeneratedRegex(@"\(\s*(?:\*\s*(?:(?:const|volatile|restrict)\b\s*)*)+(\w+)")]
    private static partial Regex FunctionPointerName();

    [GeneratedRegex(@"(\w+)\s*(\[[^\]]*\]\s*)*$")]
    private static partial Regex LastIdentifier();

    /// <summary>Parses `pahole -C` output (or output in its format) into structs with flattened members.</summary>
    public static Dictionary<string, PaholeStruct> Parse(string text)
    {
        var result = new Dictionary<string, PaholeStruct>(StringComparer.Ordinal);
        PaholeStruct? current = null;
        var stack = new Stack<List<PaholeField>>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd();
            if (current is null)
            {
                var h = Header().Match(line);
                if (h.Success)
                {
                    current = new PaholeStruct(h.Groups[1].Value, h.Groups[2].Value, -1, []);
                    stack.Clear();
                    stack.Push(current.Fields);
                }
                continue;
            }
            if (line.StartsWith('}'))
            {
                result[current.Name] = current;
                current = null;
                continue;
            }
            var body = line.Trim();
            if (body.Length == 0)
                continue;
            if (body.StartsWith("/*", StringComparison.Ordinal))
            {
                var s = SizeComment().Match(body);
                if (s.Success && stack.Count == 1)
                    current = current with { Size = long.Parse(s.Groups[1].Value, CultureInfo.InvariantCulture) };
                continue;
            }
            if (body.EndsWith('{'))
            {
                stack.Push([]);
                continue;
            }
            var c = OffsetComment().Match(body);
            if (body.StartsWith('}'))
            {
                var inner = stack.Pop();
                var decl = Declarator(body, c)[1..].Trim();
                if (decl.Length == 0)
                {
                    stack.Peek().AddRange(inner);
                    continue;
                }
                var bw = BitfieldWidth().Match(decl);
                int bits = bw.Success ? int.Parse(bw.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
                stack.Peek().Add(Field(Name(bw.Success ? decl[..bw.Index].TrimEnd() : decl), c, bits));
                continue;
            }
            if (!c.Success)
                continue; // pahole's reconstructed "unsigned int :0;" padding carries no offset
            var d = Declarator(body, c);
            int width = 0;
            var w = BitfieldWidth().Match(d);
            if (w.Success)
            {
                width = int.Parse(w.Groups[1].Value, CultureInfo.InvariantCulture);
                d = d[..w.Index].TrimEnd();
            }
            stack.Peek().Add(Field(Name(d), c, width));
        }
        return result;
    }

    private static string Declarator(string body, Match comment)
    {
        var d = comment.Success ? body[..comment.Index] : body;
        d = d.Trim().TrimEnd(';').TrimEnd();
        return Attribute().Replace(d, "").Trim();
    }

    private static string Name(string declarator)
    {
        var f = FunctionPointerName().Match(declarator);
        if (f.Success)
            return f.Groups[1].Value;
        var m = LastIdentifier().Match(declarator);
        return m.Success ? m.Groups[1].Value : declarator;
    }

    private static PaholeField Field(string name, Match c, int bits)
    {
        long offset = long.Parse(c.Groups[1].Value, CultureInfo.InvariantCulture);
        long size = long.Parse(c.Groups[3].Value, CultureInfo.InvariantCulture);
        long bit = c.Groups[2].Success ? long.Parse(c.Groups[2].Value, CultureInfo.InvariantCulture) : 0;
        return new PaholeField(name, offset, size, offset * 8 + bit, bits);
    }
}
