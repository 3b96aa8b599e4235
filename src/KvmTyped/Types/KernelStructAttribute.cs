namespace KvmTyped.Types;

/// <summary>Declares a kernel struct in C#: put it on a <c>partial struct</c> named like the C tag whose <c>partial</c> get-only
/// properties are the members, in C order; the generator implements them as it does for a C schema.
/// C types follow from C# types (int → int, long → long long, nint → long, KPtr&lt;T&gt; → struct T *, a view type →
/// struct by value, string with <see cref="KernelArrayAttribute"/> → char[N]); <see cref="KernelTypeAttribute"/>
/// names any other C type.</summary>
[AttributeUsage(AttributeTargets.Struct, Inherited = false)]
public sealed class KernelStructAttribute : Attribute
{
    /// <summary>Declares a union instead of a struct.</summary>
    public bool Union { get; set; }

    /// <summary>__attribute__((packed)).</summary>
    public bool Packed { get; set; }

    /// <summary>__attribute__((aligned(N))); 0 for none.</summary>
    public int Aligned { get; set; }

    /// <summary>__attribute__((preserve_access_index)): a subset relocated against the kernel's BTF.</summary>
    public bool PreserveAccessIndex { get; set; }
}

/// <summary>Makes a member an array: <c>[KernelArray(16)] string comm</c> is <c>char comm[16]</c>;
/// several lengths make a multi-dimensional array; no length makes a flexible array member.</summary>
[AttributeUsage(AttributeTargets.Property, Inherited = false)]
public sealed class KernelArrayAttribute : Attribute
{
    /// <summary>The dimensions, outermost first.</summary>
    public KernelArrayAttribute(params int[] lengths) => Lengths = lengths;

    /// <summary>The dimensions, outermost first; empty for a flexible array member.</summary>
    public IReadOnlyList<int> Lengths { get; }
}

/// <summary>Makes a member a bitfield of the given width.</summary>
[AttributeUsage(AttributeTargets.Property, Inherited = false)]
public sealed class KernelBitsAttribute : Attribute
{
    /// <summary>The width in bits.</summary>
    public KernelBitsAttribute(int width) => Width = width;

    /// <summary>The width in bits.</summary>
    public int Width { get; }
}

/// <summary>Gives a member's C type explicitly, e.g. <c>"unsigned long"</c>, <c>"void *"</c>, <c>"union u"</c>.</summary>
[AttributeUsage(AttributeTargets.Property, Inherited = false)]
public sealed class KernelTypeAttribute : Attribute
{
    /// <summary>The C type, without a member name.</summary>
    public KernelTypeAttribute(string cType) => CType = cType;

    /// <summary>The C type.</summary>
    public string CType { get; }
}
