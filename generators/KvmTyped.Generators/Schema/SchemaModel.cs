using System;
using System.Linq;

namespace KvmTyped.Generators.Schema;

/// <summary>The kind of a C type in a schema.</summary>
internal enum CTypeKind
{
    Void,
    Bool,
    Char,
    SChar,
    UChar,
    Short,
    UShort,
    Int,
    UInt,
    Long,
    ULong,
    LongLong,
    ULongLong,
    Float,
    Double,

    /// <summary>A typedef name, not yet resolved (only before <see cref="SchemaResolver"/>).</summary>
    Named,
    Struct,
    Union,
    Enum,
    Pointer,
    Array,
    Function,
}

/// <summary>A C type. Name is the tag or typedef name; Target the pointee or element; Length the array length (-1 flexible).</summary>
internal sealed record CType(CTypeKind Kind, string Name = "", CType? Target = null, long Length = 0)
{
    public static readonly CType Int = new(CTypeKind.Int);

    public bool IsInteger => Kind is >= CTypeKind.Bool and <= CTypeKind.ULongLong || Kind == CTypeKind.Enum;

    public bool IsRecord => Kind is CTypeKind.Struct or CTypeKind.Union;

    /// <summary>A C declaration of <paramref name="name"/> with this type ("char comm[16]", "int (*fn)()").</summary>
    public string Declare(string name) => Kind switch
    {
        CTypeKind.Array => Target!.Declare(name + (Length < 0 ? "[]" : "[" + Length.ToString(System.Globalization.CultureInfo.InvariantCulture) + "]")),
        CTypeKind.Pointer when Target!.Kind is CTypeKind.Array or CTypeKind.Function => Target.Declare("(*" + name + ")"),
        CTypeKind.Pointer => Target!.Declare("*" + name),
        CTypeKind.Function => (Target?.ToString() ?? "void") + " " + name + "()",
        _ => ToString() + " " + name,
    };

    /// <summary>The C spelling, for messages and generated C.</summary>
    public override string ToString() => Kind switch
    {
        CTypeKind.Void => "void",
        CTypeKind.Bool => "_Bool",
        CTypeKind.Char => "char",
        CTypeKind.SChar => "signed char",
        CTypeKind.UChar => "unsigned char",
        CTypeKind.Short => "short",
        CTypeKind.UShort => "unsigned short",
        CTypeKind.Int => "int",
        CTypeKind.UInt => "unsigned int",
        CTypeKind.Long => "long",
        CTypeKind.ULong => "unsigned long",
        CTypeKind.LongLong => "long long",
        CTypeKind.ULongLong => "unsigned long long",
        CTypeKind.Float => "float",
        CTypeKind.Double => "double",
        CTypeKind.Named => Name,
        CTypeKind.Struct => "struct " + Name,
        CTypeKind.Union => "union " + Name,
        CTypeKind.Enum => "enum " + Name,
        CTypeKind.Pointer => Target + " *",
        CTypeKind.Array => Target + (Length < 0 ? "[]" : "[" + Length.ToString(System.Globalization.CultureInfo.InvariantCulture) + "]"),
        _ => "function",
    };
}

