using System.Globalization;
using System.Text;
using System.Text.Json;
using KvmTyped.Btf;

namespace KvmTyped.Tools;

/// <summary>Prints struct and union layouts from BTF: as text in pahole's style (<c>type name; /* offset size */</c>,
/// bitfields <c>/* offset:bit size */</c>, anonymous and anonymous-typed members inline with offsets from the start
/// of the outermost struct, a <c>/* size: …, cachelines: …, members: … */</c> summary), or as JSON in the shape of
/// <c>kvmtyped schema layout --json</c>.</summary>
public static class BtfDump
{
    private const int CommentColumn = 56;
    private const int TypeWidth = 26;
    private const int CacheLine = 64;

    /// <summary>Writes the layouts of the structs and unions <paramref name="names"/> (every named one when empty)
    /// as text in pahole's style.</summary>
    /// <exception cref="KvmException">A name matches no struct or union.</exception>
    public static void WriteText(KernelBtf btf, IReadOnlyList<string> names, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(btf);
        WriteText(btf.Types, FindComposites(btf.Types, names), output);
    }

    /// <summary>Writes the layouts of the structs and unions <paramref name="names"/> (every named one when empty)
    /// as JSON in the shape of <c>kvmtyped schema layout --json</c>.</summary>
    /// <exception cref="KvmException">A name matches no struct or union.</exception>
    public static void WriteJson(KernelBtf btf, IReadOnlyList<string> names, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(btf);
        WriteJson(btf.Types, FindComposites(btf.Types, names), output);
    }

    /// <summary>Finds the structs and unions to print. A name may be "task_struct", "struct task_struct",
    /// "union thread_union" or a typedef of a struct or union. No names: every named struct and union.</summary>
    /// <exception cref="KvmException">A name matches no struct or union.</exception>
    internal static IReadOnlyList<int> FindComposites(BtfTypes types, IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(types);
        ArgumentNullException.ThrowIfNull(names);
        var ids = new List<int>();
        if (names.Count == 0)
        {
            for (int id = 1; id <= types.LastId; id++)
            {
                if (types.KindOf(id) is BtfKind.Struct or BtfKind.Union && types.Get(id).NameOffset != 0)
                    ids.Add(id);
            }
            return ids;
        }
        foreach (var name in names)
        {
            if (!types.TryFindComposite(name, out int id))
                throw new KvmException($"{types.SourceName}: no struct or union named '{name}' in its BTF");
            ids.Add(id);
        }
        return ids;
    }

    /// <summary>Writes the layouts of <paramref name="ids"/> as text, one after another.</summary>
    internal static void WriteText(BtfTypes types, IEnumerable<int> ids, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(types);
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(output);
        foreach (int id in ids)
            output.Write(ToText(types, id));
    }

    /// <summary>The layout of one struct or union as text.</summary>
    internal static string ToText(BtfTypes types, int id)
    {
        ArgumentNullException.ThrowIfNull(types);
        int r = types.Resolve(id);
        var t = types.Get(r);
        if (t.Kind is not (BtfKind.Struct or BtfKind.Union))
            throw new ArgumentException($"type id {id} is {t.Kind}, not a struct or union", nameof(id));
        var sb = new StringBuilder();
        string keyword = t.Kind == BtfKind.Struct ? "struct" : "union";
        string name = types.NameOf(r);
        sb.Append(keyword).Append(' ').Append(name.Length == 0 ? "{...}" : name).Append(" {\n");
        long lastCacheLine = 0;
        Body(types, r, 0, 1, sb, ref lastCacheLine, r);
        if (t.Kind == BtfKind.Struct)
        {
            long size = t.SizeOrType;
            sb.Append('\n');
            sb.Append(CultureInfo.InvariantCulture, $"\t/* size: {size}, cachelines: {(size + CacheLine - 1) / CacheLine}, members: {t.Vlen} */\n");
            if (size % CacheLine != 0)
                sb.Append(CultureInfo.InvariantCulture, $"\t/* last cacheline: {size % CacheLine} bytes */\n");
        }
        sb.Append("};\n");
        return sb.ToString();
    }

    /// <summary>Most text one dump may produce.</summary>
    private const int MaxText = 16 << 20;

