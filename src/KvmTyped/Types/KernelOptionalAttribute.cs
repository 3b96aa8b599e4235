namespace KvmTyped.Types;

/// <summary>Declares, in C#, what <c>__kvmt_optional</c> declares in a C schema: on a partial property of a
/// preserve_access_index <see cref="KernelStructAttribute"/> struct, a member that only some kernels have (the view gets
/// a <c>Has_name</c> property telling whether the running kernel has it, and the build-time check against the project's
/// <c>KvmTypedKernel</c> items does not report its absence); on the struct, a struct that only some kernels have.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Struct, Inherited = false)]
public sealed class KernelOptionalAttribute : Attribute
{
}
