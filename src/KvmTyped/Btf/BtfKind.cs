namespace KvmTyped.Btf;

/// <summary>The kind of a BTF type, as numbered in the kernel's include/uapi/linux/btf.h.</summary>
internal enum BtfKind : byte
{
    /// <summary>Type id 0: <c>void</c>. Never stored in a blob.</summary>
    Void = 0,

    /// <summary>An integer (or char, or bool) of a given size and bit width.</summary>
    Int = 1,

    /// <summary>A pointer to another type. BTF records no size for it: see <see cref="BtfTypes.PointerSize"/>.</summary>
    Ptr = 2,

    /// <summary>An array: element type, index type and element count.</summary>
    Array = 3,

    /// <summary>A struct with members.</summary>
    Struct = 4,

    /// <summary>A union with members.</summary>
    Union = 5,

    /// <summary>An enumeration with 32-bit values.</summary>
    Enum = 6,

    /// <summary>A forward declaration of a struct or (kind flag set) a union.</summary>
    Fwd = 7,

    /// <summary>A typedef naming another type.</summary>
    Typedef = 8,

    /// <summary>The <c>volatile</c> qualifier.</summary>
    Volatile = 9,

    /// <summary>The <c>const</c> qualifier.</summary>
    Const = 10,

    /// <summary>The <c>restrict</c> qualifier.</summary>
    Restrict = 11,

    /// <summary>A function: a name and a <see cref="FuncProto"/>; the info's vlen holds its linkage.</summary>
    Func = 12,

    /// <summary>A function signature: return type and parameters.</summary>
    FuncProto = 13,

    /// <summary>A variable: a name, a type and a linkage.</summary>
    Var = 14,

    /// <summary>A data section: the variables placed in it with their offsets and sizes.</summary>
    Datasec = 15,

    /// <summary>A floating-point type of a given size.</summary>
    Float = 16,

    /// <summary>A declaration tag (<c>btf_decl_tag</c>) on a type, or on one of its members or parameters.</summary>
    DeclTag = 17,

    /// <summary>A type tag (<c>btf_type_tag</c>, e.g. <c>__user</c>, <c>__rcu</c>) qualifying another type.</summary>
    TypeTag = 18,

    /// <summary>An enumeration with 64-bit values.</summary>
    Enum64 = 19,
}
