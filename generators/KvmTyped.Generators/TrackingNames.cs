namespace KvmTyped.Generators;

/// <summary>Names of the incremental pipeline's steps, for tests that check what was cached.</summary>
public static class TrackingNames
{
    /// <summary>The namespace for views of C schemas (from build properties).</summary>
    public const string Options = nameof(Options);

    /// <summary>One schema file parsed (one step per AdditionalFiles .h file).</summary>
    public const string SchemaFiles = nameof(SchemaFiles);

    /// <summary>One C# [KernelStruct] declaration read.</summary>
    public const string CSharpDeclarations = nameof(CSharpDeclarations);

    /// <summary>All declarations resolved together, layouts computed.</summary>
    public const string Resolve = nameof(Resolve);

    /// <summary>One view model per struct.</summary>
    public const string Views = nameof(Views);

    /// <summary>One model per C enum.</summary>
    public const string Enums = nameof(Enums);

    /// <summary>The schema diagnostics.</summary>
    public const string Diagnostics = nameof(Diagnostics);
}
