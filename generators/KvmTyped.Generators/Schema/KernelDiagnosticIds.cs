namespace KvmTyped.Generators.Schema;

/// <summary>Stable ids of the build-time check of declared structs against the project's target kernels
/// (<c>KvmTypedKernel</c> items), in a range of their own (KVMT0100–KVMT0199). Never renumber: users suppress them by id.</summary>
internal static class KernelDiagnosticIds
{
    /// <summary>A member of a relocated struct that a target kernel lacks, not marked optional.</summary>
    public const string MemberMissing = "KVMT0100";

    /// <summary>A relocated struct that a target kernel lacks, not marked optional.</summary>
    public const string StructMissing = "KVMT0101";

    /// <summary>A member whose declared type is incompatible with the kernel's (kind, size, array length, bitfield,
    /// signedness).</summary>
    public const string TypeMismatch = "KVMT0102";

    /// <summary>A complete struct whose computed layout (size, member offsets) differs from the kernel's.</summary>
    public const string LayoutDiffers = "KVMT0103";

    /// <summary>A kernel digest (written by the build task) that cannot be read.</summary>
    public const string BadDigest = "KVMT0104";

    /// <summary>The optional marker on a complete struct or its member (only relocated structs may vary between kernels).</summary>
    public const string OptionalOnComplete = "KVMT0105";

    /// <summary>The build task could not find a kernel file (an MSBuild error, not a compiler diagnostic).</summary>
    public const string KernelFileMissing = "KVMT0150";

    /// <summary>The build task could not read BTF from a kernel file (an MSBuild error).</summary>
    public const string KernelFileUnreadable = "KVMT0151";

    /// <summary>Two kernel files of one name, whose digests would be one file (an MSBuild error).</summary>
    public const string KernelFileNameTwice = "KVMT0152";
}
