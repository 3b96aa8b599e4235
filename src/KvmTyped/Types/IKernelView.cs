namespace KvmTyped.Types;

/// <summary>A generated view of a C struct or union at an address in kernel memory. Views are small readonly
/// structs: creating one reads nothing; each member access reads just that member.</summary>
/// <typeparam name="TSelf">The view type itself.</typeparam>
public interface IKernelView<TSelf>
    where TSelf : struct, IKernelView<TSelf>
{
    /// <summary>The kernel virtual address the view starts at.</summary>
    ulong Address { get; }

    /// <summary>The memory the view reads.</summary>
    IKernelMemory Memory { get; }

    /// <summary>The C name of the type ("struct task_struct").</summary>
    static abstract string TypeName { get; }

    /// <summary>True for preserve_access_index structs, whose layout comes from the image's BTF.</summary>
    static abstract bool IsRelocated { get; }

    /// <summary>A view at an address.</summary>
    static abstract TSelf At(IKernelMemory memory, ulong address);

    /// <summary>The size of the type in the image <paramref name="memory"/> belongs to.</summary>
    static abstract ulong SizeOf(IKernelMemory memory);

    /// <summary>The byte offset of a member (reachable without a name) in the image <paramref name="memory"/> belongs to:
    /// relocated for preserve_access_index types, computed for the others.</summary>
    /// <exception cref="KvmException">No such member, or this kernel lacks it.</exception>
    static abstract ulong OffsetOf(IKernelMemory memory, string member);

    /// <summary>The computed layout under a data model; null for relocated (preserve_access_index) types.</summary>
    static abstract KernelStructLayout? StaticLayout(DataModel model);
}

/// <summary>sizeof and offsetof for generated types, per data model, as drgn offers them.</summary>
public static class KernelTypes
{
    /// <summary>sizeof(T) under a data model.</summary>
    /// <exception cref="KvmException">T is relocated (its layout depends on the image).</exception>
    public static ulong SizeOf<T>(DataModel model)
        where T : struct, IKernelView<T> => Layout<T>(model).Size;

    /// <summary>offsetof(T, member) in the image <paramref name="memory"/> belongs to: the kernel's own offset for a
    /// relocated type, as BPF CO-RE's bpf_core_field_offset gives it.</summary>
    /// <exception cref="KvmException">No such member, or this kernel lacks it.</exception>
    public static ulong OffsetOf<T>(IKernelMemory memory, string member)
        where T : struct, IKernelView<T> => T.OffsetOf(memory, member);

    /// <summary>offsetof(T, member) under a data model, for a member reachable without a name.</summary>
    /// <exception cref="KvmException">T is relocated, or has no such member.</exception>
    public static ulong OffsetOf<T>(DataModel model, string member)
        where T : struct, IKernelView<T> => Layout<T>(model).Field(member).Offset;

    /// <summary>The computed layout of T under a data model.</summary>
    /// <exception cref="KvmException">T is relocated (its layout depends on the image).</exception>
    public static KernelStructLayout Layout<T>(DataModel model)
        where T : struct, IKernelView<T> =>
        T.StaticLayout(model) ?? throw new KvmException($"{T.TypeName} is preserve_access_index: its layout comes from the kernel's BTF, not from the schema");
}
