namespace KvmTyped.Btf;

/// <summary>One type record of a BTF blob, as stored: the common header of every kind.</summary>
/// <param name="Id">The type id (1-based; split BTF continues its base's ids).</param>
/// <param name="Kind">The kind.</param>
/// <param name="NameOffset">The offset of the name in the string section (0 = no name).</param>
/// <param name="KindFlag">Bit 31 of info: bitfield member offsets (struct/union), union (fwd), signed (enum).</param>
/// <param name="Vlen">Bits 0–15 of info: member, value or parameter count (for <see cref="BtfKind.Func"/>: linkage).</param>
/// <param name="SizeOrType">The size in bytes (int, enum, struct, union, datasec, float) or a referenced type id.</param>
internal readonly record struct BtfType(int Id, BtfKind Kind, uint NameOffset, bool KindFlag, int Vlen, uint SizeOrType)
{
    /// <summary>The referenced type id (pointer target, typedef target, qualifier target, function prototype,
    /// variable type, tagged type).</summary>
    public int TargetId => (int)SizeOrType;
}

/// <summary>The extra word of an <see cref="BtfKind.Int"/>.</summary>
/// <param name="Encoding">Bit flags: 1 signed, 2 char, 4 bool.</param>
/// <param name="BitOffset">The bit offset of the value within its storage (almost always 0).</param>
/// <param name="Bits">The number of value bits.</param>
internal readonly record struct BtfInt(int Encoding, int BitOffset, int Bits)
{
    /// <summary>Whether the integer is signed.</summary>
    public bool IsSigned => (Encoding & 1) != 0;

    /// <summary>Whether the integer is a character type.</summary>
    public bool IsChar => (Encoding & 2) != 0;

    /// <summary>Whether the integer is a boolean.</summary>
    public bool IsBool => (Encoding & 4) != 0;
}

/// <summary>The element type, index type and element count of an <see cref="BtfKind.Array"/>.</summary>
/// <param name="ElementType">The element type id.</param>
/// <param name="IndexType">The index type id.</param>
/// <param name="Count">The number of elements (0 for a flexible array).</param>
internal readonly record struct BtfArray(int ElementType, int IndexType, uint Count);

/// <summary>A direct member of a struct or union.</summary>
/// <param name="Name">The member name; empty for an anonymous member.</param>
/// <param name="TypeId">The member's type id.</param>
/// <param name="BitOffset">The offset of the member from the start of its parent, in bits.</param>
/// <param name="BitfieldSize">The width of a bitfield in bits; 0 when the member is not a bitfield.</param>
internal readonly record struct BtfMember(string Name, int TypeId, long BitOffset, int BitfieldSize)
{
    /// <summary>Whether the member is a bitfield.</summary>
    public bool IsBitfield => BitfieldSize != 0;
}

/// <summary>A member of a struct or union with anonymous struct and union members flattened in: offsets
/// count from the start of the outermost struct.</summary>
/// <param name="Name">The member name.</param>
/// <param name="TypeId">The member's type id.</param>
/// <param name="BitOffset">The offset from the start of the outermost struct in bits (bit 0 = lowest bit of byte 0).</param>
/// <param name="BitSize">The width of a bitfield in bits; 0 when the member is not a bitfield.</param>
/// <param name="Size">The size of the member's type in bytes (for a bitfield: of its declared type).</param>
internal readonly record struct BtfField(string Name, int TypeId, long BitOffset, int BitSize, long Size)
{
    /// <summary>Whether the member is a bitfield.</summary>
    public bool IsBitfield => BitSize != 0;

    /// <summary>The byte offset (for a bitfield: of the byte holding its lowest bit).</summary>
    public long Offset => BitOffset >> 3;
}

/// <summary>A value of an <see cref="BtfKind.Enum"/> or <see cref="BtfKind.Enum64"/>.</summary>
/// <param name="Name">The enumerator.</param>
/// <param name="Value">The value, sign-extended when the enum is signed and zero-extended otherwise.</param>
internal readonly record struct BtfEnumValue(string Name, long Value)
{
    /// <summary>The value's 64 bits read as unsigned.</summary>
    public ulong UnsignedValue => unchecked((ulong)Value);
}

/// <summary>A parameter of a <see cref="BtfKind.FuncProto"/>.</summary>
/// <param name="Name">The parameter name (often empty).</param>
/// <param name="TypeId">The parameter type; 0 for the <c>...</c> of a variadic function (last parameter).</param>
internal readonly record struct BtfParam(string Name, int TypeId);

/// <summary>A variable placed in a <see cref="BtfKind.Datasec"/>.</summary>
/// <param name="TypeId">The <see cref="BtfKind.Var"/> (or <see cref="BtfKind.Func"/>) type id.</param>
/// <param name="Offset">The variable's offset within the section.</param>
/// <param name="Size">The variable's size in bytes.</param>
internal readonly record struct BtfVarSecInfo(int TypeId, uint Offset, uint Size);
