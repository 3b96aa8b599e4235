using KvmTyped.Btf;
using KvmTyped.Dwarf;

namespace KvmTyped.Tests.Dwarf;

/// <summary>Every attribute form is read or skipped by its size, in every unit format: DWARF 2 to 5, 32- and 64-bit
/// DWARF, ELF32 and ELF64, either byte order. Each test builds the DWARF in code and checks the converted struct.</summary>
public sealed class DwarfFormTests
{
    private const string PointLayout = "8 {x@0/0/4, y@32/0/4}";

    /// <summary>An attribute this reader does not use, so its value must be skipped exactly.</summary>
    private const int UnusedAttribute = 0x3fe0;

    public static TheoryData<int> AllForms()
    {
        var data = new TheoryData<int>();
        foreach (var f in new[]
        {
            DwForm.Addr, DwForm.Block2, DwForm.Block4, DwForm.Data2, DwForm.Data4, DwForm.Data8, DwForm.String, DwForm.Block,
            DwForm.Block1, DwForm.Data1, DwForm.Flag, DwForm.Sdata, DwForm.Strp, DwForm.Udata, DwForm.RefAddr, DwForm.Ref1,
            DwForm.Ref2, DwForm.Ref4, DwForm.Ref8, DwForm.RefUdata, DwForm.Indirect, DwForm.SecOffset, DwForm.Exprloc,
            DwForm.FlagPresent, DwForm.Strx, DwForm.Addrx, DwForm.RefSup4, DwForm.StrpSup, DwForm.Data16, DwForm.LineStrp,
            DwForm.RefSig8, DwForm.ImplicitConst, DwForm.Loclistx, DwForm.Rnglistx, DwForm.RefSup8, DwForm.Strx1, DwForm.Strx2,
            DwForm.Strx3, DwForm.Strx4, DwForm.Addrx1, DwForm.Addrx2, DwForm.Addrx3, DwForm.Addrx4, DwForm.GnuAddrIndex,
            DwForm.GnuStrIndex, DwForm.GnuRefAlt, DwForm.GnuStrpAlt,
        })
            data.Add(f);
        return data;
    }

    /// <summary>A value of <paramref name="form"/> whose bytes would be misread as the next attribute if skipped wrongly.</summary>
    private static void WriteValue(DieWriter u, int form)
    {
        switch (form)
        {
            case DwForm.Addr: u.Address(0x1122334455667788); break;
            case DwForm.Block2: u.U16(3).Bytes(0xff, 0xfe, 0xfd); break;
            case DwForm.Block4: u.U32(2).Bytes(0xff, 0xfe); break;
            case DwForm.Data2 or DwForm.Ref2 or DwForm.Strx2 or DwForm.Addrx2: u.U16(0xffff); break;
            case DwForm.Data4 or DwForm.Ref4 or DwForm.Strx4 or DwForm.Addrx4 or DwForm.RefSup4: u.U32(0xfffffff0); break;
            case DwForm.Data8 or DwForm.Ref8 or DwForm.RefSig8 or DwForm.RefSup8: u.U64(0xfffffffffffffff0); break;
            case DwForm.String: u.CStr("skipped inline string"); break;
            case DwForm.Block or DwForm.Exprloc: u.Uleb(3).Bytes(0x23, 0x80, 0x01); break;
            case DwForm.Block1: u.U8(2).Bytes(0xff, 0xff); break;
            case DwForm.Data1 or DwForm.Flag or DwForm.Ref1 or DwForm.Strx1 or DwForm.Addrx1: u.U8(0xff); break;
            case DwForm.Strx3 or DwForm.Addrx3: u.Fixed(0xffffff, 3); break;
            case DwForm.Sdata: u.Sleb(-1_000_000); break;
            case DwForm.Udata or DwForm.RefUdata or DwForm.Strx or DwForm.Addrx or DwForm.Loclistx or DwForm.Rnglistx
                or DwForm.GnuAddrIndex or DwForm.GnuStrIndex:
                u.Uleb(1_000_000); break;
            case DwForm.Strp or DwForm.SecOffset or DwForm.LineStrp or DwForm.StrpSup or DwForm.GnuRefAlt or DwForm.GnuStrpAlt or DwForm.RefAddr:
                u.Offset(0xfffffff0); break;
            case DwForm.Indirect: u.Uleb(DwForm.Data2).U16(0xffff); break;
            case DwForm.Data16: u.U64(ulong.MaxValue).U64(ulong.MaxValue); break;
            case DwForm.FlagPresent or DwForm.ImplicitConst: break;
            default: throw new ArgumentOutOfRangeException(nameof(form), form, "no sample value");
        }
    }

