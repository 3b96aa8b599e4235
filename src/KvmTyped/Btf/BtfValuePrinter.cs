using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace KvmTyped.Btf;

/// <summary>A value decoded through BTF: a struct or union's members, an array's elements, or a scalar.</summary>
internal abstract record BtfValue;

/// <summary>A struct or union: its named members in order (anonymous members' own members stand in their place).</summary>
/// <param name="Members">Name, byte offset from the outermost object, and value of each member.</param>
internal sealed record BtfStructValue(IReadOnlyList<(string Name, long Offset, BtfValue Value)> Members) : BtfValue;

/// <summary>An array's elements (at most <see cref="BtfValuePrinter.MaxArrayElements"/>; <paramref name="Cut"/> when more).</summary>
internal sealed record BtfArrayValue(IReadOnlyList<BtfValue> Elements, bool Cut) : BtfValue;

/// <summary>A scalar: its text as C tools print it, and how JSON should carry it.</summary>
/// <param name="Text">Decimal integer, "0x…" pointer, the text of a char array, enumerator name, true/false.</param>
/// <param name="Kind">What the text is.</param>
internal sealed record BtfScalarValue(string Text, BtfScalarKind Kind) : BtfValue;

/// <summary>How a scalar is written in JSON.</summary>
internal enum BtfScalarKind
{
    /// <summary>An integer or float.</summary>
    Number,

    /// <summary>The text of a char array, up to its first NUL.</summary>
    Text,

    /// <summary>A pointer, "0x…", or bytes of a type with no other form.</summary>
    Pointer,

    /// <summary>An enumerator's name.</summary>
    Enumerator,

    /// <summary>true or false.</summary>
    Bool,
}

/// <summary>Decodes a value of a BTF type from its bytes and prints it the way crash's <c>struct</c> command does
/// (members one per line, nested structs indented, char arrays as strings, pointers in hex, enums by name), or as JSON.</summary>
internal sealed class BtfValuePrinter
{
    /// <summary>Longest array decoded element by element; longer ones are cut.</summary>
    public const int MaxArrayElements = 64;

    /// <summary>Most values one <see cref="Decode"/> builds: structs that hold the same struct type several times
    /// over, level after level, would otherwise expand exponentially.</summary>
    public const int MaxValues = 1 << 20;

    private const int MaxDepth = 32;

    private readonly BtfTypes _types;

    /// <summary>Creates a printer over a type graph.</summary>
    public BtfValuePrinter(BtfTypes types) => _types = types;

    /// <summary>Whether text output shows each member's byte offset (crash's <c>struct -o</c>).</summary>
    public bool ShowOffsets { get; init; }

    /// <summary>Decodes <paramref name="data"/> as a value of type <paramref name="typeId"/>.</summary>
    /// <exception cref="KvmException">Types nest deeper than 32 levels, or the value has more than
    /// <see cref="MaxValues"/> parts.</exception>
    public BtfValue Decode(int typeId, ReadOnlySpan<byte> data)
    {
        int budget = MaxValues;
        return Value(_types.Resolve(typeId), data, 0, 0, ref budget);
    }

    private void Spend(ref int budget, int id)
    {
        if (--budget < 0)
            throw new KvmException($"{_types.SourceName}: a value of BTF type {id} has more than {MaxValues} parts (struct types contained over and over?)");
    }

    /// <summary>Writes the value in C-like text, headed by the type's name and the address.</summary>
    public void WriteText(TextWriter o, int typeId, ReadOnlySpan<byte> data, string? address)
    {
        ArgumentNullException.ThrowIfNull(o);
        var sb = new StringBuilder(_types.FormatType(typeId));
        if (address is not null)
            sb.Append(' ').Append(address);
        sb.Append(" {\n");
        if (Decode(typeId, data) is BtfStructValue s)
            Text(sb, s, 1);
        sb.Append("}\n");
        o.Write(sb.ToString());
    }

