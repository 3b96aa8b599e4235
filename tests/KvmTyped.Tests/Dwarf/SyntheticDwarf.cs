using KvmTyped.Btf;
using KvmTyped.Dwarf;

namespace KvmTyped.Tests.Dwarf;

/// <summary>Common shapes of DWARF built in code: a unit entry, <c>int</c>, and <c>struct point { int x; int y; }</c>
/// whose attributes a test varies.</summary>
internal sealed class SyntheticDwarf
{
    public SyntheticDwarf(DwarfBuilder b)
    {
        B = b;
        CompileUnit = b.Version >= 5
            ? b.Abbrev(DwTag.CompileUnit, true, (DwAt.Name, DwForm.String), (DwAt.StrOffsetsBase, DwForm.SecOffset))
            : b.Abbrev(DwTag.CompileUnit, true, (DwAt.Name, DwForm.String));
        Int = b.Abbrev(DwTag.BaseType, false, (DwAt.Name, DwForm.String), (DwAt.Encoding, DwForm.Data1), (DwAt.ByteSize, DwForm.Data1));
        Struct = b.Abbrev(DwTag.StructureType, true, (DwAt.Name, DwForm.Strp), (DwAt.ByteSize, DwForm.Data1));
        Union = b.Abbrev(DwTag.UnionType, true, (DwAt.Name, DwForm.Strp), (DwAt.ByteSize, DwForm.Data1));
        AnonymousComposite = b.Abbrev(DwTag.UnionType, true, (DwAt.ByteSize, DwForm.Data1));
        Member = b.Abbrev(DwTag.Member, false, (DwAt.Name, DwForm.String), (DwAt.Type, DwForm.Ref4), (DwAt.DataMemberLocation, DwForm.Data1));
        AnonymousMember = b.Abbrev(DwTag.Member, false, (DwAt.Type, DwForm.Ref4), (DwAt.DataMemberLocation, DwForm.Data1));
        Typedef = b.Abbrev(DwTag.Typedef, false, (DwAt.Name, DwForm.String), (DwAt.Type, DwForm.Ref4));
        Pointer = b.Abbrev(DwTag.PointerType, false, (DwAt.ByteSize, DwForm.Data1), (DwAt.Type, DwForm.Ref4));
        VoidPointer = b.Abbrev(DwTag.PointerType, false, (DwAt.ByteSize, DwForm.Data1));
        Const = b.Abbrev(DwTag.ConstType, false, (DwAt.Type, DwForm.Ref4));
        Array = b.Abbrev(DwTag.ArrayType, true, (DwAt.Type, DwForm.Ref4));
        Subrange = b.Abbrev(DwTag.SubrangeType, false, (DwAt.UpperBound, DwForm.Data1));
        SubrangeCount = b.Abbrev(DwTag.SubrangeType, false, (DwAt.Count, DwForm.Udata));
        Declaration = b.Abbrev(DwTag.StructureType, false, (DwAt.Name, DwForm.String), (DwAt.Declaration, DwForm.FlagPresent));
    }

    public DwarfBuilder B { get; }
    public int CompileUnit { get; }
    public int Int { get; }
    public int Struct { get; }
    public int Union { get; }
    public int AnonymousComposite { get; }
    public int Member { get; }
    public int AnonymousMember { get; }
    public int Typedef { get; }
    public int Pointer { get; }
    public int VoidPointer { get; }
    public int Const { get; }
    public int Array { get; }
    public int Subrange { get; }
    public int SubrangeCount { get; }
    public int Declaration { get; }

    /// <summary>Opens a unit: its unit entry (with DW_AT_str_offsets_base for DWARF 5) and <c>int</c> at label "int".</summary>
    public DieWriter Unit(string name = "test.c")
    {
        var u = B.Unit();
        u.Die(CompileUnit).CStr(name);
        if (B.Version >= 5)
            u.Offset((ulong)B.StrOffsetsBase);
        u.Label("int").Die(Int).CStr("int").U8(DwAte.Signed).U8(4);
        return u;
    }

    /// <summary>Writes <c>struct point { int x; int y; }</c> with the struct abbreviation of the caller's choice.</summary>
    public DieWriter Point(DieWriter u, int structAbbrev, Action<DieWriter> structAttributes)
    {
        u.Label("point").Die(structAbbrev);
        structAttributes(u);
        return u.Die(Member).CStr("x").Ref("int").U8(0)
            .Die(Member).CStr("y").Ref("int").U8(4)
            .End();
    }

    /// <summary>The layout of the one struct or union of this name in the converted types.</summary>
    public static string LayoutOf(BtfTypes t, string name)
    {
        var ids = t.FindAll(name).Where(i => t.KindOf(i) is BtfKind.Struct or BtfKind.Union).ToList();
        Assert.True(ids.Count == 1, $"expected one struct or union '{name}', found {ids.Count}");
        return DwarfTest.Layout(t, ids[0]);
    }
}
