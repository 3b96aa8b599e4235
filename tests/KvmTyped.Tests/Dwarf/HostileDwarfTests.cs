using KvmTyped.Dwarf;

namespace KvmTyped.Tests.Dwarf;

/// <summary>Damaged and hostile DWARF ends in a <see cref="KvmFormatException"/> naming the section and the offset in
/// it, after bounded work: bad abbreviation codes, units past their section, cyclic and absurdly deep type references,
/// absurd arrays, strings past their tables, unknown forms, bad siblings, damaged compression and relocations.</summary>
public sealed class HostileDwarfTests
{
    private static KvmFormatException Fails(byte[] elf, string section)
    {
        var e = Assert.Throws<KvmFormatException>(() => DwarfTest.Convert(elf));
        Assert.Contains(section + "+0x", e.Message, StringComparison.Ordinal);
        return e;
    }

    private static (DwarfBuilder B, SyntheticDwarf S, DieWriter U) Start(int version = 5)
    {
        var b = new DwarfBuilder { Version = version };
        var s = new SyntheticDwarf(b);
        return (b, s, s.Unit());
    }

    [Fact]
    public void AnAbbreviationCodeMissingFromTheTable()
    {
        var (b, _, u) = Start();
        u.Die(250).U8(0);
        u.End();
        var e = Fails(b.Elf(), ".debug_info");
        Assert.Contains("abbreviation code 250", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AUnitLongerThanItsSection()
    {
        var (b, s, u) = Start();
        s.Point(u, s.Struct, w => w.Strp("point").U8(8));
        u.End();
        var sections = b.Sections();
        var info = sections.First(x => x.Name == ".debug_info").Data;
        BitConverter.TryWriteBytes(info.AsSpan(0, 4), (uint)info.Length + 100);
        var e = Fails(SectionElf.Build(true, false, 2, 62, sections), ".debug_info");
        Assert.Contains("unit length", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ATruncatedUnitHeaderAndAnUnknownVersion()
    {
        var (b, s, u) = Start();
        s.Point(u, s.Struct, w => w.Strp("point").U8(8));
        u.End();
        b.InfoTail = [1, 0];
        Assert.Contains("truncated", Fails(b.Elf(), ".debug_info").Message, StringComparison.Ordinal);

        var (b2, s2, u2) = Start();
        s2.Point(u2, s2.Struct, w => w.Strp("point").U8(8));
        u2.End();
        var sections = b2.Sections();
        sections.First(x => x.Name == ".debug_info").Data[4] = 7;
        Assert.Contains("version 7", Fails(SectionElf.Build(true, false, 2, 62, sections), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AQualifierThatIsItsOwnTarget()
    {
        var (b, s, u) = Start();
        u.Label("loop").Die(s.Const).Ref("loop");
        u.Die(s.Struct).Strp("victim").U8(4).Die(s.Member).CStr("m").Ref("loop").U8(0).End();
        u.End();
        Assert.Contains("refers to itself", Fails(b.Elf(), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TypedefsNamingEachOther()
    {
        var (b, s, u) = Start();
        u.Label("a").Die(s.Typedef).CStr("a_t").Ref("b");
        u.Label("b").Die(s.Typedef).CStr("b_t").Ref("a");
        u.Die(s.Struct).Strp("victim").U8(4).Die(s.Member).CStr("m").Ref("a").U8(0).End();
        u.End();
        Assert.Contains("contains itself", Fails(b.Elf(), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AStructContainingItselfByValue()
    {
        var (b, s, u) = Start();
        u.Label("self").Die(s.Struct).Strp("self").U8(8)
            .Die(s.Member).CStr("again").Ref("self").U8(0)
            .End();
        u.End();
        Assert.Contains("contains itself", Fails(b.Elf(), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void APointerChainTooDeep()
    {
        var (b, s, u) = Start();
        const int Depth = 10_000;
        for (int i = 0; i < Depth; i++)
            u.Label($"p{i}").Die(s.Pointer).U8(8).Ref(i + 1 < Depth ? $"p{i + 1}" : "int");
        u.Die(s.Struct).Strp("victim").U8(8).Die(s.Member).CStr("m").Ref("p0").U8(0).End();
        u.End();
        Assert.Contains($"more than {DwarfToBtf.MaxTypeDepth} deep", Fails(b.Elf(), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EntriesNestedTooDeepWithoutSiblings()
    {
        var (b, s, u) = Start();
        int nest = b.Abbrev(DwTag.SubrangeType, true);
        u.Die(s.Struct).Strp("victim").U8(4);
        for (int i = 0; i < DieReader.MaxDepth + 10; i++)
            u.Die(nest);
        u.End();
        var e = Fails(b.Elf(), ".debug_info");
        Assert.Contains($"deeper than {DieReader.MaxDepth}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnArrayWithAbsurdDimensions()
    {
        var (b, s, u) = Start();
        u.Label("many").Die(s.Array).Ref("int");
        for (int i = 0; i < 1000; i++)
            u.Die(s.Subrange).U8(0);
        u.End();
        u.Die(s.Struct).Strp("victim").U8(4).Die(s.Member).CStr("m").Ref("many").U8(0).End();
        u.End();
        Assert.Contains($"more than {DwarfToBtf.MaxArrayDimensions} dimensions", Fails(b.Elf(), ".debug_info").Message, StringComparison.Ordinal);

        var (b2, s2, u2) = Start();
        u2.Label("huge").Die(s2.Array).Ref("int").Die(s2.SubrangeCount).Uleb(1UL << 40).End();
        u2.Die(s2.Struct).Strp("victim").U8(4).Die(s2.Member).CStr("m").Ref("huge").U8(0).End();
        u2.End();
        Assert.Contains("out of range", Fails(b2.Elf(), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TooManyMembers()
    {
        var (b, s, u) = Start();
        u.Die(s.Struct).Strp("victim").U8(4);
        for (int i = 0; i <= DwarfToBtf.MaxChildren; i++)
            u.Die(s.Member).CStr("m").Ref("int").U8(0);
        u.End();
        u.End();
        Assert.Contains($"more than {DwarfToBtf.MaxChildren} members", Fails(b.Elf(), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AMemberOutsideItsStruct()
    {
        var (b, s, u) = Start();
        u.Die(s.Struct).Strp("victim").U8(4).Die(s.Member).CStr("m").Ref("int").U8(200).End();
        u.End();
        Assert.Contains("lies outside", Fails(b.Elf(), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AStringOffsetPastDebugStr()
    {
        var (b, s, u) = Start();
        s.Point(u, s.Struct, w => w.Offset(0x10_0000).U8(8));
        u.End();
        Assert.Contains("outside", Fails(b.Elf(), ".debug_str").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AStringWithoutItsNul()
    {
        var (b, s, u) = Start();
        s.Point(u, s.Struct, w => w.Strp("point").U8(8));
        u.End();
        b.StrOverride = "\0point"u8.ToArray();
        Assert.Contains("no NUL", Fails(b.Elf(), ".debug_str").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AStringIndexPastTheOffsetsTable()
    {
        var (b, s, u) = Start();
        int strx = b.Abbrev(DwTag.StructureType, true, (DwAt.Name, DwForm.Strx), (DwAt.ByteSize, DwForm.Data1));
        s.Point(u, strx, w => w.Uleb(5000).U8(8));
        u.End();
        Assert.Contains("string index 5000", Fails(b.Elf(), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnInlineStringRunningToTheEndOfItsUnit()
    {
        var (b, s, u) = Start();
        u.Die(s.Typedef).Bytes("unterminated"u8.ToArray());
        Assert.Contains("no NUL", Fails(b.Elf(), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownForms()
    {
        var (b, _, u) = Start();
        b.Abbrev(DwTag.BaseType, false, (DwAt.Name, 0x7e));
        u.End();
        Assert.Contains("unknown attribute form 0x7e", Fails(b.Elf(), ".debug_abbrev").Message, StringComparison.Ordinal);

        var (b2, _, u2) = Start();
        int indirect = b2.Abbrev(DwTag.BaseType, false, (0x3fe0, DwForm.Indirect));
        u2.Die(indirect).Uleb(0x7e).U8(0);
        u2.End();
        Assert.Contains("unknown attribute form 0x7e", Fails(b2.Elf(), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASiblingPointingBackwards()
    {
        var (b, s, u) = Start();
        int withSibling = b.Abbrev(0x2e /* DW_TAG_subprogram */, true, (DwAt.Sibling, DwForm.Ref4));
        u.Label("back").Die(withSibling).Ref("back").Die(s.Int).CStr("x").U8(5).U8(4).End();
        u.End();
        Assert.Contains("DW_AT_sibling", Fails(b.Elf(), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AReferenceOutsideItsUnit()
    {
        var (b, s, u) = Start();
        int far = b.Abbrev(DwTag.Member, false, (DwAt.Name, DwForm.String), (DwAt.Type, DwForm.Ref4), (DwAt.DataMemberLocation, DwForm.Data1));
        u.Die(s.Struct).Strp("victim").U8(4).Die(far).CStr("m").U32(0x7fff_0000).U8(0).End();
        u.End();
        Assert.Contains("outside its unit", Fails(b.Elf(), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnOverlongLeb128()
    {
        var (b, s, u) = Start();
        u.Die(s.SubrangeCount);
        u.Bytes(Enumerable.Repeat((byte)0x80, 40).ToArray());
        u.End();
        Assert.Contains("LEB128", Fails(b.Elf(), ".debug_info").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CompressedSectionsThatLie()
    {
        var (b, s, u) = Start();
        s.Point(u, s.Struct, w => w.Strp("point").U8(8));
        u.End();
        List<ElfSectionSpec> With(Func<byte[], byte[]> info) => b.Sections()
            .Select(x => x.Name == ".debug_info" ? x with { Flags = SectionElf.ShfCompressed, Data = info(x.Data) } : x).ToList();
        KvmFormatException Fails(List<ElfSectionSpec> sections, string what)
        {
            var e = Assert.Throws<KvmFormatException>(() => DwarfTest.Convert(SectionElf.Build(true, false, 2, 62, sections)));
            Assert.Contains(".debug_info", e.Message, StringComparison.Ordinal);
            Assert.True(e.Message.Contains(what, StringComparison.Ordinal), e.Message);
            Assert.NotNull(e.Offset);
            return e;
        }

        Fails(With(d =>
        {
            var c = SectionElf.Compressed(d, 1, true, false);
            BitConverter.TryWriteBytes(c.AsSpan(8, 8), 1UL << 40);
            return c;
        }), "claims to decompress");
        Fails(With(d =>
        {
            var c = SectionElf.Compressed(d, 1, true, false);
            BitConverter.TryWriteBytes(c.AsSpan(8, 8), (ulong)d.Length + 10);
            return c;
        }), "ends after");
        Fails(With(d =>
        {
            var c = SectionElf.Compressed(d, 1, true, false);
            c.AsSpan(24, 2).Fill(0xff); // the zlib header
            return c;
        }), "damaged");
        Fails(With(d => SectionElf.Compressed(d, 9, true, false)), "unknown compression type 9");
    }

    [Fact]
    public void ARelocationOutsideItsSection()
    {
        var (b, s, u) = Start(version: 4);
        s.Point(u, s.Struct, w => w.Strp("point").U8(8));
        u.End();
        var sections = b.Sections();
        int infoIndex = sections.FindIndex(x => x.Name == ".debug_info") + 1;
        var symtab = new byte[48];
        var relocs = new byte[24];
        var r = new SectionElf.Writer(relocs, false);
        r.U64(0, 0x10_0000);
        r.U64(8, (1UL << 32) | 10);
        int symtabIndex = sections.Count + 1;
        sections.Add(new ElfSectionSpec(".symtab", SectionElf.ShtSymtab, 0, symtab, 0, 1, 24));
        sections.Add(new ElfSectionSpec(".rela.debug_info", SectionElf.ShtRela, 0, relocs, (uint)symtabIndex, (uint)infoIndex, 24));
        var e = Assert.Throws<KvmFormatException>(() => DwarfTest.Convert(SectionElf.Build(true, false, 1, 62, sections)));
        Assert.Contains(".rela.debug_info", e.Message, StringComparison.Ordinal);
        Assert.Contains("outside .debug_info", e.Message, StringComparison.Ordinal);
        Assert.NotNull(e.Offset);
    }
}
