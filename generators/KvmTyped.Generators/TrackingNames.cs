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

    /// <summary>The kernel check's settings (KvmTypedKernelCheckSeverity).</summary>
    public const string KernelCheckOptions = nameof(KernelCheckOptions);

    /// <summary>One target kernel's digest read (one step per digest file the build task wrote).</summary>
    public const string KernelDigests = nameof(KernelDigests);

    /// <summary>What the declarations give the kernel check (from <see cref="Resolve"/>).</summary>
    public const string KernelCheckModel = nameof(KernelCheckModel);

    /// <summary>The declarations checked against one kernel (one step per kernel).</summary>
    public const string KernelChecks = nameof(KernelChecks);

    /// <summary>The list of target kernels, emitted as KvmTypedTargetKernels.</summary>
    public const string TargetKernels = nameof(TargetKernels);

    /// <summary>The parts written for refused C# declarations (from <see cref="Resolve"/>).</summary>
    public const string Stubs = nameof(Stubs);
}
