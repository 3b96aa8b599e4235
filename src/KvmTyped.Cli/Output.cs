using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace KvmTyped.Cli;

/// <summary>Formatting shared by the commands.</summary>
internal static class Output
{
    /// <summary>Why a file cannot be read, as every command says it (perror's words, as the library's own file layer
    /// says them): "No such file or directory", "Permission denied", else the system's message.</summary>
    public static string FileError(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => "No such file or directory",
        UnauthorizedAccessException => "Permission denied",
        _ => e.Message,
    };

    public static string Hex(ulong v) => "0x" + v.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>Text from the input (a dump, a namelist, a schema) made safe for a terminal, as dmesg does: every
    /// control character — C0 (but tab, and newline when <paramref name="keepNewlines"/>), DEL and C1 — becomes
    /// <c>\xNN</c>, so no escape sequence reaches the terminal and no carriage return or vertical tab splits a
    /// line. The one escaping function of the tool: every text writer it prints through applies it (keeping the
    /// newlines the tool writes), and values that must stay on one line (a comm, a symbol name) pass through it
    /// with <paramref name="keepNewlines"/> false.</summary>
    public static string Escape(string text, bool keepNewlines = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var i = FirstToEscape(text, keepNewlines);
        if (i < 0)
            return text;
        var sb = new StringBuilder(text.Length + 16);
        sb.Append(text, 0, i);
        for (; i < text.Length; i++)
        {
            var c = text[i];
            if (NeedsEscape(c, keepNewlines))
                sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else
                sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>Where the first character <see cref="Escape"/> would escape is, or -1.</summary>
    private static int FirstToEscape(ReadOnlySpan<char> text, bool keepNewlines)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (NeedsEscape(text[i], keepNewlines))
                return i;
        }
        return -1;
    }

    private static bool NeedsEscape(char c, bool keepNewlines) =>
        (c < 0x20 && c != '\t' && !(keepNewlines && c == '\n')) || (c >= 0x7f && c < 0xa0);

    /// <summary>A writer that passes text on through <see cref="Escape"/>, newlines kept: what the tool's commands
    /// print to standard output and standard error.</summary>
    public static TextWriter Escaping(TextWriter inner) => inner is EscapingWriter ? inner : new EscapingWriter(inner);

    /// <summary>The writer under an <see cref="Escaping"/> one (progress on a terminal writes its own carriage returns).</summary>
    public static TextWriter Unescaped(TextWriter writer) => ApiTerms.Unwrap(writer is EscapingWriter e ? e.Inner : writer);

    private sealed class EscapingWriter(TextWriter inner) : TextWriter(CultureInfo.InvariantCulture)
    {
        public TextWriter Inner => inner;

        public override Encoding Encoding => inner.Encoding;

        public override void Write(char value)
        {
            if (NeedsEscape(value, keepNewlines: true))
                inner.Write(Escape(value.ToString(), keepNewlines: true));
            else
                inner.Write(value);
        }

        public override void Write(string? value) => inner.Write(value is null ? null : Escape(value, keepNewlines: true));

        public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

        // Text with nothing to escape (nearly all of it) goes on as it is, without a string made of it.
        public override void Write(ReadOnlySpan<char> buffer)
        {
            if (FirstToEscape(buffer, keepNewlines: true) < 0)
                inner.Write(buffer);
            else
                inner.Write(Escape(new string(buffer), keepNewlines: true));
        }

        public override void WriteLine(string? value) => inner.WriteLine(value is null ? null : Escape(value, keepNewlines: true));

        public override void WriteLine() => inner.WriteLine();

        public override void Flush() => inner.Flush();
    }

    /// <summary>A count, size or offset as a JSON number while a double holds it exactly (up to 2^53), above as a "0x…"
    /// string (as addresses are written): the one rule for integers in every command's JSON.</summary>
    public static void Number(Utf8JsonWriter w, string name, ulong value)
    {
        if (value <= 1UL << 53)
            w.WriteNumber(name, value);
        else
            w.WriteString(name, Hex(value));
    }

    /// <summary>As <see cref="Number(Utf8JsonWriter, string, ulong)"/>; a negative value below -2^53 is "-0x…".</summary>
    public static void Number(Utf8JsonWriter w, string name, long value)
    {
        if (value >= 0)
            Number(w, name, (ulong)value);
        else if (value >= -(1L << 53))
            w.WriteNumber(name, value);
        else
            w.WriteString(name, "-" + Hex(unchecked((ulong)-(value + 1)) + 1));
    }

    public static string Json(Action<Utf8JsonWriter> write)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            write(w);
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>Parses "ADDRESS", "SYMBOL", "SYMBOL+OFF" or "ADDRESS+OFF": symbols win over hex-looking
    /// names; a bare number is hex (as crash reads it); an offset is hex with 0x, else decimal.</summary>
    public static bool TryResolve(Kvm? kvm, string text, bool physical, out ulong address, out string error)
    {
        address = 0;
        error = "";
        var plus = text.IndexOf('+', StringComparison.Ordinal);
        var head = plus >= 0 ? text[..plus] : text;
        ulong offset = 0;
        if (plus >= 0 && !TryNumber(text[(plus + 1)..], hexDefault: false, out offset))
        {
            error = $"bad offset in \"{text}\"";
            return false;
        }
        ulong @base;
        if (!physical && kvm is not null && kvm.TryGetSymbol(head, out var sym))
            @base = sym;
        else if (TryNumber(head, hexDefault: true, out var a))
            @base = a;
        else
        {
            error = physical ? $"bad physical address \"{text}\"" : $"no symbol \"{head}\" and not an address";
            return false;
        }
        // A virtual address is a kernel pointer: it ends at the top of the kernel's address space, and an
        // expression past it would wrap around to an address nobody asked for.
        var top = physical || kvm is null || kvm.PointerSize == 8 ? ulong.MaxValue : uint.MaxValue;
        if (@base > top || offset > top - @base)
        {
            error = $"\"{text}\": {Hex(@base)} + {Hex(offset)} overflows the {(top == uint.MaxValue ? 32 : 64)}-bit {(physical ? "physical" : "virtual")} address space";
            return false;
        }
        address = @base + offset;
        return true;
    }

    public static bool TryNumber(string s, bool hexDefault, out ulong value)
    {
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        return hexDefault
            ? ulong.TryParse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
            : ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }
}
