using KvmTyped.Btf;
using KvmTyped.Dwarf;

namespace KvmTyped.Tests.Dwarf;

/// <summary>What each kind of DWARF type becomes in BTF, on DWARF built in code: bitfields in both encodings and byte
/// orders, member offsets as expressions, enums (signed, 64-bit), declarations, anonymous members, arrays, prototypes,
/// qualifiers, deduplication across units, compressed sections and the relocations of object files.</summary>
public sealed class DwarfConversionTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LegacyBitfieldsCountFromTheMostSignificantBit(bool bigEndian)
    {
        // struct flags { unsigned a : 3; unsigned b : 5; int c; } as DWARF 2-4 write it: DW_AT_bit_offset counts from
        // the most significant bit of a DW_AT_byte_size storage unit at DW_AT_data_member_location.
        var b = new DwarfBuilder { Version = 4, BigEndian = bigEndian };
        var s = new SyntheticDwarf(b);
        int bit = b.Abbrev(DwTag.Member, false, (DwAt.Name, DwForm.String), (DwAt.Type, DwForm.Ref4), (DwAt.ByteSize, DwForm.Data1),
            (DwAt.BitSize, DwForm.Data1), (DwAt.BitOffset, DwForm.Data1), (DwAt.DataMemberLocation, DwForm.Data1));
        var u = s.Unit();
        u.Label("uint").Die(s.Int).CStr("unsigned int").U8(DwAte.Unsigned).U8(4);
        u.Die(s.Struct).Strp("flags").U8(8)
            .Die(bit).CStr("a").Ref("uint").U8(4).U8(3).U8(bigEndian ? (byte)0 : (byte)29).U8(0)
            .Die(bit).CStr("b").Ref("uint").U8(4).U8(5).U8(bigEndian ? (byte)3 : (byte)24).U8(0)
            .Die(s.Member).CStr("c").Ref("int").U8(4)
            .End();
        u.End();
        var t = DwarfTest.Convert(b.Elf());
        Assert.Equal("8 {a@0/3/4, b@3/5/4, c@32/0/4}", SyntheticDwarf.LayoutOf(t, "flags"));
        Assert.True(t.Get(t.Find("flags", BtfKind.Struct)).KindFlag);
    }

    [Fact]
    public void DataBitOffsetsAreTakenAsTheyAre()
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        int bit = b.Abbrev(DwTag.Member, false, (DwAt.Name, DwForm.String), (DwAt.Type, DwForm.Ref4), (DwAt.DataBitOffset, DwForm.Data2), (DwAt.BitSize, DwForm.Data1));
        var u = s.Unit();
        u.Die(s.Struct).Strp("wide").U8(16)
            .Die(bit).CStr("lo").Ref("int").U16(1).U8(7)
            .Die(bit).CStr("hi").Ref("int").U16(100).U8(20)
            .End();
        u.End();
        Assert.Equal("16 {lo@1/7/4, hi@100/20/4}", SyntheticDwarf.LayoutOf(DwarfTest.Convert(b.Elf()), "wide"));
    }

    [Fact]
    public void BitfieldsPastTheKindFlagsReachUseNarrowIntegers()
    {
        // Kind-flag member offsets have 24 bits (2 MiB); a bitfield further in is written as older BTF did: a plain
        // bit offset and an int type as wide as the bitfield.
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        int big = b.Abbrev(DwTag.StructureType, true, (DwAt.Name, DwForm.Strp), (DwAt.ByteSize, DwForm.Data4));
        int bit = b.Abbrev(DwTag.Member, false, (DwAt.Name, DwForm.String), (DwAt.Type, DwForm.Ref4), (DwAt.DataBitOffset, DwForm.Data4), (DwAt.BitSize, DwForm.Data1));
        var u = s.Unit();
        u.Label("uint").Die(s.Int).CStr("unsigned int").U8(DwAte.Unsigned).U8(4);
        u.Die(big).Strp("huge").U32(3 << 20)
            .Die(bit).CStr("low").Ref("uint").U32(5).U8(3)
            .Die(bit).CStr("far").Ref("uint").U32(5 << 22).U8(7)
            .End();
        u.End();
        var t = DwarfTest.Convert(b.Elf());
        int huge = t.Find("huge", BtfKind.Struct);
        Assert.False(t.Get(huge).KindFlag);
        Assert.Equal($"{3 << 20} {{low@5/3/4, far@{5 << 22}/7/4}}", DwarfTest.Layout(t, huge));
    }

    [Fact]
    public void MemberOffsetsMayBeExpressions()
    {
        var b = new DwarfBuilder { Version = 3 };
        var s = new SyntheticDwarf(b);
        int exprMember = b.Abbrev(DwTag.Member, false, (DwAt.Name, DwForm.String), (DwAt.Type, DwForm.Ref4), (DwAt.DataMemberLocation, DwForm.Block1));
        var u = s.Unit();
        u.Die(s.Struct).Strp("located").U8(32)
            .Die(exprMember).CStr("a").Ref("int").U8(2).Bytes(DwOp.PlusUconst, 12)
            .Die(exprMember).CStr("b").Ref("int").U8(3).Bytes(DwOp.Constu, 20, DwOp.Plus)
            .Die(exprMember).CStr("c").Ref("int").U8(2).Bytes(DwOp.Lit0 + 28, DwOp.Plus)
            .End();
        u.End();
        Assert.Equal("32 {a@96/0/4, b@160/0/4, c@224/0/4}", SyntheticDwarf.LayoutOf(DwarfTest.Convert(b.Elf()), "located"));
    }

    [Fact]
    public void EnumsKeepSignAndWidth()
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        int enumType = b.Abbrev(DwTag.EnumerationType, true, (DwAt.Name, DwForm.String), (DwAt.ByteSize, DwForm.Data1), (DwAt.Type, DwForm.Ref4));
        int enumAnon = b.Abbrev(DwTag.EnumerationType, true, (DwAt.ByteSize, DwForm.Data1));
        int sdata = b.Abbrev(DwTag.Enumerator, false, (DwAt.Name, DwForm.String), (DwAt.ConstValue, DwForm.Sdata));
        int data1 = b.Abbrev(DwTag.Enumerator, false, (DwAt.Name, DwForm.String), (DwAt.ConstValue, DwForm.Data1));
        int data4 = b.Abbrev(DwTag.Enumerator, false, (DwAt.Name, DwForm.String), (DwAt.ConstValue, DwForm.Data4));
        int data8 = b.Abbrev(DwTag.Enumerator, false, (DwAt.Name, DwForm.String), (DwAt.ConstValue, DwForm.Data8));
        var u = s.Unit();
        u.Label("uint").Die(s.Int).CStr("unsigned int").U8(DwAte.Unsigned).U8(4);
        u.Label("ulong").Die(s.Int).CStr("long unsigned int").U8(DwAte.Unsigned).U8(8);
        u.Die(enumType).CStr("signedness").U8(4).Ref("int")
            .Die(sdata).CStr("NEG").Sleb(-5)
            .Die(data1).CStr("BYTE").U8(200)       // gcc writes non-negative values unsigned in the smallest form
            .Die(data4).CStr("WIDE").U32(0xfffffffe) // a 4-byte form of a 4-byte signed enum is sign-extended
            .End();
        u.Die(enumType).CStr("big").U8(8).Ref("ulong")
            .Die(data8).CStr("BIG").U64(0x1_0000_0000)
            .End();
        u.Die(enumAnon).U8(4)
            .Die(data1).CStr("ANON_A").U8(3)
            .End();
        u.End();
        var t = DwarfTest.Convert(b.Elf());
        int signedEnum = t.Find("signedness", BtfKind.Enum);
        Assert.True(t.Get(signedEnum).KindFlag);
        Assert.Equal(new[] { -5L, 200, -2 }, t.GetEnumValues(signedEnum).Select(v => v.Value));
        int big = t.Find("big", BtfKind.Enum64);
        Assert.False(t.Get(big).KindFlag);
        Assert.Equal(0x1_0000_0000UL, t.GetEnumValues(big)[0].UnsignedValue);
        Assert.Contains(Enumerable.Range(1, t.LastId), id => t.KindOf(id) == BtfKind.Enum && t.NameOf(id) == "" && t.GetEnumValues(id)[0].Name == "ANON_A");
    }

    [Fact]
    public void DeclarationsBecomeForwardsOrTheirDefinition()
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        int unionDecl = b.Abbrev(DwTag.UnionType, false, (DwAt.Name, DwForm.String), (DwAt.Declaration, DwForm.Flag));
        var u = s.Unit("a.c");
        u.Label("opaque").Die(s.Declaration).CStr("opaque");
        u.Label("udecl").Die(unionDecl).CStr("u_opaque").U8(1);
        u.Label("decl").Die(s.Declaration).CStr("point");
        u.Label("p1").Die(s.Pointer).U8(8).Ref("opaque");
        u.Label("p2").Die(s.Pointer).U8(8).Ref("udecl");
        u.Label("p3").Die(s.Pointer).U8(8).Ref("decl");
        u.Die(s.Struct).Strp("refs").U8(24)
            .Die(s.Member).CStr("o").Ref("p1").U8(0)
            .Die(s.Member).CStr("u").Ref("p2").U8(8)
            .Die(s.Member).CStr("p").Ref("p3").U8(16)
            .End();
        u.End();
        var v = s.Unit("b.c");
        s.Point(v, s.Struct, w => w.Strp("point").U8(8));
        v.End();
        var t = DwarfTest.Convert(b.Elf());
        int refs = t.Find("refs", BtfKind.Struct);
        var members = t.GetMembers(refs);
        int Target(int i) => t.Get(members[i].TypeId).TargetId;
        Assert.Equal(BtfKind.Fwd, t.KindOf(Target(0)));
        Assert.False(t.Get(Target(0)).KindFlag);
        Assert.Equal(BtfKind.Fwd, t.KindOf(Target(1)));
        Assert.True(t.Get(Target(1)).KindFlag);
        Assert.Equal(BtfKind.Struct, t.KindOf(Target(2)));
        Assert.Equal("point", t.NameOf(Target(2)));
    }

    [Fact]
    public void ADeclarationOfANameDefinedTwoWaysStaysAForward()
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        foreach (var size in new byte[] { 8, 12 })
        {
            var v = s.Unit($"def{size}.c");
            s.Point(v, s.Struct, w => w.Strp("point").U8(size));
            v.End();
        }
        var u = s.Unit("user.c");
        u.Label("decl").Die(s.Declaration).CStr("point");
        u.Label("ptr").Die(s.Pointer).U8(8).Ref("decl");
        u.Die(s.Struct).Strp("user").U8(8).Die(s.Member).CStr("p").Ref("ptr").U8(0).End();
        u.End();
        var t = DwarfTest.Convert(b.Elf());
        Assert.Equal(2, t.FindAll("point").Count(id => t.KindOf(id) == BtfKind.Struct));
        int target = t.Get(t.FindMember(t.Find("user", BtfKind.Struct), "p")!.Value.TypeId).TargetId;
        Assert.Equal(BtfKind.Fwd, t.KindOf(target));
        Assert.Equal("point", t.NameOf(target));
    }

    [Fact]
    public void AnonymousMembersAreFlattenedAndArraysNest()
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        int lowerUpper = b.Abbrev(DwTag.SubrangeType, false, (DwAt.LowerBound, DwForm.Data1), (DwAt.UpperBound, DwForm.Data1));
        int open = b.Abbrev(DwTag.SubrangeType, false);
        var u = s.Unit();
        u.Label("anon").Die(s.AnonymousComposite).U8(4)
            .Die(s.Member).CStr("i").Ref("int").U8(0)
            .Die(s.Member).CStr("j").Ref("int").U8(0)
            .End();
        u.Label("grid").Die(s.Array).Ref("int")
            .Die(s.Subrange).U8(1)
            .Die(s.SubrangeCount).Uleb(3)
            .End();
        u.Label("one_based").Die(s.Array).Ref("int")
            .Die(lowerUpper).U8(1).U8(2)
            .End();
        u.Label("flex").Die(s.Array).Ref("int")
            .Die(open)
            .End();
        u.Die(s.Struct).Strp("holder").U8(36)
            .Die(s.AnonymousMember).Ref("anon").U8(0)
            .Die(s.Member).CStr("grid").Ref("grid").U8(4)
            .Die(s.Member).CStr("two").Ref("one_based").U8(28)
            .Die(s.Member).CStr("rest").Ref("flex").U8(36)
            .End();
        u.End();
        var t = DwarfTest.Convert(b.Elf());
        Assert.Equal("36 {i@0/0/4, j@0/0/4, grid@32/0/24, two@224/0/8, rest@288/0/0}", SyntheticDwarf.LayoutOf(t, "holder"));
        int grid = t.FindMember(t.Find("holder", BtfKind.Struct), "grid")!.Value.TypeId;
        var outer = t.GetArray(grid);
        Assert.Equal(2u, outer.Count);
        Assert.Equal(3u, t.GetArray(outer.ElementType).Count);
    }

    [Fact]
    public void PrototypesQualifiersAndTypedefs()
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        int proto = b.Abbrev(DwTag.SubroutineType, true, (DwAt.Type, DwForm.Ref4));
        int param = b.Abbrev(DwTag.FormalParameter, false, (DwAt.Type, DwForm.Ref4));
        int varargs = b.Abbrev(DwTag.UnspecifiedParameters, false);
        int volatileType = b.Abbrev(DwTag.VolatileType, false, (DwAt.Type, DwForm.Ref4));
        int restrictType = b.Abbrev(DwTag.RestrictType, false, (DwAt.Type, DwForm.Ref4));
        int atomicType = b.Abbrev(DwTag.AtomicType, false, (DwAt.Type, DwForm.Ref4));
        var u = s.Unit();
        u.Label("void_ptr").Die(s.VoidPointer).U8(8);
        u.Label("fn").Die(proto).Ref("int")
            .Die(param).Ref("void_ptr")
            .Die(varargs)
            .End();
        u.Label("fn_ptr").Die(s.Pointer).U8(8).Ref("fn");
        u.Label("handler_t").Die(s.Typedef).CStr("handler_t").Ref("fn_ptr");
        u.Label("cint").Die(s.Const).Ref("int");
        u.Label("vint").Die(volatileType).Ref("cint");
        u.Label("aint").Die(atomicType).Ref("int");
        u.Label("rptr").Die(restrictType).Ref("void_ptr");
        u.Die(s.Struct).Strp("ops").U8(32)
            .Die(s.Member).CStr("handler").Ref("handler_t").U8(0)
            .Die(s.Member).CStr("cv").Ref("vint").U8(8)
            .Die(s.Member).CStr("atomic").Ref("aint").U8(12)
            .Die(s.Member).CStr("r").Ref("rptr").U8(16)
            .End();
        u.End();
        var t = DwarfTest.Convert(b.Elf());
        int ops = t.Find("ops", BtfKind.Struct);
        Assert.Equal("32 {handler@0/0/8, cv@64/0/4, atomic@96/0/4, r@128/0/8}", DwarfTest.Layout(t, ops));
        var handler = t.FindMember(ops, "handler")!.Value.TypeId;
        Assert.Equal(BtfKind.Typedef, t.KindOf(handler));
        int fn = t.Get(t.Get(handler).TargetId).TargetId;
        Assert.Equal(BtfKind.FuncProto, t.KindOf(fn));
        var ps = t.GetParams(fn);
        Assert.Equal(2, ps.Count);
        Assert.Equal(BtfKind.Ptr, t.KindOf(ps[0].TypeId));
        Assert.Equal(0, ps[1].TypeId);
        Assert.Equal(BtfKind.Volatile, t.KindOf(t.FindMember(ops, "cv")!.Value.TypeId));
        Assert.Equal(BtfKind.Int, t.KindOf(t.FindMember(ops, "atomic")!.Value.TypeId));
        Assert.Equal(BtfKind.Restrict, t.KindOf(t.FindMember(ops, "r")!.Value.TypeId));
    }

    [Fact]
    public void UnitsRepeatingATypeShareOneDefinitionUnlessItDiffers()
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        int lined = b.Abbrev(DwTag.StructureType, true, (DwAt.Name, DwForm.Strp), (DwAt.ByteSize, DwForm.Data1), (DwAt.DeclLine, DwForm.Data2));
        for (int i = 0; i < 3; i++)
        {
            var u = s.Unit($"unit{i}.c");
            s.Point(u, lined, w => w.Strp("point").U8(8).U16(10));
            u.Label("ptr").Die(s.Pointer).U8(8).Ref("point");
            u.Die(s.Struct).Strp($"user{i}").U8(16).Die(s.Member).CStr("p").Ref("point").U8(0).Die(s.Member).CStr("pp").Ref("ptr").U8(8).End();
            if (i == 2)
            {
                // A different struct of the same name: a different size, then the same size from another line.
                u.Label("other").Die(lined).Strp("point").U8(4).U16(10).Die(s.Member).CStr("only").Ref("int").U8(0).End();
                u.Label("third").Die(lined).Strp("point").U8(8).U16(99).Die(s.Member).CStr("z").Ref("int").U8(0).End();
                u.Die(s.Struct).Strp("user_other").U8(16)
                    .Die(s.Member).CStr("o").Ref("other").U8(0)
                    .Die(s.Member).CStr("t").Ref("third").U8(8)
                    .End();
            }
            u.End();
        }
        var t = DwarfTest.Convert(b.Elf());
        var points = t.FindAll("point").Where(id => t.KindOf(id) == BtfKind.Struct).ToList();
        Assert.Equal(3, points.Count);
        var users = Enumerable.Range(0, 3).Select(i => t.FindMember(t.Find($"user{i}", BtfKind.Struct), "p")!.Value.TypeId).Distinct().ToList();
        Assert.Single(users);
        Assert.Equal(8, t.SizeOf(users[0]));
        int other = t.Find("user_other", BtfKind.Struct);
        Assert.Equal("4 {only@0/0/4}", DwarfTest.Layout(t, t.FindMember(other, "o")!.Value.TypeId));
        Assert.Equal("8 {z@0/0/4}", DwarfTest.Layout(t, t.FindMember(other, "t")!.Value.TypeId));
        Assert.Single(Enumerable.Range(1, t.LastId), id => t.KindOf(id) == BtfKind.Ptr);
    }

    [Fact]
    public void AFileReadByPositionConvertsAsAMappedOne()
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        var u = s.Unit();
        s.Point(u, s.Struct, w => w.Strp("point").U8(8));
        u.End();
        using var dir = new TestSupport.TempDir();
        var path = dir.File("point.o", b.Elf());
        var mapped = DwarfTest.ConvertFile(path, map: true);
        var read = DwarfTest.ConvertFile(path, map: false);
        Assert.Equal("8 {x@0/0/4, y@32/0/4}", SyntheticDwarf.LayoutOf(read, "point"));
        Assert.Equal(SyntheticDwarf.LayoutOf(mapped, "point"), SyntheticDwarf.LayoutOf(read, "point"));
        Assert.Equal(mapped.LastId, read.LastId);
    }

    public static TheoryData<bool, bool, string> Compressions() => new()
    {
        { true, false, "zlib" },
        { true, false, "zstd" },
        { false, true, "zlib" },
        { false, true, "zstd" },
        { true, false, "zlib-gnu" },
        { false, false, "zlib-gnu" },
    };

    [Theory]
    [MemberData(nameof(Compressions))]
    public void CompressedSectionsAreDecompressed(bool elf64, bool bigEndian, string how)
    {
        var b = new DwarfBuilder { Version = 5, Is64 = elf64, BigEndian = bigEndian };
        var s = new SyntheticDwarf(b);
        var u = s.Unit();
        s.Point(u, s.Struct, w => w.Strp("point").U8(8));
        u.End();
        var sections = b.Sections().Select(x => how == "zlib-gnu"
            ? x with { Name = x.Name.Replace(".debug_", ".zdebug_", StringComparison.Ordinal), Data = SectionElf.GnuCompressed(x.Data) }
            : x with { Flags = x.Flags | SectionElf.ShfCompressed, Data = SectionElf.Compressed(x.Data, how == "zlib" ? 1u : 2u, elf64, bigEndian) }).ToList();
        var elf = SectionElf.Build(elf64, bigEndian, 2, (ushort)(elf64 ? 62 : 3), sections);
        Assert.Equal("8 {x@0/0/4, y@32/0/4}", SyntheticDwarf.LayoutOf(DwarfTest.Convert(elf, elf64 ? 8 : 4), "point"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ObjectFileRelocationsAreApplied(bool rela)
    {
        // An object file whose .debug_info holds its .debug_str offsets only through relocations: zeros in place and the
        // offset as the addend of a section symbol (RELA, x86-64), or the offset less one in place against a symbol of
        // value 1 in .debug_str (REL, i386). Unrelocated, the name would be wrong.
        bool is64 = rela;
        var b = new DwarfBuilder { Version = 4, Is64 = is64 };
        var s = new SyntheticDwarf(b);
        var u = s.Unit();
        s.Point(u, s.Struct, w => w.Strp("point").U8(8));
        u.End();
        var sections = b.Sections();
        int infoIndex = sections.FindIndex(x => x.Name == ".debug_info") + 1;
        int strIndex = sections.FindIndex(x => x.Name == ".debug_str") + 1;
        var info = sections[infoIndex - 1].Data;
        int strpAt = FindStrp(info, b.Str("point"));
        if (rela)
            info.AsSpan(strpAt, 4).Clear();
        else
            BitConverter.TryWriteBytes(info.AsSpan(strpAt, 4), b.Str("point") - 1);
        var symtab = new byte[is64 ? 48 : 32];
        var w = new SectionElf.Writer(symtab, false);
        if (is64)
        {
            symtab[24 + 4] = 3; // STT_SECTION
            w.U16(24 + 6, (ushort)strIndex);
        }
        else
        {
            w.U32(16 + 4, 1);  // st_value
            symtab[16 + 12] = 1; // STT_OBJECT
            w.U16(16 + 14, (ushort)strIndex);
        }
        byte[] relocs;
        if (rela)
        {
            relocs = new byte[24];
            var r = new SectionElf.Writer(relocs, false);
            r.U64(0, (ulong)strpAt);
            r.U64(8, (1UL << 32) | 10); // symbol 1, R_X86_64_32
            r.U64(16, (ulong)b.Str("point"));
        }
        else
        {
            relocs = new byte[8];
            var r = new SectionElf.Writer(relocs, false);
            r.U32(0, (uint)strpAt);
            r.U32(4, (1u << 8) | 1); // symbol 1, R_386_32
        }
        int symtabIndex = sections.Count + 1;
        sections.Add(new ElfSectionSpec(".symtab", SectionElf.ShtSymtab, 0, symtab, 0, 1, (ulong)(is64 ? 24 : 16)));
        sections.Add(new ElfSectionSpec(rela ? ".rela.debug_info" : ".rel.debug_info", rela ? SectionElf.ShtRela : SectionElf.ShtRel, 0, relocs, (uint)symtabIndex, (uint)infoIndex, (ulong)relocs.Length));
        var elf = SectionElf.Build(is64, false, 1, (ushort)(is64 ? 62 : 3), sections);
        Assert.Equal("8 {x@0/0/4, y@32/0/4}", SyntheticDwarf.LayoutOf(DwarfTest.Convert(elf, is64 ? 8 : 4), "point"));
    }

    /// <summary>Where the 4-byte strp of the struct's name lies in .debug_info: just after its abbreviation code.</summary>
    private static int FindStrp(byte[] info, int strOffset)
    {
        for (int i = 0; i + 4 <= info.Length; i++)
            if (BitConverter.ToInt32(info, i) == strOffset && info[i - 1] == 3)
                return i;
        throw new InvalidOperationException("strp not found");
    }
}
