using System.Globalization;
using System.Text;
using KvmTyped.Btf;

namespace KvmTyped.Tools;

/// <summary>Writes C schemas (the language of schemas/README.md) from a kernel's BTF: complete structs with
/// everything they embed, or preserve_access_index subsets of chosen members.</summary>
/// <remarks>
/// Complete structs are written so that the System V layout of the text equals the BTF's: where the computed place
/// of a member falls before the kernel's (alignment the BTF does not record, <c>__aligned</c> members, holes),
/// explicit padding members named <c>__kvmtyped_padN</c> (unnamed bitfields between bitfields) are inserted; a
/// struct whose members sit closer than their alignment allows is written <c>__attribute__((packed))</c>.
/// Typedefs of anonymous structs, unions and enums are written as such typedefs; typedefs KvmTyped knows built in
/// (u32, pid_t, …) are kept; other typedefs are spelled out (a kernel's scalar typedef names, e.g. dev_t, may differ
/// from the C library's that a compiler sees). A zero-length array is written as a flexible array member when it is
/// the last member of a struct that needs no tail padding, and left out elsewhere, as are members of empty structs (they take no room). Pointers to functions, to
/// anonymous records and to arrays are written <c>void *</c> (same size); enums whose size is not 4 are written as
/// the integer of their size. Dependencies come first: a struct embedded by value is defined before its user,
/// a struct only pointed to is declared. C has one struct per tag: where the BTF has several types of one name
/// (from different compilation units), the first one met is written.
/// The layout is computed for the BTF's pointer size (LP64 for a 64-bit kernel).
/// </remarks>
public static class SchemaImport
{
    /// <summary>Type names every schema may use without declaring them (schemas/kvmtyped-types.h).</summary>
    private static readonly HashSet<string> BuiltIn = new(BuiltinTypeNames.All.Select(t => t.Name), StringComparer.Ordinal);

    /// <summary>Writes complete definitions of <paramref name="types"/> (struct or union names, "struct x", or
    /// typedef names of records) with their dependencies, in dependency order.</summary>
    /// <exception cref="KvmException">A type is not in the BTF, or a layout cannot be expressed.</exception>
    public static string Complete(KernelBtf btf, IEnumerable<string> types)
    {
        ArgumentNullException.ThrowIfNull(btf);
        return Complete(btf.Types, types);
    }

    /// <summary>Writes, for each of <paramref name="types"/>, a preserve_access_index subset with the members
    /// <paramref name="fields"/> (found also through anonymous members), relocated against each kernel's BTF at
    /// run time. Records the members embed by value are written complete.</summary>
    /// <exception cref="KvmException">A type or member is not in the BTF.</exception>
    public static string Subset(KernelBtf btf, IEnumerable<string> types, IReadOnlyList<string> fields)
    {
        ArgumentNullException.ThrowIfNull(btf);
        return Subset(btf.Types, types, fields);
    }

    internal static string Complete(BtfTypes btf, IEnumerable<string> types)
    {
        ArgumentNullException.ThrowIfNull(btf);
        ArgumentNullException.ThrowIfNull(types);
        var w = new Writer(btf);
        foreach (var name in types)
            w.Emit(Find(btf, name));
        return w.Finish($"Complete structs imported from the BTF of {btf.SourceName}; their layout is computed from these declarations.");
    }

    /// <summary>Writes, for each of <paramref name="types"/>, a preserve_access_index subset with the members
    /// <paramref name="fields"/> (found also through anonymous members), relocated against each kernel's BTF at
    /// run time. Records the members embed by value are written complete.</summary>
    internal static string Subset(BtfTypes btf, IEnumerable<string> types, IReadOnlyList<string> fields)
    {
        ArgumentNullException.ThrowIfNull(btf);
        ArgumentNullException.ThrowIfNull(types);
        ArgumentNullException.ThrowIfNull(fields);
        var w = new Writer(btf);
        foreach (var name in types)
            w.EmitSubset(Find(btf, name), fields);
        return w.Finish($"Subsets imported from the BTF of {btf.SourceName}; relocated against the kernel's BTF at run time.");
    }

