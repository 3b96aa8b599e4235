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
    public const string LimitExceeded = "KVMT0009";
}

/// <summary>Limits past which a schema is surely a mistake (or hostile); exceeding one is KVMT0009.</summary>
internal static class SchemaLimits
{
    /// <summary>The largest struct, union or array, in bytes, and the most elements one array dimension may have.</summary>
    public const long MaxBytes = int.MaxValue;

    public const string MaxBytesText = "2147483647 (2^31 - 1)";

    /// <summary>The deepest chain of structs and unions nested by value (arrays of them included): a struct that holds
    /// only scalars is 1 level, one that embeds it 2, and so on.</summary>
    public const int MaxNesting = 256;

    /// <summary>The deepest chain of anonymous struct and union members whose names a struct reaches directly.</summary>
    public const int MaxAnonymousNesting = 32;

    /// <summary>The longest chain of typedefs (and pointer, array and function types around them) a member's type may
    /// go through before it reaches a type that is not a typedef.</summary>
    public const int MaxTypedefDepth = 64;

    /// <summary>The largest schema file the command line reads (the shipped schemas are a few KiB each).</summary>
    public const int MaxSchemaFileBytes = 16 << 20;
}
