using KvmTyped.Types;

namespace DumpAnalyzer;

/// <summary>mm_struct's page counter, declared in C# (the same as a C schema would): relocated against the kernel's
/// mm_struct, as a flavor of it.</summary>
[KernelStruct(PreserveAccessIndex = true)]
public partial struct mm_struct___analyzer
{
    /// <summary>unsigned long total_vm: the pages mapped in the address space.</summary>
    [KernelType("unsigned long")]
    public partial ulong total_vm { get; }
}
