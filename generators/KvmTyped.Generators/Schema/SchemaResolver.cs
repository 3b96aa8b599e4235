using System;
using System.Collections.Generic;

namespace KvmTyped.Generators.Schema;

/// <summary>All schema units merged: typedefs resolved, definitions checked. Structs listed in Broken have an
/// error already reported and get neither a layout nor a view.</summary>
internal sealed class ResolvedSchema
{
    public List<StructDef> Structs { get; } = new();

    public Dictionary<string, StructDef> StructsByName { get; } = new(StringComparer.Ordinal);

    public List<EnumDef> Enums { get; } = new();

    public Dictionary<string, EnumDef> EnumsByName { get; } = new(StringComparer.Ordinal);

    public HashSet<string> Broken { get; } = new(StringComparer.Ordinal);

    public List<SchemaDiagnostic> Diagnostics { get; } = new();
}

/// <summary>Merges schema units (C files and C# declarations alike), resolves typedef names and checks the
/// rules a single file cannot: unknown types, self-containment, duplicate members, bitfield widths, redefinitions.</summary>
internal static class SchemaResolver
{
    /// <summary>The fixed-width and standard typedef names a schema may use without declaring them.</summary>
    public static readonly IReadOnlyDictionary<string, CType> BuiltinTypedefs = CreateBuiltins();

    private static Dictionary<string, CType> CreateBuiltins()
    {
        var d = new Dictionary<string, CType>(StringComparer.Ordinal);
        foreach (var (name, ctype) in BuiltinTypeNames.All)
        {
            d[name] = new CType(ctype switch
            {
                "unsigned char" => CTypeKind.UChar,
                "signed char" => CTypeKind.SChar,
                "unsigned short" => CTypeKind.UShort,
                "short" => CTypeKind.Short,
                "unsigned int" => CTypeKind.UInt,
                "int" => CTypeKind.Int,
                "unsigned long long" => CTypeKind.ULongLong,
                "long long" => CTypeKind.LongLong,
                "unsigned long" => CTypeKind.ULong,
                "long" => CTypeKind.Long,
                "_Bool" => CTypeKind.Bool,
                _ => throw new InvalidOperationException("unknown built-in C type " + ctype),
            });
        }
        return d;
    }