    private static int Find(BtfTypes btf, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!btf.TryFindComposite(name, out int id))
            throw new KvmException($"{btf.SourceName}: no struct or union named '{name}'");
        return id;
    }

    private sealed record Plan(List<string> Lines, int Align, bool Packed, List<int> Deps);

    private sealed class Writer(BtfTypes btf)
    {
        private readonly int _ptr = btf.PointerSize ?? throw new KvmException($"{btf.SourceName}: the pointer size is unknown");
        private readonly Dictionary<int, Plan> _plans = [];
        private readonly HashSet<int> _emitted = [];
        private readonly HashSet<int> _inProgress = [];
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        private readonly List<string> _definitions = [];
        private readonly SortedSet<string> _forward = new(StringComparer.Ordinal);
        private int _pad;
        private int _depth;

        /// <summary>How deep records may embed records (C code has a few levels; hostile BTF could have millions).</summary>
        private const int MaxDepth = 512;

        private const int MaxInlineText = 16 << 20;

        public string Finish(string what)
        {
            var sb = new StringBuilder();
            sb.Append("/* ").Append(what).Append(" */\n#pragma once\n\n");
            foreach (var f in _forward)
                sb.Append(f).Append(";\n");
            if (_forward.Count > 0)
                sb.Append('\n');
            foreach (var d in _definitions)
                sb.Append(d).Append("\n\n");
            return sb.ToString().TrimEnd('\n') + "\n";
        }

        /// <summary>Defines a named record, named enum or typedef of an anonymous one, after its dependencies.</summary>
        public void Emit(int id)
        {
            if (_emitted.Contains(id) || _inProgress.Contains(id))
                return;
            var t = btf.Get(id);
            // C has one tag per name: a second BTF type of the same name (from another compilation unit) is not written.
            string key = (t.Kind == BtfKind.Typedef ? "typedef " : t.Kind == BtfKind.Union ? "union " : t.Kind is BtfKind.Enum or BtfKind.Enum64 ? "enum " : "struct ") + btf.NameOf(id);
            if (!_names.Add(key))
                return;
            _inProgress.Add(id);
            if (_inProgress.Count > MaxDepth)
                throw new KvmException($"{btf.SourceName}: records embed each other more than {MaxDepth} deep (at {btf.FormatType(id)})");
            if (t.Kind == BtfKind.Typedef)
            {
                int target = btf.StripQualifiers(t.TargetId);
                var kind = btf.KindOf(target);
                if (kind is BtfKind.Enum or BtfKind.Enum64)
                {
                    _definitions.Add("typedef " + EnumBody(target) + " " + btf.NameOf(id) + ";");
                }
                else
                {
                    var plan = PlanOf(target);
                    foreach (var dep in plan.Deps)
                        Emit(dep);
                    _definitions.Add("typedef " + Record(target, plan, "") + " " + btf.NameOf(id) + ";");
                }
            }
            else if (t.Kind is BtfKind.Enum or BtfKind.Enum64)
            {
                _definitions.Add(EnumBody(id) + ";");
            }
            else
            {
                var plan = PlanOf(id);
                foreach (var dep in plan.Deps)
                    Emit(dep);
                _definitions.Add(Record(id, plan, btf.NameOf(id)) + ";");
            }
            _inProgress.Remove(id);
            _emitted.Add(id);
        }

        public void EmitSubset(int id, IReadOnlyList<string> fields)
        {
            var deps = new List<int>();
            var lines = new List<string>();
            string kindWord = btf.KindOf(id) == BtfKind.Union ? "union" : "struct";
            string name = btf.NameOf(id);
            foreach (var field in fields)
            {
                var f = btf.FindMember(id, field) ?? throw new KvmException($"{btf.SourceName}: {kindWord} {name} has no member '{field}'");
                lines.Add("    " + (f.IsBitfield ? BitfieldDecl(f.TypeId, f.Name, f.BitSize) : Declare(f.TypeId, f.Name, deps, "    ")) + ";");
            }
            foreach (var dep in deps)
                Emit(dep);
            _definitions.Add($"{kindWord} {name} {{\n{string.Join("\n", lines)}\n}} __attribute__((preserve_access_index));");
        }

        private string Record(int id, Plan plan, string name)
        {
            string kindWord = btf.KindOf(id) == BtfKind.Union ? "union" : "struct";
            var sb = new StringBuilder(kindWord);
            if (name.Length > 0)
                sb.Append(' ').Append(name);
            sb.Append(" {\n");
            foreach (var l in plan.Lines)
                sb.Append(l).Append('\n');
            sb.Append('}');
            if (plan.Packed)
                sb.Append(" __attribute__((packed))");
            return sb.ToString();
        }

        private string EnumBody(int id)
        {
            string name = btf.NameOf(id);
            var sb = new StringBuilder("enum");
            if (name.Length > 0)
                sb.Append(' ').Append(name);
            sb.Append(" {\n");
            bool signed = btf.Get(id).KindFlag;
            foreach (var v in btf.GetEnumValues(id))
            {
                bool is64 = btf.Get(id).Kind == BtfKind.Enum64;
                string value = signed ? (is64 ? v.Value : (int)v.Value).ToString(CultureInfo.InvariantCulture)
                    : (is64 ? v.UnsignedValue : (uint)v.Value).ToString(CultureInfo.InvariantCulture);
                sb.Append("    ").Append(v.Name).Append(" = ").Append(value)
                    .Append(",\n");
            }
            sb.Append('}');
            return sb.ToString();
        }

        /// <summary>The emitted record's member lines, alignment and packing, with padding where the computed place
        /// of a member would differ from the BTF's.</summary>
        private Plan PlanOf(int id)
        {
            id = btf.Resolve(id);
            if (_plans.TryGetValue(id, out var known))
                return known;
            if (_plans.Count > 100_000)
                throw new KvmException($"{btf.SourceName}: too many records to import");
            if (++_depth > MaxDepth)
                throw new KvmException($"{btf.SourceName}: records nest more than {MaxDepth} deep (at {btf.FormatType(id)})");
            try
            {
                _plans[id] = new Plan([], 1, false, []); // a placeholder against cycles (impossible in valid BTF)
                var plan = Lay(id, packed: false) ?? Lay(id, packed: true)
                    ?? throw new KvmException($"{btf.SourceName}: the layout of {btf.FormatType(id)} cannot be written as a schema");
                _plans[id] = plan;
                return plan;
            }
            finally
            {
                _depth--;
            }
        }

        private Plan? Lay(int id, bool packed)
        {
            bool union = btf.KindOf(id) == BtfKind.Union;
            long size = btf.SizeOf(id) * 8;
            var lines = new List<string>();
            var deps = new List<int>();
            long cursor = 0, end = 0;
            int align = 1;
            int padStart = _pad;
            int flexible = -1;
            var members = btf.GetMembers(id);
            for (int i = 0; i < members.Count; i++)
            {
                var m = members[i];
                int type = m.TypeId;
                bool anonymous = m.Name.Length == 0;
                if (anonymous && btf.KindOf(btf.Resolve(type)) is not (BtfKind.Struct or BtfKind.Union))
                    continue;
                bool empty = !anonymous && !m.IsBitfield && btf.SizeOf(type) == 0;
                if (empty && (union || i != members.Count - 1 || lines.Count == 0 || btf.KindOf(btf.Resolve(type)) != BtfKind.Array))
                    continue; // a zero-length marker (array or empty struct): no room, nothing to read
                long at = union ? 0 : cursor;
                if (m.IsBitfield)
                {
                    int unitBytes = IntSize(type);
                    if (unitBytes is not (1 or 2 or 4 or 8 or 16))
                        return null; // a bitfield of no integer's size (hostile BTF: a struct of size 0) has no unit
                    long unit = unitBytes * 8L;
                    if (!packed && at / unit != (at + m.BitfieldSize - 1) / unit)
                        at = (at + unit - 1) / unit * unit;
                    if (m.BitOffset < at)
                        return null;
                    if (m.BitOffset > at)
                    {
                        PadBits(lines, cursor, m.BitOffset);
                        at = m.BitOffset;
                    }
                    lines.Add("    " + BitfieldDecl(type, m.Name, m.BitfieldSize) + ";");
                    if (!packed)
                        align = Math.Max(align, Scalar((uint)unitBytes));
                    end = Math.Max(end, at + m.BitfieldSize);
                    cursor = union ? 0 : at + m.BitfieldSize;
                    continue;
                }
                int a = packed ? 1 : AlignOf(type);
                at = (at + a * 8L - 1) / (a * 8L) * (a * 8L);
                if (m.BitOffset < at)
                    return null;
                if (m.BitOffset > at)
                {
                    if (m.BitOffset % 8 != 0)
                        return null;
                    long from = (cursor + 7) / 8;
                    if (m.BitOffset / 8 > from)
                        lines.Add($"    unsigned char __kvmtyped_pad{_pad++}[{m.BitOffset / 8 - from}];");
                    at = m.BitOffset;
                }
                string decl = anonymous ? Anonymous(btf.Resolve(type), deps) : empty ? FlexibleArray(type, m.Name, deps) : Declare(type, m.Name, deps, "    ");
                if (empty)
                    flexible = lines.Count;
                lines.Add("    " + decl + ";");
                align = Math.Max(align, a);
                long memberEnd = at + btf.SizeOf(type) * 8;
                end = Math.Max(end, memberEnd);
                cursor = union ? 0 : memberEnd;
            }
            long bytes = (end + 7) / 8;
            long natural = (bytes + align - 1) / align * align;
            if (natural > size / 8)
            {
                _pad = padStart;
                return null;
            }
            if (natural != size / 8)
            {
                if (size / 8 % align != 0)
                {
                    _pad = padStart;
                    return null;
                }
                if (flexible >= 0)
                    lines.RemoveAt(flexible); // padding cannot follow a flexible array member: leave the member out
                lines.Add($"    unsigned char __kvmtyped_pad{_pad++}[{(union ? size / 8 : size / 8 - bytes)}];");
            }
            return new Plan(lines, align, packed, deps);
        }

        private string FlexibleArray(int type, string name, List<int> deps)
        {
            var a = btf.GetArray(btf.Resolve(type));
            return Declare(a.ElementType, name + "[]", deps, "    ");
        }

        /// <summary>Most whole bytes a gap before a bitfield is padded with one unnamed bitfield each; a wider gap is one
        /// byte array (a hostile struct of gigabytes would otherwise take a line per byte).</summary>
        private const int MaxBytePadLines = 16;

        private void PadBits(List<string> lines, long from, long to)
        {
            if (from % 8 != 0 && from < to)
            {
                long w = Math.Min(8 - from % 8, to - from);
                lines.Add($"    unsigned char : {w};");
                from += w;
            }
            if ((to - from) / 8 > MaxBytePadLines)
            {
                long bytes = (to - from) / 8;
                lines.Add($"    unsigned char __kvmtyped_pad{_pad++}[{bytes}];");
                from += bytes * 8;
            }
            while (from < to)
            {
                long w = Math.Min(8, to - from);
                lines.Add($"    unsigned char : {w};");
                from += w;
            }
        }

        private string Anonymous(int id, List<int> deps)
        {
            var plan = PlanOf(id);
            deps.AddRange(plan.Deps);
            var text = Record(id, plan, "");
            // Anonymous members are written inline: types shared at every level would double the text per level.
            if (text.Length > MaxInlineText)
                throw new KvmFormatException(btf.SourceName, null, $"type {id} takes more than {MaxInlineText} characters to write inline (anonymous types shared over and over?)");
            return text.Replace("\n", "\n    ", StringComparison.Ordinal);
        }

        private int IntSize(int type)
        {
            int r = btf.Resolve(type);
            return (int)btf.SizeOf(r);
        }

        private string BitfieldDecl(int type, string name, int width)
        {
            int r = btf.Resolve(type);
            bool signed = btf.KindOf(r) == BtfKind.Int ? btf.GetInt(r).IsSigned : btf.Get(r).KindFlag;
            string spelling = btf.KindOf(r) == BtfKind.Int && btf.GetInt(r).IsBool ? "_Bool" : IntSpelling(btf.NameOf(r), (int)btf.SizeOf(r), signed);
            return $"{spelling} {name} : {width}";
        }

        private static string IntSpelling(string btfName, int size, bool signed)
        {
            string u = signed ? "" : "unsigned ";
            if (btfName.Contains("long long", StringComparison.Ordinal) && size == 8)
                return u + "long long";
            if (btfName.Contains("long", StringComparison.Ordinal) && size is 4 or 8)
                return u + "long";
            return size switch
            {
                1 => btfName == "char" ? "char" : signed ? "signed char" : "unsigned char",
                2 => u + "short",
                4 => u + "int",
                _ => u + "long long",
            };
        }

        /// <summary>A scalar's alignment inside a struct: its size, except that the i386 ABI aligns 8-byte scalars to 4.</summary>
        private int Scalar(uint size) => (int)Math.Clamp(size, 1u, _ptr == 4 ? 4u : 8u);

        /// <summary>The alignment of what <see cref="Declare"/> writes for <paramref name="type"/>.</summary>
        private int AlignOf(int type)
        {
            int r = btf.Resolve(type);
            var t = btf.Get(r);
            return t.Kind switch
            {
                BtfKind.Int => Scalar(t.SizeOrType is 16 ? 8 : t.SizeOrType),
                BtfKind.Float => t.SizeOrType is 4 or 8 ? Scalar(t.SizeOrType) : 1,
                BtfKind.Ptr => _ptr,
                BtfKind.Enum or BtfKind.Enum64 => Scalar(t.SizeOrType),
                BtfKind.Array => AlignOf(btf.GetArray(r).ElementType),
                BtfKind.Struct or BtfKind.Union => PlanOf(r).Align,
                _ => 1,
            };
        }

        /// <summary>A C declaration of <paramref name="name"/> with the BTF type; by-value dependencies go to
        /// <paramref name="deps"/>, pointed-to records to the forward declarations.</summary>
        private string Declare(int type, string name, List<int> deps, string indent, int depth = 0)
        {
            if (depth > BtfTypes.MaxChainDepth)
                throw new KvmException($"{btf.SourceName}: type id {type} nests too deeply");
            var t = btf.Get(type);
            switch (t.Kind)
            {
                case BtfKind.Void:
                    return Join("void", name);
                case BtfKind.Const or BtfKind.Volatile or BtfKind.Restrict or BtfKind.TypeTag:
                    return Declare(t.TargetId, name, deps, indent, depth + 1);
                case BtfKind.Typedef:
                    return Typedef(type, name, deps, indent, depth);
                case BtfKind.Int:
                {
                    var e = btf.GetInt(type);
                    if (e.IsBool)
                        return Join("_Bool", name);
                    if (t.SizeOrType == 16)
                        return Join(e.IsSigned ? "long long" : "unsigned long long", name + "[2]");
                    return Join(IntSpelling(btf.NameOf(type), (int)t.SizeOrType, e.IsSigned), name);
                }
                case BtfKind.Float:
                    return t.SizeOrType switch
                    {
                        4 => Join("float", name),
                        8 => Join("double", name),
                        _ => Join("unsigned char", name + $"[{t.SizeOrType}]"),
                    };
                case BtfKind.Enum or BtfKind.Enum64:
                    if (t.SizeOrType == 4 && btf.NameOf(type).Length > 0)
                    {
                        deps.Add(type);
                        return Join("enum " + btf.NameOf(type), name);
                    }
                    return Join(IntSpelling("", (int)t.SizeOrType, t.KindFlag || btf.GetEnumValues(type).Any(v => v.Value < 0) && t.Kind == BtfKind.Enum), name);
                case BtfKind.Ptr:
                {
                    int target = btf.StripQualifiers(t.TargetId);
                    int resolved = btf.Resolve(target);
                    var kind = btf.KindOf(resolved);
                    if (kind is BtfKind.Struct or BtfKind.Union && btf.NameOf(resolved).Length > 0)
                    {
                        string word = kind == BtfKind.Struct ? "struct " : "union ";
                        _forward.Add(word + btf.NameOf(resolved));
                        return Join(word + btf.NameOf(resolved), "*" + name);
                    }
                    if (kind == BtfKind.Fwd && btf.NameOf(resolved).Length > 0)
                    {
                        string word = btf.Get(resolved).KindFlag ? "union " : "struct ";
                        _forward.Add(word + btf.NameOf(resolved));
                        return Join(word + btf.NameOf(resolved), "*" + name);
                    }
                    if (kind is BtfKind.Int or BtfKind.Float or BtfKind.Ptr || (kind is BtfKind.Enum or BtfKind.Enum64 && btf.SizeOf(resolved) != 4))
                        return Declare(resolved, "*" + name, deps, indent, depth + 1);
                    return Join("void", "*" + name);
                }
                case BtfKind.Array:
                {
                    var a = btf.GetArray(type);
                    return Declare(a.ElementType, name + $"[{a.Count}]", deps, indent, depth + 1);
                }
                case BtfKind.Struct or BtfKind.Union:
                {
                    string word = t.Kind == BtfKind.Struct ? "struct " : "union ";
                    if (btf.NameOf(type).Length > 0)
                    {
                        deps.Add(type);
                        return Join(word + btf.NameOf(type), name);
                    }
                    var plan = PlanOf(type);
                    deps.AddRange(plan.Deps);
                    return Join(Record(type, plan, "").Replace("\n", "\n" + indent, StringComparison.Ordinal), name);
                }
                case BtfKind.Fwd:
                    throw new KvmException($"{btf.SourceName}: {btf.NameOf(type)} is only declared in the BTF; member '{name}' needs its definition");
                default:
                    return Join("void", "*" + name); // functions: only ever reached through a pointer
            }
        }

        private string Typedef(int id, string name, List<int> deps, string indent, int depth)
        {
            string tname = btf.NameOf(id);
            int target = btf.StripQualifiers(btf.Get(id).TargetId);
            int resolved = btf.Resolve(id);
            var kind = btf.KindOf(resolved);
            if (BuiltIn.Contains(tname) && kind is BtfKind.Int)
                return Join(tname, name);
            var targetKind = btf.KindOf(target);
            if (targetKind is BtfKind.Struct or BtfKind.Union or BtfKind.Enum or BtfKind.Enum64 && btf.NameOf(target).Length == 0)
            {
                if (targetKind is BtfKind.Enum or BtfKind.Enum64 && btf.SizeOf(target) != 4)
                    return Declare(target, name, deps, indent, depth + 1);
                deps.Add(id);
                return Join(tname, name);
            }
            return Declare(target, name, deps, indent, depth + 1);
        }

        private static string Join(string type, string declarator) =>
            declarator.Length == 0 ? type : declarator.StartsWith('*') ? type + " " + declarator : type + " " + declarator;
    }
}
