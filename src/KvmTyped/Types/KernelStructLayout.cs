namespace KvmTyped.Types;

/// <summary>One member's place in a struct: byte offset and size; for a bitfield also its bit position from the
/// start of the struct (bit 0 = lowest bit of byte 0, as BTF counts) and width. BitSize is 0 for other members.</summary>
/// <param name="Name">The member's C name.</param>
/// <param name="Offset">Byte offset (for a bitfield: of the byte holding its first bit).</param>
/// <param name="Size">Size in bytes of the member's type.</param>
/// <param name="BitOffset">Bit offset from the start of the struct.</param>
/// <param name="BitSize">Width of a bitfield; 0 for other members.</param>
public sealed record KernelFieldLayout(string Name, ulong Offset, ulong Size, ulong BitOffset, int BitSize);

/// <summary>The layout of a complete struct or union under one data model, computed by the System V ABI rules.</summary>
public sealed class KernelStructLayout
{
    private readonly KernelFieldLayout[] _fields;

    /// <summary>Creates a layout (generated code does this once per type and model).</summary>
    public KernelStructLayout(string name, ulong size, int align, KernelFieldLayout[] fields)
    {
        Name = name;
        Size = size;
        Align = align;
        _fields = fields ?? throw new ArgumentNullException(nameof(fields));
    }

    /// <summary>The C tag.</summary>
    public string Name { get; }

    /// <summary>sizeof.</summary>
    public ulong Size { get; }

    /// <summary>_Alignof (as a member of another struct).</summary>
    public int Align { get; }

    /// <summary>Every named member reachable without a name, in declaration order.</summary>
    public IReadOnlyList<KernelFieldLayout> Fields => _fields;

    /// <summary>The member called <paramref name="name"/>.</summary>
    /// <exception cref="KvmException">No such member.</exception>
    public KernelFieldLayout Field(string name)
    {
        foreach (var f in _fields)
        {
            if (f.Name == name) return f;
        }
        throw new KvmException($"{Name} has no member '{name}'");
    }
}