    public static ResolvedSchema Resolve(IEnumerable<SchemaUnit> units)
    {
        var result = new ResolvedSchema();
        var typedefs = new Dictionary<string, TypedefDef>(StringComparer.Ordinal);
        var all = new List<SchemaUnit>(units);
        foreach (var unit in all)
        {
            result.Diagnostics.AddRange(unit.Diagnostics);
            foreach (var t in unit.Typedefs)
            {
                if (typedefs.TryGetValue(t.Name, out var existing))
                {
                    if (!existing.Type.Equals(t.Type))
                    {
                        result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.ConflictingRedefinition,
                            "conflicting redefinition of typedef '" + t.Name + "' (first defined at " + existing.Pos + ")", t.Pos));
                    }
                    continue;
                }
                typedefs[t.Name] = t;
            }
            foreach (var e in unit.Enums)
            {
                if (result.EnumsByName.TryGetValue(e.Name, out var existing))
                {
                    if (!existing.Members.Equals(e.Members))
                    {
                        result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.ConflictingRedefinition,
                            "conflicting redefinition of 'enum " + e.Name + "' (first defined at " + existing.Pos + ")", e.Pos));
                    }
                    continue;
                }
                result.EnumsByName[e.Name] = e;
                result.Enums.Add(e);
            }
            foreach (var s in unit.Structs)
            {
                if (result.StructsByName.TryGetValue(s.Name, out var existing))
                {
                    if (!existing.SameShape(s))
                    {
                        result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.ConflictingRedefinition,
                            "conflicting redefinition of '" + (s.IsUnion ? "union " : "struct ") + s.Name + "' (first defined at " + existing.Pos + ")", s.Pos));
                    }
                    else if (s.IsCSharp || existing.IsCSharp)
                    {
                        // A C# declaration is a type of its own: a second definition of its struct would leave one of
                        // the two without a view, so even an identical copy is refused.
                        result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.ConflictingRedefinition,
                            "'" + (s.IsUnion ? "union " : "struct ") + s.Name + "' is already defined at " + existing.Pos
                            + "; a C# declaration must be the only definition of its struct", s.Pos));
                    }
                    continue;
                }
                result.StructsByName[s.Name] = s;
                result.Structs.Add(s);
                if (s.Rejected) result.Broken.Add(s.Name);
            }
        }

        for (var i = 0; i < result.Structs.Count; i++)
        {
            var s = result.Structs[i];
            var fields = new FieldDef[s.Fields.Count];
            for (var j = 0; j < fields.Length; j++)
            {
                var f = s.Fields[j];
                var type = ResolveType(f.Type, typedefs, 0);
                if (type is null && TooDeep(f.Type, typedefs))
                {
                    result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.LimitExceeded, "the type of member '" + (f.Name ?? "(anonymous)") + "' of " + Describe(s)
                        + " goes through more than " + SchemaLimits.MaxTypedefDepth.ToString(System.Globalization.CultureInfo.InvariantCulture) + " typedefs (or typedefs that name each other)", f.Pos));
                    result.Broken.Add(s.Name);
                    type = CType.Int;
                }
                else if (type is null)
                {
                    result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.UnknownType, "unknown type '" + FirstUnknown(f.Type, typedefs) + "' in member '" + (f.Name ?? "(anonymous)") + "' of " + Describe(s), f.Pos));
                    result.Broken.Add(s.Name);
                    type = CType.Int;
                }
                fields[j] = f with { Type = type };
            }
            s = s with { Fields = new EquatableArray<FieldDef>(fields) };
            result.Structs[i] = s;
            result.StructsByName[s.Name] = s;
        }

        foreach (var s in result.Structs)
        {
            CheckMembers(s, result);
        }
        CheckCycles(result);
        PropagateBroken(result);
        CheckSizes(result);
        return result;
    }

    private static string Describe(StructDef s) => s.Spelling.Length > 0 ? "'" + s.Spelling + "'" : "an anonymous " + (s.IsUnion ? "union" : "struct");

    private static string FirstUnknown(CType t, Dictionary<string, TypedefDef> typedefs)
    {
        while (t.Target is not null && t.Kind != CTypeKind.Named) t = t.Target;
        return t.Kind == CTypeKind.Named ? t.Name : t.ToString();
    }

    /// <summary>Whether resolving <paramref name="t"/> fails for its depth (past <see cref="SchemaLimits.MaxTypedefDepth"/>)
    /// rather than for a type nobody defined.</summary>
    private static bool TooDeep(CType t, Dictionary<string, TypedefDef> typedefs)
    {
        for (var depth = 0; ; depth++)
        {
            if (depth > SchemaLimits.MaxTypedefDepth) return true;
            if (t.Kind == CTypeKind.Named)
            {
                if (!typedefs.TryGetValue(t.Name, out var def)) return false;
                t = def.Type;
            }
            else if (t.Target is not null) t = t.Target;
            else return false;
        }
    }

    private static CType? ResolveType(CType t, Dictionary<string, TypedefDef> typedefs, int depth)
    {
        if (depth > SchemaLimits.MaxTypedefDepth) return null;
        switch (t.Kind)
        {
            case CTypeKind.Named:
                if (typedefs.TryGetValue(t.Name, out var def)) return ResolveType(def.Type, typedefs, depth + 1);
                return BuiltinTypedefs.TryGetValue(t.Name, out var builtin) ? builtin : null;
            case CTypeKind.Pointer:
            case CTypeKind.Array:
            case CTypeKind.Function:
                if (t.Target is null) return t;
                var target = ResolveType(t.Target, typedefs, depth + 1);
                return target is null ? null : t with { Target = target };
            default:
                return t;
        }
    }

    /// <summary>The element type under any array dimensions.</summary>
    public static CType Element(CType t)
    {
        while (t.Kind == CTypeKind.Array) t = t.Target!;
        return t;
    }

    private static void CheckMembers(StructDef s, ResolvedSchema result)
    {
        if (!s.PreserveAccessIndex && !s.IsAnonymous)
        {
            // A complete struct has one layout for every kernel; only relocated structs may lack members.
            const string Why = " marks what only some kernels have, which applies to preserve_access_index structs only (a complete struct's layout is the same in every kernel)";
            if (s.Optional) result.Diagnostics.Add(new SchemaDiagnostic(KernelDiagnosticIds.OptionalOnComplete, "optional " + Describe(s) + ": the marker" + Why, s.Pos));
            foreach (var f in s.Fields)
            {
                if (f.Optional) result.Diagnostics.Add(new SchemaDiagnostic(KernelDiagnosticIds.OptionalOnComplete, "optional member '" + (f.Name ?? "(anonymous)") + "' of " + Describe(s) + ": the marker" + Why, f.Pos));
            }
        }
        foreach (var f in s.Fields)
        {
            var element = Element(f.Type);
            if (element.IsRecord)
            {
                if (!result.StructsByName.TryGetValue(element.Name, out var inner) || inner.IsUnion != (element.Kind == CTypeKind.Union))
                {
                    result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.UnknownType,
                        "unknown type: '" + element + "' is used by value in member '" + (f.Name ?? "(anonymous)") + "' but never defined", f.Pos));
                    result.Broken.Add(s.Name);
                }
                else if (inner.PreserveAccessIndex && !s.PreserveAccessIndex)
                {
                    result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.Unsupported,
                        "unsupported construct: " + Describe(s) + " embeds the preserve_access_index struct '" + inner.Name + "' by value, but only relocated structs may (it has no static layout)", f.Pos));
                    result.Broken.Add(s.Name);
                }
            }
            else if (element.Kind == CTypeKind.Enum && !result.EnumsByName.ContainsKey(element.Name))
            {
                result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.UnknownType, "unknown type: 'enum " + element.Name + "' is used by value but never defined", f.Pos));
                result.Broken.Add(s.Name);
            }
            else if (element.Kind is CTypeKind.Void or CTypeKind.Function)
            {
                result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.Unsupported, "unsupported construct: member '" + f.Name + "' has type " + element, f.Pos));
                result.Broken.Add(s.Name);
            }
            if (f.IsBitfield)
            {
                if (!f.Type.IsInteger)
                {
                    result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.Unsupported, "unsupported construct: bitfield '" + f.Name + "' of non-integer type " + f.Type, f.Pos));
                    result.Broken.Add(s.Name);
                    continue;
                }
                var bits = f.Type.Kind == CTypeKind.Enum
                    ? (result.EnumsByName.TryGetValue(f.Type.Name, out var e) && e.Underlying is CTypeKind.LongLong or CTypeKind.ULongLong ? 64 : 32)
                    : f.Type.Kind == CTypeKind.Bool ? 1 : SchemaLayout.ScalarSize(f.Type.Kind, lp64: false) * 8;
                if (f.BitWidth > bits)
                {
                    result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.BitfieldTooWide,
                        "bitfield '" + f.Name + "' is " + f.BitWidth.ToString(System.Globalization.CultureInfo.InvariantCulture) + " bits, wider than its type " + f.Type + " (" + bits.ToString(System.Globalization.CultureInfo.InvariantCulture) + " bits under ILP32)", f.Pos));
                    result.Broken.Add(s.Name);
                }
                else if (f.BitWidth == 0 && f.Name is not null)
                {
                    result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.BitfieldTooWide, "zero-width bitfield '" + f.Name + "' must be unnamed", f.Pos));
                    result.Broken.Add(s.Name);
                }
            }
        }
        if (s.IsAnonymous) return;
        var seen = new Dictionary<string, SourcePos>(StringComparer.Ordinal);
        var tooDeep = false;
        CollectNames(s, result, seen, s, 0, ref tooDeep);
    }

    private static void CollectNames(StructDef s, ResolvedSchema result, Dictionary<string, SourcePos> seen, StructDef owner, int depth, ref bool tooDeep)
    {
        foreach (var f in s.Fields)
        {
            if (f.Name is null)
            {
                if (!f.Type.IsRecord || !result.StructsByName.TryGetValue(f.Type.Name, out var inner)) continue;
                if (depth + 1 > SchemaLimits.MaxAnonymousNesting)
                {
                    // The views flatten anonymous members only this deep; deeper names would be missing from them.
                    if (!tooDeep)
                    {
                        result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.LimitExceeded,
                            "anonymous structs and unions are nested more than " + SchemaLimits.MaxAnonymousNesting.ToString(System.Globalization.CultureInfo.InvariantCulture) +
                            " levels deep in " + Describe(owner) + "; name a member", f.Pos));
                        result.Broken.Add(owner.Name);
                    }
                    tooDeep = true;
                    continue;
                }
                CollectNames(inner, result, seen, owner, depth + 1, ref tooDeep);
                continue;
            }
            if (seen.TryGetValue(f.Name, out var first))
            {
                result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.DuplicateMember,
                    "duplicate member '" + f.Name + "' in " + Describe(owner) + " (first declared at " + first + ")", f.Pos));
                result.Broken.Add(owner.Name);
                continue;
            }
            seen[f.Name] = f.Pos;
        }
    }

    /// <summary>Finds structs that contain themselves by value and chains of by-value nesting deeper than
    /// <see cref="SchemaLimits.MaxNesting"/>. Depth-first with an explicit stack: a hostile schema cannot overflow
    /// the compiler's stack here, and the depth limit keeps the recursive layout code below within bounds.</summary>
    private static void CheckCycles(ResolvedSchema result)
    {
        var state = new Dictionary<string, int>(StringComparer.Ordinal);
        var height = new Dictionary<string, int>(StringComparer.Ordinal);
        var stack = new List<(StructDef Struct, int Next, int Height)>();
        foreach (var root in result.Structs)
        {
            if (state.ContainsKey(root.Name)) continue;
            state[root.Name] = 1;
            stack.Add((root, 0, 1));
            while (stack.Count > 0)
            {
                var (s, next, h) = stack[stack.Count - 1];
                if (next < s.Fields.Count)
                {
                    stack[stack.Count - 1] = (s, next + 1, h);
                    var f = s.Fields[next];
                    var element = Element(f.Type);
                    if (!element.IsRecord || !result.StructsByName.TryGetValue(element.Name, out var inner)) continue;
                    state.TryGetValue(inner.Name, out var innerState);
                    if (innerState == 1)
                    {
                        var start = stack.FindIndex(x => x.Struct.Name == inner.Name);
                        var names = new List<string>();
                        for (var k = start; k < stack.Count; k++) names.Add(stack[k].Struct.Name);
                        var cycle = names.Count > 8
                            ? string.Join(" -> ", names.GetRange(0, 4)) + " -> … -> " + string.Join(" -> ", names.GetRange(names.Count - 3, 3)) + " -> " + inner.Name
                            : string.Join(" -> ", names) + " -> " + inner.Name;
                        result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.ContainsItself,
                            Describe(inner) + " contains itself by value through member '" + (f.Name ?? "(anonymous)") + "' (" + cycle + "); use a pointer", f.Pos));
                        foreach (var n in names) result.Broken.Add(n);
                    }
                    else if (innerState == 2)
                    {
                        stack[stack.Count - 1] = (s, next + 1, Math.Max(h, height[inner.Name] + 1));
                    }
                    else
                    {
                        state[inner.Name] = 1;
                        stack.Add((inner, 0, 1));
                    }
                    continue;
                }
                stack.RemoveAt(stack.Count - 1);
                state[s.Name] = 2;
                height[s.Name] = h;
                if (stack.Count > 0)
                {
                    var (parent, parentNext, parentHeight) = stack[stack.Count - 1];
                    stack[stack.Count - 1] = (parent, parentNext, Math.Max(parentHeight, h + 1));
                }
            }
        }
        foreach (var s in result.Structs)
        {
            if (!height.TryGetValue(s.Name, out var h) || h <= SchemaLimits.MaxNesting) continue;
            result.Broken.Add(s.Name);
            if (h != SchemaLimits.MaxNesting + 1) continue;
            foreach (var f in s.Fields)
            {
                var element = Element(f.Type);
                if (!element.IsRecord || !height.TryGetValue(element.Name, out var innerHeight) || innerHeight != SchemaLimits.MaxNesting) continue;
                result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.LimitExceeded,
                    Describe(s) + " nests structs and unions by value more than " + SchemaLimits.MaxNesting.ToString(System.Globalization.CultureInfo.InvariantCulture) +
                    " levels deep, through member '" + (f.Name ?? "(anonymous)") + "' (" + element + "); use a pointer", f.Pos));
                break;
            }
        }
    }

    /// <summary>Computes every complete struct's layout under both data models and reports (and breaks) those larger
    /// than <see cref="SchemaLimits.MaxBytes"/>, so the layouts used afterwards never overflow. A failure breaks the
    /// struct and, through the reverse edges, every struct holding it by value: exactly the structs whose layouts were
    /// in progress, so the same layout object can go on with the rest.</summary>
    private static void CheckSizes(ResolvedSchema result)
    {
        var containers = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var s in result.Structs)
        {
            foreach (var f in s.Fields)
            {
                var element = Element(f.Type);
                if (!element.IsRecord) continue;
                if (!containers.TryGetValue(element.Name, out var list)) containers[element.Name] = list = new List<string>();
                list.Add(s.Name);
            }
        }
        foreach (var lp64 in new[] { true, false })
        {
            var layout = new SchemaLayout(result, lp64);
            foreach (var s in result.Structs)
            {
                if (result.Broken.Contains(s.Name) || s.PreserveAccessIndex) continue;
                try
                {
                    layout.Get(s.Name);
                }
                catch (SchemaLimitException e)
                {
                    result.Diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.LimitExceeded, e.Message, e.Pos));
                    var work = new Stack<string>();
                    work.Push(e.Struct);
                    while (work.Count > 0)
                    {
                        var name = work.Pop();
                        if (!result.Broken.Add(name) && name != e.Struct) continue;
                        if (!containers.TryGetValue(name, out var outer)) continue;
                        foreach (var o in outer)
                        {
                            if (!result.Broken.Contains(o)) work.Push(o);
                        }
                    }
                }
            }
        }
    }

    /// <summary>Marks broken every struct that holds a broken one by value, until nothing changes.</summary>
    internal static void PropagateBroken(ResolvedSchema result)
    {
        bool changed;
        do
        {
            changed = false;
            foreach (var s in result.Structs)
            {
                if (result.Broken.Contains(s.Name)) continue;
                foreach (var f in s.Fields)
                {
                    var element = Element(f.Type);
                    if (element.IsRecord && result.Broken.Contains(element.Name))
                    {
                        result.Broken.Add(s.Name);
                        changed = true;
                        break;
                    }
                }
            }
        }
        while (changed);
    }
}
