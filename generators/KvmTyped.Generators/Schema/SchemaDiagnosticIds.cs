namespace KvmTyped.Generators.Schema;

/// <summary>Stable diagnostic ids of the schema language. Never renumber: users suppress them by id.</summary>
internal static class SchemaDiagnosticIds
{
    public const string SyntaxError = "KVMT0001";
    public const string UnknownType = "KVMT0002";
    public const string ContainsItself = "KVMT0003";
    public const string DuplicateMember = "KVMT0004";
    public const string BadArraySize = "KVMT0005";
    public const string BitfieldTooWide = "KVMT0006";
    public const string ConflictingRedefinition = "KVMT0007";
    public const string Unsupported = "KVMT0008";
}
