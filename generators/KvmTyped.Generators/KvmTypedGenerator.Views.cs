using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmTyped.Generators.Model;
using KvmTyped.Generators.Schema;

namespace KvmTyped.Generators;

/// <summary>Resolves the schema units and turns each valid struct into a <see cref="ViewModel"/>: the common units
/// (and C# declarations) together, then each per-architecture group with the common units, so that two architectures
/// may each define their own struct of one name (pt_regs) in namespaces of their own.</summary>
public sealed partial class KvmTypedGenerator
{
    internal static SchemaBuildResult BuildViews(IEnumerable<SchemaUnit> units, string defaultNamespace) =>
        BuildViews(units, new GeneratorOptions(defaultNamespace, Internal: false));

    internal static SchemaBuildResult BuildViews(IEnumerable<SchemaUnit> units, GeneratorOptions options)
    {
        var all = units.ToList();
        var common = all.Where(u => u.Arch is null).ToList();
        var views = new List<ViewModel>();
        var enums = new List<EnumModel>();
        var diagnostics = new List<SchemaDiagnostic>();
        var checks = new List<KernelCheckStruct>();
        BuildGroup(common, null, options, views, enums, diagnostics, checks);
        foreach (var group in all.Where(u => u.Arch is not null).GroupBy(u => u.Arch!, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            BuildGroup(common.Concat(group).ToList(), group.Key, options, views, enums, diagnostics, checks);
        }
        var hints = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        string Unique(string ns, string name)
        {
            var hint = HintName(ns, name, string.Empty);
            for (var n = 2; !hints.Add(hint); n++) hint = HintName(ns, name, "." + n.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return hint;
        }
        var named = views.Select(v => v with { Hint = Unique(v.Namespace, v.Name) }).ToList();
        hints.Clear();
        var namedEnums = enums.Select(e => e with { Hint = Unique(e.Namespace, e.Name) }).ToList();
        return new SchemaBuildResult(named.ToEquatableArray(), namedEnums.ToEquatableArray(), diagnostics.ToEquatableArray(), new KernelCheckModel(checks.ToEquatableArray()),
            Stubs(all, views));
    }

    /// <summary>The parts of the C# declarations that got no view: refused, holding a refused struct, or redefining
    /// another definition's struct. Each has an error reported; its part keeps that error the only one.</summary>
    private static EquatableArray<StubModel> Stubs(List<SchemaUnit> units, List<ViewModel> views)
    {
        var emitted = new HashSet<string>(views.Where(v => !v.DeclareType).Select(v => v.Namespace + "." + v.Name), StringComparer.Ordinal);
        var stubs = new List<StubModel>();
        foreach (var s in units.SelectMany(u => u.Structs))
        {
            if (!s.IsCSharp || s.Stub is null || emitted.Contains(s.ClrNamespace + "." + s.Name)) continue;
            stubs.Add(new StubModel(HintName(s.ClrNamespace!, s.Name + "." + s.Pos.Line.ToString(System.Globalization.CultureInfo.InvariantCulture), ".refused.g.cs"), s.Stub));
        }
        return stubs.ToEquatableArray();
    }

    /// <summary>Resolves <paramref name="units"/> and adds the views, enums and diagnostics of the definitions that
    /// belong to <paramref name="arch"/> (null: the common ones).</summary>
    private static void BuildGroup(List<SchemaUnit> units, string? arch, GeneratorOptions options, List<ViewModel> views, List<EnumModel> enums,
        List<SchemaDiagnostic> diagnostics, List<KernelCheckStruct> checks)
    {
        var schema = SchemaResolver.Resolve(units);
        var refused = CheckDeclaredTypes(schema, options);
        checks.AddRange(KernelChecker.Describe(schema, arch));
        var ilp32 = new SchemaLayout(schema, lp64: false);
        var lp64 = new SchemaLayout(schema, lp64: true);
        foreach (var s in schema.Structs)
        {
            if (schema.Broken.Contains(s.Name) || s.Arch != arch) continue;
            views.Add(BuildView(s, schema, ilp32, lp64, options));
        }
        foreach (var e in schema.Enums)
        {
            if (e.IsAnonymous || e.ClrNamespace is not null || e.Arch != arch) continue;
            enums.Add(new EnumModel(options.NamespaceOf(null, arch), e.Name, ClrScalar(e.Underlying), e.Members, Path.GetFileName(e.Pos.File), options.Internal));
        }
        var files = new HashSet<string>(units.Where(u => u.Arch == arch).Select(u => u.Path), StringComparer.Ordinal);
        var own = schema.Diagnostics.Concat(arch is null ? refused : Enumerable.Empty<SchemaDiagnostic>())
            .Where(d => arch is null || files.Contains(d.Pos.File)).ToList();
        own.Sort((a, b) =>
        {
            var c = string.CompareOrdinal(a.Pos.File, b.Pos.File);
            if (c == 0) c = a.Pos.Line.CompareTo(b.Pos.Line);
            return c == 0 ? a.Pos.Column.CompareTo(b.Pos.Column) : c;
        });
        diagnostics.AddRange(own);
    }

    /// <summary>Refuses each C# declaration a property of which would be generated with another type than it is
    /// declared with ([KernelArray(6)] on an int, [KernelType] of a type the C# one does not hold, a pointer to a struct
    /// that gets no view), which would otherwise be a compiler error inside the generated file. A refused struct is
    /// broken, and so is every struct holding it by value; repeated until nothing changes.</summary>
    private static List<SchemaDiagnostic> CheckDeclaredTypes(ResolvedSchema schema, GeneratorOptions options)
    {
        var found = new List<SchemaDiagnostic>();
        bool changed;
        do
        {
            changed = false;
            foreach (var s in schema.Structs)
            {
                if (!s.IsCSharp || schema.Broken.Contains(s.Name)) continue;
                var ns = options.NamespaceOf(s.ClrNamespace, s.Arch);
                foreach (var f in s.Fields)
                {
                    if (f.DeclaredClrType is not { } declared || f.Name is null) continue;
                    var probe = new ViewMember(f.Name, f.Name, string.Empty, MemberKind.Integer, "int", string.Empty, 0, 0, false, 0, 0, 0, 0, 0, 0, 0);
                    var generated = Shape(Classify(probe, f, schema, ns, options).ClrType);
                    if (generated == declared) continue;
                    found.Add(Mismatch(f, declared, generated, schema));
                    schema.Broken.Add(s.Name);
                    changed = true;
                    break;
                }
            }
            if (changed) SchemaResolver.PropagateBroken(schema);
        }
        while (changed);
        return found;
    }

    private static SchemaDiagnostic Mismatch(FieldDef f, string declared, string generated, ResolvedSchema schema)
    {
        var pointee = f.Type.Kind == CTypeKind.Pointer && f.Type.Target is { IsRecord: true } target ? target.Name : null;
        if (pointee is not null && !schema.StructsByName.ContainsKey(pointee))
        {
            return new SchemaDiagnostic(SchemaDiagnosticIds.UnknownType, "property '" + f.Name + "' is declared " + declared + ", but no schema or [KernelStruct] declaration defines '"
                + f.Type.Target + "', so '" + f.Type.Declare(f.Name!) + "' is read as " + generated, f.Pos);
        }
        if (pointee is not null && schema.Broken.Contains(pointee))
        {
            return new SchemaDiagnostic(SchemaDiagnosticIds.Unsupported, "unsupported construct: property '" + f.Name + "' is declared " + declared + ", but '" + f.Type.Target
                + "' has errors (see its diagnostics) and gets no view", f.Pos);
        }
        return new SchemaDiagnostic(SchemaDiagnosticIds.Unsupported, "unsupported construct: property '" + f.Name + "' is declared " + declared + ", but its C type '"
            + f.Type.Declare(f.Name!) + (f.IsBitfield ? " : " + f.BitWidth.ToString(System.Globalization.CultureInfo.InvariantCulture) : string.Empty)
            + "' is read as " + generated + ": declare it as " + generated + ", or change its attributes", f.Pos);
    }

    /// <summary>A generated type written as <see cref="Shape(Microsoft.CodeAnalysis.ITypeSymbol)"/> writes a declared one.</summary>
    private static string Shape(string clrType) =>
        System.Text.RegularExpressions.Regex.Replace(clrType, @"global::(?:@?[A-Za-z_][A-Za-z0-9_]*\.)*", string.Empty).Replace("@", string.Empty);

    internal static string ClrScalar(CTypeKind kind) => kind switch
    {
        CTypeKind.Bool => "bool",
        CTypeKind.Char or CTypeKind.SChar => "sbyte",
        CTypeKind.UChar => "byte",
        CTypeKind.Short => "short",
        CTypeKind.UShort => "ushort",
        CTypeKind.Int => "int",
        CTypeKind.UInt => "uint",
        CTypeKind.Long or CTypeKind.LongLong => "long",
        CTypeKind.ULong or CTypeKind.ULongLong => "ulong",
        CTypeKind.Float => "float",
        CTypeKind.Double => "double",
        _ => "ulong",
    };

    private static bool IsSigned(CTypeKind kind) => kind is CTypeKind.Char or CTypeKind.SChar or CTypeKind.Short or CTypeKind.Int or CTypeKind.Long or CTypeKind.LongLong;

    private static string ClrName(string ns, string name) => "global::" + (ns.Length == 0 ? string.Empty : ns + ".") + Identifier(name);

    /// <summary>Names every view defines itself; a C member with one of these names gets a trailing underscore.</summary>
    private static readonly HashSet<string> ReservedMembers = new(StringComparer.Ordinal)
    {
        "Address", "Memory", "At", "SizeOf", "StaticLayout", "TypeName", "IsRelocated", "ContainerOf", "Entries", "HasMember", "ToString",
        "Equals", "GetHashCode", "GetType", "_memory", "_address", "_lp64", "_reloc", "s_ilp32", "s_lp64", "s_request",
    };

    private static ViewModel BuildView(StructDef s, ResolvedSchema schema, SchemaLayout ilp32, SchemaLayout lp64, GeneratorOptions options)
    {
        var ns = options.NamespaceOf(s.ClrNamespace, s.Arch);
        var relocated = s.PreserveAccessIndex;
        StructLayout? l32 = relocated ? null : ilp32.Get(s.Name);
        StructLayout? l64 = relocated ? null : lp64.Get(s.Name);
        var named = new List<(FieldDef Field, int Index)>();
        Flatten(s, schema, named, 0);
        var members = new List<ViewMember>();
        for (var i = 0; i < named.Count; i++)
        {
            var f = named[i].Field;
            var f32 = l32?.Fields[i];
            var f64 = l64?.Fields[i];
            var property = f.Name == s.Name || ReservedMembers.Contains(f.Name!) ? f.Name + "_" : f.Name!;
            var m = new ViewMember(f.Name!, property, f.Type.Declare(f.Name!), MemberKind.Integer, "int", string.Empty, 0, 0, false,
                f32?.Offset ?? 0, f64?.Offset ?? 0, f32?.BitOffset ?? 0, f64?.BitOffset ?? 0, f.IsBitfield ? f.BitWidth : 0, 0, i);
            if (relocated) m = m with { RelocType = FieldTypeExpression(f.Type, f.IsBitfield ? f.BitWidth : 0, schema, 0), Optional = f.Optional };
            members.Add(Classify(m, f, schema, ns, options));
        }
        string Rows(StructLayout? l, List<LayoutRow> rows)
        {
            if (l is null) return string.Empty;
            foreach (var f in l.Fields) rows.Add(new LayoutRow(f.Name, f.Offset, f.Size, f.BitOffset, f.BitSize));
            return string.Empty;
        }
        var rows32 = new List<LayoutRow>();
        var rows64 = new List<LayoutRow>();
        Rows(l32, rows32);
        Rows(l64, rows64);
        var listEntry = s.Name == "list_head" ? ClrName(ns, "list_head") : string.Empty;
        var hnode = s.Name == "hlist_head" && schema.StructsByName.TryGetValue("hlist_node", out var hn) ? ClrName(options.NamespaceOf(hn.ClrNamespace, hn.Arch), "hlist_node") : string.Empty;
        var spelling = s.Spelling.Length > 0 ? s.Spelling : (s.IsUnion ? "union " : "struct ") + "(anonymous)";
        return new ViewModel(ns, s.Name, spelling, s.IsUnion, relocated, s.ClrNamespace is null, Path.GetFileName(s.Pos.File),
            l32?.Size ?? 0, l32?.Align ?? 0, l64?.Size ?? 0, l64?.Align ?? 0, rows32.ToEquatableArray(), rows64.ToEquatableArray(),
            members.ToEquatableArray(), listEntry, hnode, options.Internal);
    }

    /// <summary>The C# expression of a member's declared <c>KernelFieldType</c>, which a relocation checks against
    /// the kernel's type.</summary>
    internal static string FieldTypeExpression(CType t, int bitWidth, ResolvedSchema schema, int depth)
    {
        const string K = "global::KvmTyped.Types.KernelFieldKind.";
        string Make(string kind, long size32, long size64, bool signed = false, long length = 0, string? name = null, string? element = null) =>
            "new(" + K + kind + ", " + N(size32) + ", " + N(size64) + ", " + (signed ? "true" : "false") + ", " + N(length) + ", " +
            (name is null || name.Length == 0 ? "null" : "\"" + name + "\"") + ", " + (element ?? "null") + ", " + N(bitWidth) + ")";
        switch (t.Kind)
        {
            case CTypeKind.Bool:
                return Make("Bool", 1, 1);
            case CTypeKind.Float:
                return Make("Float", 4, 4);
            case CTypeKind.Double:
                return Make("Float", 8, 8);
            case CTypeKind.Enum:
            {
                var e = schema.EnumsByName.TryGetValue(t.Name, out var found) ? found : null;
                var under = e?.Underlying ?? CTypeKind.UInt;
                var size = under is CTypeKind.LongLong or CTypeKind.ULongLong ? 8 : 4;
                return Make("Enum", size, size, IsSigned(under), 0, e is null || e.IsAnonymous ? null : e.Name);
            }
            case CTypeKind.Pointer:
                return Make("Pointer", 4, 8, false, 0, t.Target is { IsRecord: true } target ? target.Name : null);
            case CTypeKind.Struct:
                return Make("Struct", 0, 0, false, 0, t.Name);
            case CTypeKind.Union:
                return Make("Union", 0, 0, false, 0, t.Name);
            case CTypeKind.Array:
            {
                var element = depth < 32 && t.Target is not null ? FieldTypeExpression(t.Target, 0, schema, depth + 1) : "null";
                return "new(" + K + "Array, 0, 0, false, " + N(t.Length < 0 ? 0 : t.Length) + ", null, " + element + ", 0)";
            }
            default:
                return Make("Int", SchemaLayout.ScalarSize(t.Kind, lp64: false), SchemaLayout.ScalarSize(t.Kind, lp64: true), IsSigned(t.Kind));
        }
    }

    private static void Flatten(StructDef s, ResolvedSchema schema, List<(FieldDef, int)> named, int depth)
    {
        foreach (var f in s.Fields)
        {
            if (f.Name is not null)
            {
                named.Add((f, named.Count));
            }
            else if (!f.IsBitfield && f.Type.IsRecord && depth < SchemaLimits.MaxAnonymousNesting && schema.StructsByName.TryGetValue(f.Type.Name, out var inner))
            {
                Flatten(inner, schema, named, depth + 1);
            }
        }
    }

    private static ViewMember Classify(ViewMember m, FieldDef f, ResolvedSchema schema, string ns, GeneratorOptions options)
    {
        var t = f.Type;
        string RecordName(CType r)
        {
            var d = schema.StructsByName[r.Name];
            return ClrName(options.NamespaceOf(d.ClrNamespace, d.Arch), r.Name);
        }
        (string Clr, int Size, bool Signed, bool IsEnumType) Scalar(CType st)
        {
            if (st.Kind == CTypeKind.Enum)
            {
                var e = schema.EnumsByName[st.Name];
                var under = e.Underlying;
                var size = under is CTypeKind.LongLong or CTypeKind.ULongLong ? 8 : 4;
                return e.IsAnonymous ? (ClrScalar(under), size, IsSigned(under), false) : (ClrName(options.NamespaceOf(e.ClrNamespace, e.Arch), e.Name), size, IsSigned(under), true);
            }
            if (st.Kind == CTypeKind.Pointer) return ("ulong", 0, false, false);
            return (ClrScalar(st.Kind), SchemaLayout.ScalarSize(st.Kind, lp64: false), IsSigned(st.Kind), false);
        }
        int Size64(CType st) => st.Kind == CTypeKind.Enum ? Scalar(st).Size : SchemaLayout.ScalarSize(st.Kind, lp64: true);
        if (f.IsBitfield)
        {
            var (clr, size, signed, _) = Scalar(t);
            return m with { Kind = MemberKind.Bitfield, ClrType = clr, Size32 = size, Size64 = Size64(t), Signed = signed };
        }
        switch (t.Kind)
        {
            case CTypeKind.Bool:
                return m with { Kind = MemberKind.Bool, ClrType = "bool", Size32 = 1, Size64 = 1 };
            case CTypeKind.Float:
                return m with { Kind = MemberKind.Float, ClrType = "float", Size32 = 4, Size64 = 4 };
            case CTypeKind.Double:
                return m with { Kind = MemberKind.Double, ClrType = "double", Size32 = 8, Size64 = 8 };
            case CTypeKind.Enum:
                var (eclr, esize, esigned, isEnum) = Scalar(t);
                return m with { Kind = isEnum ? MemberKind.Enum : MemberKind.Integer, ClrType = eclr, Size32 = esize, Size64 = esize, Signed = esigned };
            case CTypeKind.Pointer:
                var target = t.Target!;
                if (target.IsRecord && schema.StructsByName.TryGetValue(target.Name, out var pointee) && !schema.Broken.Contains(pointee.Name))
                {
                    return m with { Kind = MemberKind.Pointer, ClrType = "global::KvmTyped.Types.KPtr<" + RecordName(target) + ">", ElementClrType = RecordName(target), Size32 = 4, Size64 = 8 };
                }
                return m with { Kind = MemberKind.Address, ClrType = "ulong", Size32 = 4, Size64 = 8 };
            case CTypeKind.Struct:
            case CTypeKind.Union:
                return m with { Kind = MemberKind.View, ClrType = RecordName(t) };
            case CTypeKind.Array:
                long count = 1;
                var element = t;
                var oneDimension = t.Target!.Kind != CTypeKind.Array;
                while (element.Kind == CTypeKind.Array)
                {
                    count = element.Length < 0 || count < 0 ? -1 : count * element.Length;
                    element = element.Target!;
                }
                if (element.Kind == CTypeKind.Char && oneDimension && count > 0)
                {
                    return m with { Kind = MemberKind.String, ClrType = "string", Count = count, Size32 = 1, Size64 = 1 };
                }
                if (element.IsRecord)
                {
                    return m with { Kind = MemberKind.ViewArray, ClrType = "global::KvmTyped.Types.KViewArray<" + RecordName(element) + ">", ElementClrType = RecordName(element), Count = count };
                }
                var (clr, size, signed, _) = element.Kind == CTypeKind.Bool ? ("bool", 1, false, false) : Scalar(element);
                var size64 = element.Kind == CTypeKind.Pointer ? 8 : element.Kind == CTypeKind.Bool ? 1 : Size64(element);
                if (element.Kind == CTypeKind.Pointer) size = 4;
                return m with { Kind = MemberKind.Array, ClrType = "global::KvmTyped.Types.KArray<" + clr + ">", ElementClrType = clr, Count = count, Size32 = size, Size64 = size64, Signed = signed };
            default:
                var (sclr, ssize, ssigned, _) = Scalar(t);
                return m with { Kind = MemberKind.Integer, ClrType = sclr, Size32 = ssize, Size64 = Size64(t), Signed = ssigned };
        }
    }
}
