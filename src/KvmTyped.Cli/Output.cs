using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace KvmTyped.Cli;

/// <summary>Formatting shared by the commands.</summary>
internal static class Output
{
    public static string Hex(ulong v) => "0x" + v.ToString("x", CultureInfo.InvariantCulture);

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
        if (!physical && kvm is not null && kvm.TryGetSymbol(head, out var sym))
        {
            address = sym + offset;
            return true;
        }
        if (TryNumber(head, hexDefault: true, out var a))
        {
            address = a + offset;
            return true;
        }
        error = physical ? $"bad physical address \"{text}\"" : $"no symbol \"{head}\" and not an address";
        return false;
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
