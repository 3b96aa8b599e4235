using System.Collections.Generic;
using KvmTyped.Generators.Schema;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace KvmTyped.Generators;

/// <summary>Every diagnostic the generator reports. Ids are stable (see AnalyzerReleases.*.md).</summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "KvmTyped.Schema";

    public static readonly DiagnosticDescriptor SyntaxError = Create(SchemaDiagnosticIds.SyntaxError, "Schema syntax error");
    public static readonly DiagnosticDescriptor UnknownType = Create(SchemaDiagnosticIds.UnknownType, "Unknown type in schema");
    public static readonly DiagnosticDescriptor ContainsItself = Create(SchemaDiagnosticIds.ContainsItself, "Struct contains itself by value");
    public static readonly DiagnosticDescriptor DuplicateMember = Create(SchemaDiagnosticIds.DuplicateMember, "Duplicate member");
    public static readonly DiagnosticDescriptor BadArraySize = Create(SchemaDiagnosticIds.BadArraySize, "Array size is zero or negative");
    public static readonly DiagnosticDescriptor BitfieldTooWide = Create(SchemaDiagnosticIds.BitfieldTooWide, "Bitfield wider than its type");
    public static readonly DiagnosticDescriptor ConflictingRedefinition = Create(SchemaDiagnosticIds.ConflictingRedefinition, "Conflicting redefinition");
    public static readonly DiagnosticDescriptor Unsupported = Create(SchemaDiagnosticIds.Unsupported, "Unsupported schema construct");
    public static readonly DiagnosticDescriptor LimitExceeded = Create(SchemaDiagnosticIds.LimitExceeded, "Struct or array too large, or structs nested too deep");

    private const string KernelCategory = "KvmTyped.Kernel";

    public static readonly DiagnosticDescriptor KernelMemberMissing = CreateKernel(KernelDiagnosticIds.MemberMissing, "Member missing from a target kernel");
    public static readonly DiagnosticDescriptor KernelStructMissing = CreateKernel(KernelDiagnosticIds.StructMissing, "Struct missing from a target kernel");
    public static readonly DiagnosticDescriptor KernelTypeMismatch = CreateKernel(KernelDiagnosticIds.TypeMismatch, "Member type incompatible with a target kernel's");
    public static readonly DiagnosticDescriptor KernelLayoutDiffers = CreateKernel(KernelDiagnosticIds.LayoutDiffers, "Complete struct's layout differs from a target kernel's");
    public static readonly DiagnosticDescriptor KernelBadDigest = CreateKernel(KernelDiagnosticIds.BadDigest, "Kernel digest unreadable");
    public static readonly DiagnosticDescriptor OptionalOnComplete = new(KernelDiagnosticIds.OptionalOnComplete, "Optional marker on a complete struct", "{0}", Category,
        DiagnosticSeverity.Error, isEnabledByDefault: true);

    private static readonly Dictionary<string, DiagnosticDescriptor> ById = new()
    {
        [KernelMemberMissing.Id] = KernelMemberMissing,
        [KernelStructMissing.Id] = KernelStructMissing,
        [KernelTypeMismatch.Id] = KernelTypeMismatch,
        [KernelLayoutDiffers.Id] = KernelLayoutDiffers,
        [KernelBadDigest.Id] = KernelBadDigest,
        [OptionalOnComplete.Id] = OptionalOnComplete,
        [SyntaxError.Id] = SyntaxError,
        [UnknownType.Id] = UnknownType,
        [ContainsItself.Id] = ContainsItself,
        [DuplicateMember.Id] = DuplicateMember,
        [BadArraySize.Id] = BadArraySize,
        [BitfieldTooWide.Id] = BitfieldTooWide,
        [ConflictingRedefinition.Id] = ConflictingRedefinition,
        [Unsupported.Id] = Unsupported,
        [LimitExceeded.Id] = LimitExceeded,
    };

    private static DiagnosticDescriptor Create(string id, string title) =>
        new(id, title, "{0}", Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    /// <summary>The kernel check's findings are warnings unless the project says otherwise
    /// (<c>KvmTypedKernelCheckSeverity</c>); TreatWarningsAsErrors, WarningsAsErrors and NoWarn apply as usual.</summary>
    private static DiagnosticDescriptor CreateKernel(string id, string title) =>
        new(id, title, "{0}", KernelCategory, DiagnosticSeverity.Warning, isEnabledByDefault: true);

    public static Diagnostic ToDiagnostic(SchemaDiagnostic d) => ToDiagnostic(d, null);

    /// <summary>The diagnostic of <paramref name="d"/>, at its schema position, with <paramref name="severity"/> when
    /// given (the kernel check's configured severity) instead of the descriptor's.</summary>
    public static Diagnostic ToDiagnostic(SchemaDiagnostic d, DiagnosticSeverity? severity)
    {
        var location = d.Pos.Line <= 0
            ? Location.None
            : Location.Create(d.Pos.File, default, new LinePositionSpan(
                new LinePosition(d.Pos.Line - 1, d.Pos.Column - 1),
                new LinePosition(d.Pos.Line - 1, d.Pos.Column - 1 + d.Pos.Length)));
        var descriptor = ById[d.Id];
        return severity is { } s && s != descriptor.DefaultSeverity
            ? Diagnostic.Create(descriptor, location, s, additionalLocations: null, properties: null, d.Message)
            : Diagnostic.Create(descriptor, location, d.Message);
    }
}
