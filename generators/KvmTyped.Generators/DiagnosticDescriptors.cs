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

    private static readonly Dictionary<string, DiagnosticDescriptor> ById = new()
    {
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

    public static Diagnostic ToDiagnostic(SchemaDiagnostic d)
    {
        var start = new LinePosition(d.Pos.Line - 1, d.Pos.Column - 1);
        var end = new LinePosition(d.Pos.Line - 1, d.Pos.Column - 1 + d.Pos.Length);
        var location = Location.Create(d.Pos.File, default, new LinePositionSpan(start, end));
        return Diagnostic.Create(ById[d.Id], location, d.Message);
    }
}
