using System.Globalization;
using System.Text.Json;

namespace KvmTyped.Btf;

/// <summary>Integers in the library's JSON: JSON numbers while a reader that parses them as IEEE doubles (JavaScript,
/// jq) keeps every digit, that is up to 2^53 in magnitude; above it, <c>"0x…"</c> strings (<c>"-0x…"</c> when
/// negative), as addresses are written.</summary>
internal static class JsonNumber
{
    /// <summary>The largest magnitude written as a JSON number (2^53).</summary>
    public const ulong MaxExact = 1UL << 53;

    /// <summary>Writes <paramref name="value"/> as a property.</summary>
    public static void Write(Utf8JsonWriter w, string name, long value)
    {
        w.WritePropertyName(name);
        WriteValue(w, value);
    }

    /// <summary>Writes <paramref name="value"/> as a property.</summary>
    public static void Write(Utf8JsonWriter w, string name, ulong value)
    {
        w.WritePropertyName(name);
        WriteValue(w, value);
    }

    /// <summary>Writes <paramref name="value"/> as a value.</summary>
    public static void WriteValue(Utf8JsonWriter w, long value)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (value < 0)
        {
            var magnitude = unchecked((ulong)-(value + 1)) + 1;
            if (magnitude <= MaxExact)
                w.WriteNumberValue(value);
            else
                w.WriteStringValue("-0x" + magnitude.ToString("x", CultureInfo.InvariantCulture));
        }
        else
            WriteValue(w, (ulong)value);
    }

    /// <summary>Writes <paramref name="value"/> as a value.</summary>
    public static void WriteValue(Utf8JsonWriter w, ulong value)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (value <= MaxExact)
            w.WriteNumberValue(value);
        else
            w.WriteStringValue("0x" + value.ToString("x", CultureInfo.InvariantCulture));
    }

    /// <summary>Writes a decimal integer's text as <see cref="WriteValue(Utf8JsonWriter, long)"/> does, and any other number
    /// (a float) as it is.</summary>
    public static void WriteText(Utf8JsonWriter w, string text)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var u))
            WriteValue(w, u);
        else if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
            WriteValue(w, l);
        else
            w.WriteRawValue(text);
    }
}