    /// <summary>Writes {"type":…,"address":…,"value":{member:value,…}}.</summary>
    public void WriteJson(Utf8JsonWriter w, int typeId, ReadOnlySpan<byte> data, string? address)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject();
        w.WriteString("type", _types.FormatType(typeId));
        if (address is not null)
            w.WriteString("address", address);
        w.WritePropertyName("value");
        Json(w, Decode(typeId, data));
        w.WriteEndObject();
    }

    private void Text(StringBuilder sb, BtfStructValue s, int indent)
    {
        foreach (var (name, offset, value) in s.Members)
        {
            sb.Append(' ', indent * 2);
            if (ShowOffsets)
                sb.Append("[0x").Append(offset.ToString("x", CultureInfo.InvariantCulture)).Append("] ");
            sb.Append(name).Append(" = ");
            if (value is BtfStructValue inner)
            {
                sb.Append("{\n");
                Text(sb, inner, indent + 1);
                sb.Append(' ', indent * 2).Append("},\n");
            }
            else
                sb.Append(Inline(value)).Append(",\n");
        }
    }

    private static string Inline(BtfValue v) => v switch
    {
        BtfScalarValue { Kind: BtfScalarKind.Text } s => "\"" + JsonEncodedText.Encode(s.Text, System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping).ToString() + "\"",
        BtfScalarValue s => s.Text,
        BtfArrayValue a => "{" + string.Join(", ", a.Elements.Select(Inline)) + (a.Cut ? ", …" : "") + "}",
        BtfStructValue => "{…}",
        _ => "?",
    };

    private static void Json(Utf8JsonWriter w, BtfValue v)
    {
        switch (v)
        {
            case BtfStructValue s:
                w.WriteStartObject();
                foreach (var (name, _, value) in s.Members)
                {
                    w.WritePropertyName(name);
                    Json(w, value);
                }
                w.WriteEndObject();
                break;
            case BtfArrayValue a:
                w.WriteStartArray();
                foreach (var e in a.Elements)
                    Json(w, e);
                w.WriteEndArray();
                break;
            case BtfScalarValue { Kind: BtfScalarKind.Number } n:
                JsonNumber.WriteText(w, n.Text);
                break;
            case BtfScalarValue { Kind: BtfScalarKind.Bool } b:
                w.WriteBooleanValue(b.Text == "true");
                break;
            case BtfScalarValue s:
                w.WriteStringValue(s.Text);
                break;
        }
    }

    private BtfValue Value(int id, ReadOnlySpan<byte> data, long bitOffset, int depth, ref int budget)
    {
        if (depth > MaxDepth)
            throw new KvmException($"type nesting deeper than {MaxDepth}");
        Spend(ref budget, id);
        var kind = _types.KindOf(id);
        if (kind is BtfKind.Struct or BtfKind.Union)
        {
            var members = new List<(string, long, BtfValue)>();
            Collect(members, id, data, bitOffset, depth, ref budget);
            return new BtfStructValue(members);
        }
        if (kind == BtfKind.Array)
            return Array(id, data, bitOffset >> 3, depth, ref budget);
        return Scalar(id, data, bitOffset >> 3);
    }

    private void Collect(List<(string, long, BtfValue)> members, int id, ReadOnlySpan<byte> data, long baseBits, int depth, ref int budget)
    {
        if (depth > MaxDepth)
            throw new KvmException($"type nesting deeper than {MaxDepth} (a struct that contains itself?)");
        foreach (var m in _types.GetMembers(id))
        {
            Spend(ref budget, id);
            var bits = baseBits + m.BitOffset;
            var resolved = _types.Resolve(m.TypeId);
            if (m.Name.Length == 0 && _types.KindOf(resolved) is BtfKind.Struct or BtfKind.Union)
            {
                Collect(members, resolved, data, bits, depth + 1, ref budget);
                continue;
            }
            BtfValue value = m.IsBitfield
                ? Bitfield(data, bits, m.BitfieldSize, IsSigned(resolved))
                : Value(resolved, data, bits, depth + 1, ref budget);
            members.Add((m.Name, bits >> 3, value));
        }
    }

    private bool IsSigned(int id) => _types.KindOf(id) == BtfKind.Int && _types.GetInt(id).IsSigned;

    private BtfScalarValue Bitfield(ReadOnlySpan<byte> data, long bitOffset, int width, bool signed)
    {
        if (width > 64)
            return new BtfScalarValue("(bitfield wider than 64 bits)", BtfScalarKind.Pointer);
        if (bitOffset < 0 || bitOffset > (long)data.Length * 8 - width)
            return new BtfScalarValue("(outside the object)", BtfScalarKind.Pointer);
        long v = ExtractBits(data, bitOffset, width, signed, _types.IsBigEndian);
        return new BtfScalarValue(signed ? v.ToString(CultureInfo.InvariantCulture) : unchecked((ulong)v).ToString(CultureInfo.InvariantCulture), BtfScalarKind.Number);
    }

    /// <summary>Bits <paramref name="bitOffset"/>… of <paramref name="data"/>, which must hold them; little-endian
    /// BTF numbers bits from the lowest bit of byte 0, big-endian BTF from the highest, as the compilers lay them out.</summary>
    internal static long ExtractBits(ReadOnlySpan<byte> data, long bitOffset, int width, bool signed, bool bigEndian)
    {
        ulong v = 0;
        for (var i = 0; i < width; i++)
        {
            var bit = bitOffset + i;
            var b = data[(int)(bit >> 3)];
            if (bigEndian)
                v = (v << 1) | (uint)((b >> (7 - (int)(bit & 7))) & 1);
            else if (((b >> (int)(bit & 7)) & 1) != 0)
                v |= 1UL << i;
        }
        if (signed && width is > 0 and < 64 && ((v >> (width - 1)) & 1) != 0)
            v |= ulong.MaxValue << width;
        return unchecked((long)v);
    }

    private BtfScalarValue Scalar(int id, ReadOnlySpan<byte> data, long offset)
    {
        var kind = _types.KindOf(id);
        var size = _types.TrySizeOf(id, out var s, out _) ? s : 0;
        if (offset < 0 || size < 0 || offset > data.Length - size)
            return new BtfScalarValue("(outside the object)", BtfScalarKind.Pointer);
        var bytes = data.Slice((int)offset, (int)size);
        switch (kind)
        {
            case BtfKind.Int:
                var info = _types.GetInt(id);
                if (info.IsBool)
                    return new BtfScalarValue(bytes.IndexOfAnyExcept((byte)0) >= 0 ? "true" : "false", BtfScalarKind.Bool);
                var u = Unsigned(bytes, _types.IsBigEndian);
                if (info.IsSigned && size is > 0 and <= 8)
                {
                    var shift = 64 - (int)size * 8;
                    return new BtfScalarValue((unchecked((long)(u << shift)) >> shift).ToString(CultureInfo.InvariantCulture), BtfScalarKind.Number);
                }
                return new BtfScalarValue(u.ToString(CultureInfo.InvariantCulture), BtfScalarKind.Number);
            case BtfKind.Ptr:
                return new BtfScalarValue("0x" + Unsigned(bytes, _types.IsBigEndian).ToString("x", CultureInfo.InvariantCulture), BtfScalarKind.Pointer);
            case BtfKind.Enum or BtfKind.Enum64:
                var value = Unsigned(bytes, _types.IsBigEndian);
                var mask = size >= 8 ? ulong.MaxValue : (1UL << (int)(size * 8)) - 1;
                foreach (var e in _types.GetEnumValues(id))
                    if ((e.UnsignedValue & mask) == value)
                        return new BtfScalarValue(e.Name, BtfScalarKind.Enumerator);
                return new BtfScalarValue(value.ToString(CultureInfo.InvariantCulture), BtfScalarKind.Number);
            case BtfKind.Float when size is 4 or 8:
                var f = _types.IsBigEndian
                    ? (size == 4 ? BinaryPrimitives.ReadSingleBigEndian(bytes) : BinaryPrimitives.ReadDoubleBigEndian(bytes))
                    : (size == 4 ? BinaryPrimitives.ReadSingleLittleEndian(bytes) : BinaryPrimitives.ReadDoubleLittleEndian(bytes));
                return new BtfScalarValue(double.IsFinite(f) ? f.ToString("R", CultureInfo.InvariantCulture) : "0", BtfScalarKind.Number);
            default:
                return new BtfScalarValue("0x" + Convert.ToHexStringLower(bytes), BtfScalarKind.Pointer);
        }
    }

    private BtfValue Array(int id, ReadOnlySpan<byte> data, long offset, int depth, ref int budget)
    {
        var a = _types.GetArray(id);
        var element = _types.Resolve(a.ElementType);
        var elementSize = _types.TrySizeOf(element, out var es, out _) ? es : 0;
        if (_types.KindOf(element) == BtfKind.Int && elementSize == 1 && (_types.GetInt(element).IsChar || _types.NameOf(element) is "char" or "unsigned char" or "signed char"))
        {
            if (offset < 0)
                return new BtfScalarValue("(outside the object)", BtfScalarKind.Pointer);
            var start = (int)Math.Min(offset, data.Length);
            var raw = data.Slice(start, (int)Math.Min(a.Count, data.Length - start));
            var nul = raw.IndexOf((byte)0);
            return new BtfScalarValue(Encoding.UTF8.GetString(nul >= 0 ? raw[..nul] : raw), BtfScalarKind.Text);
        }
        var n = (int)Math.Min(a.Count, (uint)MaxArrayElements);
        var elements = new List<BtfValue>(n);
        for (var i = 0; i < n; i++)
        {
            if (elementSize < 0 || (elementSize > 0 && i > (long.MaxValue / 8 - offset) / elementSize))
            {
                Spend(ref budget, id);
                elements.Add(new BtfScalarValue("(outside the object)", BtfScalarKind.Pointer));
                continue;
            }
            elements.Add(Value(element, data, (offset + i * elementSize) * 8, depth + 1, ref budget));
        }
        return new BtfArrayValue(elements, a.Count > MaxArrayElements);
    }

    private static ulong Unsigned(ReadOnlySpan<byte> bytes, bool bigEndian)
    {
        if (bigEndian)
        {
            ulong v = 0;
            foreach (var b in bytes[..Math.Min(8, bytes.Length)])
                v = (v << 8) | b;
            return v;
        }
        Span<byte> le = stackalloc byte[8];
        le.Clear();
        bytes[..Math.Min(8, bytes.Length)].CopyTo(le);
        return BinaryPrimitives.ReadUInt64LittleEndian(le);
    }
}
