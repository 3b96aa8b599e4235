using System.Diagnostics.CodeAnalysis;

namespace KvmTyped.Types;

/// <summary>What generated struct views read through: kernel-virtual memory of one image, in its data model.</summary>
public interface IKernelMemory
{
    /// <summary>The kernel's data model; selects the ILP32 or LP64 layout of every generated type.</summary>
    DataModel DataModel { get; }

    /// <summary>Reads destination.Length bytes at a kernel virtual address.</summary>
    bool TryReadVirtual(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure);
}