    private static void Body(BtfTypes types, int id, long baseBits, int level, StringBuilder sb, ref long lastCacheLine, int outer)
    {
        if (level > BtfTypes.MaxNesting)
            throw types.Fail(outer, $"members nest deeper than {BtfTypes.MaxNesting} (a cycle?)");
        // Anonymous members are inlined: types shared at every level would double the text per level.
        if (sb.Length > MaxText)
            throw types.Fail(outer, $"the layout of this type takes more than {MaxText} characters to print (anonymous types shared over and over?)");
        bool isStruct = types.KindOf(id) == BtfKind.Struct;
        long? previousEnd = null;
        foreach (var m in types.GetMembers(id))
        {
            long bits = baseBits + m.BitOffset;
            long offset = bits >> 3;
            if (isStruct && !m.IsBitfield && previousEnd is long end && offset > end)
            {
                long hole = offset - end;
                sb.Append('\n').Append('\t', level).Append(CultureInfo.InvariantCulture, $"/* XXX {hole} byte{(hole == 1 ? "" : "s")} hole, try to pack */\n\n");
            }
            if (offset / CacheLine > lastCacheLine)
            {
                lastCacheLine = offset / CacheLine;
                long boundary = lastCacheLine * CacheLine;
                sb.Append('\t', level).Append(CultureInfo.InvariantCulture, $"/* --- cacheline {lastCacheLine} boundary ({boundary} bytes)");
                sb.Append(offset == boundary ? " --- */\n" : string.Create(CultureInfo.InvariantCulture, $" was {offset - boundary} bytes ago --- */\n"));
            }
            int r = types.StripQualifiers(m.TypeId);
            var rk = types.KindOf(r);
            previousEnd = m.IsBitfield ? null : offset + (types.TrySizeOf(m.TypeId, out long memberSize, out _) ? memberSize : 0);
            if (rk is BtfKind.Struct or BtfKind.Union && types.Get(r).NameOffset == 0)
            {
                // Anonymous struct or union type: print it inline, as pahole does.
                sb.Append('\t', level).Append(rk == BtfKind.Struct ? "struct {\n" : "union {\n");
                Body(types, r, bits, level + 1, sb, ref lastCacheLine, outer);
                string close = m.Name.Length == 0 ? "};" : "} " + m.Name + ";";
                Line(sb, level, close, Comment(offset, types.SizeOf(r)));
                continue;
            }
            if (m.Name.Length == 0 && m.BitfieldSize == 0)
                continue;
            long size = types.SizeOf(m.TypeId);
            string decl = types.FormatDeclaration(m.TypeId, m.Name.Length == 0 ? "" : m.Name);
            string text = Split(decl, m.Name, level) + (m.IsBitfield ? ":" + m.BitfieldSize.ToString(CultureInfo.InvariantCulture) : "") + ";";
            string comment;
            if (m.IsBitfield && size > 0)
            {
                long unit = bits / (size * 8) * size;
                comment = string.Create(CultureInfo.InvariantCulture, $"/* {unit,5}:{bits - unit * 8,2} {size,2} */");
            }
            else
            {
                comment = Comment(offset, size);
            }
            Line(sb, level, text, comment);
        }
    }

    private static string Comment(long offset, long size) => string.Create(CultureInfo.InvariantCulture, $"/* {offset,5} {size,5} */");

    /// <summary>"struct sk_buff *next" → "struct sk_buff *" padded, then "next"; declarations whose name is not at
    /// the end of the type part (function pointers) print whole.</summary>
    private static string Split(string decl, string name, int level)
    {
        int width = Math.Max(0, TypeWidth - 8 * (level - 1));
        if (name.Length == 0 || decl.Contains("(*", StringComparison.Ordinal))
            return decl;
        for (int at = decl.LastIndexOf(name, StringComparison.Ordinal); at > 0; at = decl.LastIndexOf(name, at - 1, StringComparison.Ordinal))
        {
            int after = at + name.Length;
            if (decl[at - 1] is ' ' or '*' && (after == decl.Length || decl[after] == '['))
                return decl[..at].TrimEnd().PadRight(width) + " " + decl[at..];
            if (at == 0)
                break;
        }
        return decl;
    }

    private static void Line(StringBuilder sb, int level, string text, string comment)
    {
        sb.Append('\t', level).Append(text);
        int column = 8 * level + text.Length;
        if (column < CommentColumn)
            sb.Append(' ', CommentColumn - column);
        sb.Append(' ').Append(comment).Append('\n');
    }

    /// <summary>Writes the layouts as JSON: <c>{"structs":[{"name","size","fields":[{"name","offset","size"} |
    /// {"name","bitOffset","bitSize"}]}]}</c>, anonymous members flattened in, bit offsets counted from the start of
    /// the struct (bit 0 = lowest bit of byte 0).</summary>
    internal static void WriteJson(BtfTypes types, IEnumerable<int> ids, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(types);
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(output);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartArray("structs");
            foreach (int id in ids)
            {
                int r = types.Resolve(id);
                json.WriteStartObject();
                json.WriteString("name", types.NameOf(r));
                JsonNumber.Write(json, "size", types.SizeOf(r));
                json.WriteStartArray("fields");
                foreach (var f in types.GetFlattenedMembers(r))
                {
                    json.WriteStartObject();
                    json.WriteString("name", f.Name);
                    if (f.IsBitfield)
                    {
                        JsonNumber.Write(json, "bitOffset", f.BitOffset);
                        json.WriteNumber("bitSize", f.BitSize);
                    }
                    else
                    {
                        JsonNumber.Write(json, "offset", f.Offset);
                        JsonNumber.Write(json, "size", f.Size);
                    }
                    json.WriteEndObject();
                }
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        output.Write(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        output.Write('\n');
    }
}