    [Theory]
    [MemberData(nameof(AllForms))]
    public void EveryFormIsSkippedByItsSize(int form)
    {
        foreach (bool dwarf64 in new[] { false, true })
        {
            var b = new DwarfBuilder { Version = 5, Dwarf64 = dwarf64 };
            var s = new SyntheticDwarf(b);
            int odd = b.AbbrevWithConsts(DwTag.StructureType, true, (UnusedAttribute, form, -7), (DwAt.Name, DwForm.Strp, 0), (DwAt.ByteSize, DwForm.Data1, 0));
            var u = s.Unit();
            s.Point(u, odd, w =>
            {
                WriteValue(w, form);
                w.Strp("point").U8(8);
            });
            u.End();
            Assert.Equal(PointLayout, SyntheticDwarf.LayoutOf(DwarfTest.Convert(b.Elf()), "point"));
        }
    }

    [Theory]
    [InlineData(DwForm.String)]
    [InlineData(DwForm.Strp)]
    [InlineData(DwForm.LineStrp)]
    [InlineData(DwForm.Strx)]
    [InlineData(DwForm.Strx1)]
    [InlineData(DwForm.Strx2)]
    [InlineData(DwForm.Strx3)]
    [InlineData(DwForm.Strx4)]
    [InlineData(DwForm.GnuStrIndex)]
    [InlineData(DwForm.Indirect)]
    public void NamesAreReadInEveryStringForm(int form)
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        int abbrev = b.Abbrev(DwTag.StructureType, true, (DwAt.Name, form), (DwAt.ByteSize, DwForm.Data1));
        b.StrIndex("unrelated");
        var u = s.Unit();
        s.Point(u, abbrev, w =>
        {
            switch (form)
            {
                case DwForm.String: w.CStr("point"); break;
                case DwForm.Strp: w.Strp("point"); break;
                case DwForm.LineStrp: w.Offset((ulong)b.LineStr("point")); break;
                case DwForm.Strx or DwForm.GnuStrIndex: w.Uleb((ulong)b.StrIndex("point")); break;
                case DwForm.Indirect: w.Uleb(DwForm.Strx1).U8((byte)b.StrIndex("point")); break;
                default: w.Fixed((ulong)b.StrIndex("point"), form - DwForm.Strx1 + 1); break;
            }
            w.U8(8);
        });
        u.End();
        Assert.Equal(PointLayout, SyntheticDwarf.LayoutOf(DwarfTest.Convert(b.Elf()), "point"));
    }

    [Theory]
    [InlineData(DwForm.Data1, 1)]
    [InlineData(DwForm.Data2, 2)]
    [InlineData(DwForm.Data4, 4)]
    [InlineData(DwForm.Data8, 8)]
    [InlineData(DwForm.Data16, 16)]
    [InlineData(DwForm.Udata, 0)]
    [InlineData(DwForm.Sdata, 0)]
    [InlineData(DwForm.ImplicitConst, 0)]
    public void SizesAreReadInEveryConstantForm(int form, int width)
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        int abbrev = b.AbbrevWithConsts(DwTag.StructureType, true, (DwAt.Name, DwForm.Strp, 0), (DwAt.ByteSize, form, 300));
        var u = s.Unit();
        s.Point(u, abbrev, w =>
        {
            w.Strp("point");
            switch (form)
            {
                case DwForm.Udata: w.Uleb(300); break;
                case DwForm.Sdata: w.Sleb(300); break;
                case DwForm.ImplicitConst: break;
                case DwForm.Data16: w.Fixed(b.BigEndian ? 0UL : 300UL, 8).Fixed(b.BigEndian ? 300UL : 0UL, 8); break;
                case DwForm.Data1: w.U8(200); break;
                default: w.Fixed(300, width); break;
            }
        });
        u.End();
        long expected = form == DwForm.Data1 ? 200 : 300;
        Assert.Equal($"{expected} {{x@0/0/4, y@32/0/4}}", SyntheticDwarf.LayoutOf(DwarfTest.Convert(b.Elf()), "point"));
    }

    [Theory]
    [InlineData(DwForm.Ref1)]
    [InlineData(DwForm.Ref2)]
    [InlineData(DwForm.Ref4)]
    [InlineData(DwForm.Ref8)]
    [InlineData(DwForm.RefUdata)]
    [InlineData(DwForm.RefAddr)]
    public void TypesAreFollowedInEveryReferenceForm(int form)
    {
        var b = new DwarfBuilder { Version = 4 };
        var s = new SyntheticDwarf(b);
        int member = b.Abbrev(DwTag.Member, false, (DwAt.Name, DwForm.String), (DwAt.Type, form), (DwAt.DataMemberLocation, DwForm.Data1));
        var u = s.Unit();
        u.Die(s.Struct).Strp("pair").U8(16);
        foreach (var (name, at) in new[] { ("a", 0), ("b", 8) })
        {
            u.Die(member).CStr(name);
            switch (form)
            {
                case DwForm.Ref1: u.Ref("long", 1); break;
                case DwForm.Ref2: u.Ref("long", 2); break;
                case DwForm.Ref8: u.Ref("long", 8); break;
                case DwForm.RefUdata: u.Ref("long", 1); break; // a one-byte ULEB128 (the label lies below 0x80)
                case DwForm.RefAddr: u.RefAddr("long"); break;
                default: u.Ref("long"); break;
            }
            u.U8((byte)at);
        }
        u.End();
        u.Label("long").Die(s.Int).CStr("long int").U8(DwAte.Signed).U8(8);
        u.End();
        var t = DwarfTest.Convert(b.Elf());
        Assert.Equal("16 {a@0/0/8, b@64/0/8}", SyntheticDwarf.LayoutOf(t, "pair"));
        Assert.True(t.TryFind("long int", BtfKind.Int, out _));
    }

    public static TheoryData<int, bool, bool, bool> Formats() => new()
    {
        { 2, false, false, false },
        { 3, true, true, false },
        { 3, false, false, true },
        { 4, false, true, true },
        { 4, true, false, false },
        { 5, false, true, false },
        { 5, true, true, true },
        { 5, false, false, true },
    };

    [Theory]
    [MemberData(nameof(Formats))]
    public void EveryUnitFormatReads(int version, bool dwarf64, bool elf64, bool bigEndian)
    {
        var b = new DwarfBuilder { Version = version, Dwarf64 = dwarf64, Is64 = elf64, BigEndian = bigEndian };
        var s = new SyntheticDwarf(b);
        var u = s.Unit();
        s.Point(u, s.Struct, w => w.Strp("point").U8(8));
        u.Die(s.Pointer).U8((byte)b.AddressSize).Ref("point");
        u.End();
        var t = DwarfTest.Convert(b.Elf(), b.AddressSize);
        Assert.Equal(PointLayout, SyntheticDwarf.LayoutOf(t, "point"));
        Assert.Equal(bigEndian, t.IsBigEndian);
    }

    [Fact]
    public void PartialUnitsShareTheirTypesThroughRefAddr()
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        int partialRoot = b.Abbrev(DwTag.PartialUnit, true);
        int farMember = b.Abbrev(DwTag.Member, false, (DwAt.Name, DwForm.String), (DwAt.Type, DwForm.RefAddr), (DwAt.DataMemberLocation, DwForm.Data1));
        var shared = b.Unit(partial: true);
        shared.Die(partialRoot);
        shared.Label("int").Die(s.Int).CStr("int").U8(DwAte.Signed).U8(4);
        s.Point(shared, s.Struct, w => w.Strp("point").U8(8));
        shared.End();
        var u = s.Unit();
        u.Die(s.Struct).Strp("user").U8(8).Die(farMember).CStr("p").RefAddr("point").U8(0).End();
        u.End();
        var t = DwarfTest.Convert(b.Elf());
        Assert.Equal(PointLayout, SyntheticDwarf.LayoutOf(t, "point"));
        Assert.Equal(t.Find("point", BtfKind.Struct), t.FindMember(t.Find("user", BtfKind.Struct), "p")!.Value.TypeId);
    }

    [Fact]
    public void TypeUnitsAreReachedThroughTheirSignature()
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        int sigMember = b.Abbrev(DwTag.Member, false, (DwAt.Name, DwForm.String), (DwAt.Type, DwForm.RefSig8), (DwAt.DataMemberLocation, DwForm.Data1));
        var tu = b.Unit(signature: 0x0123456789abcdef, typeLabel: "point");
        tu.Die(s.CompileUnit).CStr("type unit").Offset((ulong)b.StrOffsetsBase);
        tu.Label("int").Die(s.Int).CStr("int").U8(DwAte.Signed).U8(4);
        s.Point(tu, s.Struct, w => w.Strp("point").U8(8));
        tu.End();
        var u = s.Unit();
        u.Die(s.Struct).Strp("holder").U8(16)
            .Die(sigMember).CStr("p").U64(0x0123456789abcdef).U8(0)
            .Die(sigMember).CStr("q").U64(0x0123456789abcdef).U8(8)
            .End();
        u.End();
        var t = DwarfTest.Convert(b.Elf());
        Assert.Equal("16 {p@0/0/8, q@64/0/8}", SyntheticDwarf.LayoutOf(t, "holder"));
        var p = t.FindMember(t.Find("holder", BtfKind.Struct), "p")!.Value;
        Assert.Equal("point", t.NameOf(p.TypeId));
        Assert.Equal(PointLayout, SyntheticDwarf.LayoutOf(t, "point"));
    }
}
