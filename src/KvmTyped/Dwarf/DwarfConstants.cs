namespace KvmTyped.Dwarf;

/// <summary>The DWARF tags this reader looks at (DWARF 5 standard, section 7.5.3, table 7.3).</summary>
internal static class DwTag
{
    public const int ArrayType = 0x01;
    public const int ClassType = 0x02;
    public const int EnumerationType = 0x04;
    public const int FormalParameter = 0x05;
    public const int Member = 0x0d;
    public const int PointerType = 0x0f;
    public const int ReferenceType = 0x10;
    public const int CompileUnit = 0x11;
    public const int StructureType = 0x13;
    public const int SubroutineType = 0x15;
    public const int Typedef = 0x16;
    public const int UnionType = 0x17;
    public const int UnspecifiedParameters = 0x18;
    public const int PtrToMemberType = 0x1f;
    public const int SubrangeType = 0x21;
    public const int BaseType = 0x24;
    public const int ConstType = 0x26;
    public const int Enumerator = 0x28;
    public const int VolatileType = 0x35;
    public const int RestrictType = 0x37;
    public const int PartialUnit = 0x3c;
    public const int UnspecifiedType = 0x3b;
    public const int RvalueReferenceType = 0x42;
    public const int AtomicType = 0x47;
    public const int ImmutableType = 0x4b;
}

/// <summary>The DWARF attributes this reader looks at (DWARF 5 table 7.5).</summary>
internal static class DwAt
{
    public const int Sibling = 0x01;
    public const int Name = 0x03;
    public const int ByteSize = 0x0b;
    public const int BitOffset = 0x0c;
    public const int BitSize = 0x0d;
    public const int ConstValue = 0x1c;
    public const int LowerBound = 0x22;
    public const int UpperBound = 0x2f;
    public const int Count = 0x37;
    public const int DataMemberLocation = 0x38;
    public const int DeclLine = 0x3b;
    public const int Declaration = 0x3c;
    public const int Encoding = 0x3e;
    public const int Type = 0x49;
    public const int Signature = 0x69;
    public const int DataBitOffset = 0x6b;
    public const int StrOffsetsBase = 0x72;
}

/// <summary>The DWARF attribute forms (DWARF 5 table 7.6, plus the GNU extensions gcc and dwz write).</summary>
internal static class DwForm
{
    public const int Addr = 0x01;
    public const int Block2 = 0x03;
    public const int Block4 = 0x04;
    public const int Data2 = 0x05;
    public const int Data4 = 0x06;
    public const int Data8 = 0x07;
    public const int String = 0x08;
    public const int Block = 0x09;
    public const int Block1 = 0x0a;
    public const int Data1 = 0x0b;
    public const int Flag = 0x0c;
    public const int Sdata = 0x0d;
    public const int Strp = 0x0e;
    public const int Udata = 0x0f;
    public const int RefAddr = 0x10;
    public const int Ref1 = 0x11;
    public const int Ref2 = 0x12;
    public const int Ref4 = 0x13;
    public const int Ref8 = 0x14;
    public const int RefUdata = 0x15;
    public const int Indirect = 0x16;
    public const int SecOffset = 0x17;
    public const int Exprloc = 0x18;
    public const int FlagPresent = 0x19;
    public const int Strx = 0x1a;
    public const int Addrx = 0x1b;
    public const int RefSup4 = 0x1c;
    public const int StrpSup = 0x1d;
    public const int Data16 = 0x1e;
    public const int LineStrp = 0x1f;
    public const int RefSig8 = 0x20;
    public const int ImplicitConst = 0x21;
    public const int Loclistx = 0x22;
    public const int Rnglistx = 0x23;
    public const int RefSup8 = 0x24;
    public const int Strx1 = 0x25;
    public const int Strx2 = 0x26;
    public const int Strx3 = 0x27;
    public const int Strx4 = 0x28;
    public const int Addrx1 = 0x29;
    public const int Addrx2 = 0x2a;
    public const int Addrx3 = 0x2b;
    public const int Addrx4 = 0x2c;
    public const int GnuAddrIndex = 0x1f01;
    public const int GnuStrIndex = 0x1f02;
    public const int GnuRefAlt = 0x1f20;
    public const int GnuStrpAlt = 0x1f21;
}

/// <summary>Base type encodings (DWARF 5 table 7.11).</summary>
internal static class DwAte
{
    public const int Boolean = 0x02;
    public const int ComplexFloat = 0x03;
    public const int Float = 0x04;
    public const int Signed = 0x05;
    public const int SignedChar = 0x06;
    public const int Unsigned = 0x07;
    public const int SignedFixed = 0x0d;
    public const int DecimalFloat = 0x0f;
}

/// <summary>Unit types of DWARF 5 unit headers (table 7.2).</summary>
internal static class DwUt
{
    public const int Compile = 0x01;
    public const int Type = 0x02;
    public const int Partial = 0x03;
    public const int Skeleton = 0x04;
    public const int SplitCompile = 0x05;
    public const int SplitType = 0x06;
}

/// <summary>The location-expression operations a member offset may use (DWARF 5 table 7.9).</summary>
internal static class DwOp
{
    public const int Constu = 0x10;
    public const int Plus = 0x22;
    public const int PlusUconst = 0x23;
    public const int Lit0 = 0x30;
    public const int Lit31 = 0x4f;
}
