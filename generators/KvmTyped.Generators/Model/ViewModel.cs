using KvmTyped.Generators.Schema;

namespace KvmTyped.Generators.Model;

/// <summary>How a member is read.</summary>
internal enum MemberKind
{
    Integer,
    Bool,
    Float,
    Double,
    Enum,
    Pointer,
    Address,
    String,
    Array,
    ViewArray,
    View,
    Bitfield,
}

/// <summary>One property of a generated view. Offsets are unused for relocated views (RelocIndex is used instead).
/// Size32/Size64 are the scalar's (or an array element's) size under each model. RelocType is, for relocated views,
/// the C# expression of the member's declared KernelFieldType. Optional members of relocated views get a Has_ property.</summary>
internal sealed record ViewMember(
    string Name,
    string PropertyName,
    string CType,
    MemberKind Kind,
    string ClrType,
    string ElementClrType,
    int Size32,
    int Size64,
    bool Signed,
    long Offset32,
    long Offset64,
    long BitOffset32,
    long BitOffset64,
    int BitSize,
    long Count,
    int RelocIndex,
    string RelocType = "",
    bool Optional = false);

/// <summary>One row of a static layout table.</summary>
internal sealed record LayoutRow(string Name, long Offset, long Size, long BitOffset, int BitSize);

/// <summary>Everything needed to emit one view; equatable so unchanged structs are not emitted again. Hint is the start of
/// its generated files' names: namespace and name, made unique ignoring case (the compiler compares file names so, and
/// C tags <c>a</c> and <c>A</c> are two structs).</summary>
internal sealed record ViewModel(
    string Namespace,
    string Name,
    string CSpelling,
    bool IsUnion,
    bool Relocated,
    bool DeclareType,
    string Origin,
    long Size32,
    int Align32,
    long Size64,
    int Align64,
    EquatableArray<LayoutRow> Layout32,
    EquatableArray<LayoutRow> Layout64,
    EquatableArray<ViewMember> Members,
    string ListEntryType,
    string HListNodeType,
    bool Internal = false,
    string Hint = "");

/// <summary>A C enum emitted as a C# enum. Hint, like a view's, is the start of its generated file's name, unique ignoring case.</summary>
internal sealed record EnumModel(string Namespace, string Name, string Underlying, EquatableArray<EnumMember> Members, string Origin, bool Internal = false, string Hint = "");

/// <summary>Project-wide settings: the namespace of schema views (RootNamespace.Kernel unless KvmTypedNamespace is
/// set) and whether they are internal (KvmTypedAccessibility=internal) rather than public.</summary>
internal sealed record GeneratorOptions(string Namespace, bool Internal)
{
    /// <summary>The namespace of the views of a schema group: the configured one, or a child named after the group's
    /// architecture for per-architecture schemas.</summary>
    public string NamespaceOf(string? clrNamespace, string? arch) =>
        clrNamespace ?? (arch is null ? Namespace : Namespace + "." + arch);
}

/// <summary>The output of resolving every schema unit together: views, enums, schema diagnostics, and what the
/// kernel check compares with each target kernel.</summary>
internal sealed record SchemaBuildResult(EquatableArray<ViewModel> Views, EquatableArray<EnumModel> Enums, EquatableArray<SchemaDiagnostic> Diagnostics,
    KernelCheckModel Checks, EquatableArray<StubModel> Stubs);

/// <summary>The part written for a C# declaration that gets no view (see <see cref="StructDef.Stub"/>).</summary>
internal sealed record StubModel(string HintName, string Source);