/// <summary>Where a declaration is: schema file (or C# file), 1-based line and column.</summary>
internal sealed record SourcePos(string File, int Line, int Column, int Length = 1)
{
    public override string ToString() => File + ":" + Line.ToString(System.Globalization.CultureInfo.InvariantCulture) + ":" + Column.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>A member of a struct or union. Name is null for an anonymous struct/union member or an unnamed bitfield.
/// BitWidth is -1 for a member that is not a bitfield. Optional marks a member of a relocated struct that only some
/// kernels have (<c>__kvmt_optional</c> in C, <c>[KernelOptional]</c> in C#): the view gets a <c>Has_name</c> property and
/// the kernel check does not report its absence. DeclaredClrType is, for a member declared in C#, the property's type
/// as written without namespaces (<c>KArray&lt;int&gt;</c>): the generated property must have that type.</summary>
internal sealed record FieldDef(string? Name, CType Type, int BitWidth, int AlignAttr, bool Packed, SourcePos Pos, bool Optional = false,
    string? DeclaredClrType = null)
{
    public bool IsBitfield => BitWidth >= 0;

    /// <summary>Equal ignoring where it was declared.</summary>
    public bool SameShape(FieldDef other) => Name == other.Name && Type == other.Type && BitWidth == other.BitWidth && AlignAttr == other.AlignAttr && Packed == other.Packed
        && Optional == other.Optional;
}

/// <summary>A struct or union definition. Anonymous ones get a synthesized Name and an empty Spelling.
/// ClrNamespace is where its view lives (the C# namespace of a C# declaration, or null for the configured schema namespace).
/// Arch names the per-architecture group of the schema file that defines it (null for the common schemas): its view lives
/// in the configured namespace + "." + Arch. Optional marks a relocated struct that only some kernels have: the kernel
/// check does not report its absence. Rejected marks a C# declaration with an error already reported: it gets no view.
/// Stub is, for a C# declaration, the source of a part that gives each of its partial properties a body that throws,
/// emitted instead of the view when the declaration gets none, so the KVMT diagnostic is the only error (null where such
/// a part cannot be written: a struct or containing type that is not partial).</summary>
internal sealed record StructDef(
    string Name,
    bool IsUnion,
    string Spelling,
    bool Packed,
    int AlignAttr,
    bool PreserveAccessIndex,
    bool IsAnonymous,
    EquatableArray<FieldDef> Fields,
    SourcePos Pos,
    string? ClrNamespace = null,
    string? Arch = null,
    bool Optional = false,
    bool Rejected = false,
    string? Stub = null)
{
    /// <summary>True for a struct declared in C# (a [KernelStruct] type), false for one from a C schema.</summary>
    public bool IsCSharp => ClrNamespace is not null;

    /// <summary>Equal ignoring positions and origin: the test for a harmless repeated definition.</summary>
    public bool SameShape(StructDef other)
    {
        if (Name != other.Name || IsUnion != other.IsUnion || Packed != other.Packed || AlignAttr != other.AlignAttr
            || PreserveAccessIndex != other.PreserveAccessIndex || Optional != other.Optional || Fields.Count != other.Fields.Count)
        {
            return false;
        }
        for (var i = 0; i < Fields.Count; i++)
        {
            if (!Fields[i].SameShape(other.Fields[i])) return false;
        }
        return true;
    }
}

internal sealed record EnumMember(string Name, long Value);

/// <summary>An enum definition; anonymous enums only define constants.</summary>
internal sealed record EnumDef(string Name, bool IsAnonymous, EquatableArray<EnumMember> Members, SourcePos Pos, string? ClrNamespace = null, string? Arch = null)
{
    /// <summary>gcc's choice of underlying type: int, unsigned int, long long or unsigned long long.</summary>
    public CTypeKind Underlying
    {
        get
        {
            long min = 0, max = 0;
            foreach (var m in Members)
            {
                min = Math.Min(min, m.Value);
                max = Math.Max(max, m.Value);
            }
            if (min >= int.MinValue && max <= int.MaxValue) return CTypeKind.Int;
            if (min >= 0 && max <= uint.MaxValue) return CTypeKind.UInt;
            return min < 0 ? CTypeKind.LongLong : CTypeKind.ULongLong;
        }
    }
}

internal sealed record TypedefDef(string Name, CType Type, SourcePos Pos);

/// <summary>A diagnostic found in a schema, with a stable id (see <see cref="SchemaDiagnosticIds"/>).</summary>
internal sealed record SchemaDiagnostic(string Id, string Message, SourcePos Pos)
{
    public override string ToString() => Pos + ": " + Id + " " + Message;
}

/// <summary>Everything one schema file (or one C# declaration) declares, before cross-file resolution.</summary>
internal sealed record SchemaUnit(
    string Path,
    EquatableArray<StructDef> Structs,
    EquatableArray<EnumDef> Enums,
    EquatableArray<TypedefDef> Typedefs,
    EquatableArray<SchemaDiagnostic> Diagnostics,
    string? Arch = null)
{
    /// <summary>This unit as a member of a per-architecture group: its structs and enums get views in the
    /// configured namespace + "." + <paramref name="arch"/>, resolved with the common schemas only.</summary>
    public SchemaUnit InArch(string? arch) => arch is null ? this : this with
    {
        Arch = arch,
        Structs = Structs.Select(s => s with { Arch = arch }).ToEquatableArray(),
        Enums = Enums.Select(e => e with { Arch = arch }).ToEquatableArray(),
    };
}
