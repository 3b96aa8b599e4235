using KvmTyped.Btf;

namespace KvmTyped.Tests.Btf;

public class BtfTypesTests
{
    /// <summary>One of every kind:
    /// struct s { long x; unsigned f1:3, f2:5; struct { int y; union { int z; char c; }; }; struct pair p;
    ///            char name[16]; struct s *next; const volatile int cv; u32_t t; enum color e; int (*fn)(int, ...); };</summary>
    private static (byte[] Blob, Dictionary<string, int> Ids) Sample(bool bigEndian = false, int headerLength = 24)
    {
        var b = new BtfBuilder();
        var ids = new Dictionary<string, int>();
        int @int = ids["int"] = b.Int("int", 4, encoding: 1);
        int @long = ids["long"] = b.Int("long int", 8, encoding: 1);
        int @uint = ids["uint"] = b.Int("unsigned int", 4);
        int @char = ids["char"] = b.Int("char", 1, encoding: 2 | 1);
        int sFwd = ids["fwd"] = b.Fwd("s");
        int ptr = ids["ptr"] = b.Ptr(sFwd);
        int arr = ids["arr"] = b.Array(@char, @int, 16);
        int vol = ids["volatile"] = b.Volatile(@int);
        int cv = ids["const"] = b.Const(vol);
        int restrict = ids["restrict"] = b.Restrict(ptr);
        int u32 = ids["typedef"] = b.Typedef("u32_t", @uint);
        int tag = ids["typetag"] = b.TypeTag("user", @int);
        int color = ids["enum"] = b.Enum("color", 4, true, ("RED", 0), ("GREEN", 1), ("NEG", -2));
        int big = ids["enum64"] = b.Enum64("big", 8, false, ("HUGE", unchecked((long)0xffff_0000_0000_0001UL)), ("ONE", 1));
        int proto = ids["proto"] = b.FuncProto(@int, ("a", @int), ("", 0));
        int fnptr = ids["fnptr"] = b.Ptr(proto);
        int func = ids["func"] = b.Func("do_it", proto, linkage: 1);
        int dbl = ids["float"] = b.Float("double", 8);
        int pair = ids["pair"] = b.Struct("pair", 8, ("lo", @int, 0, 0), ("hi", @int, 32, 0));
        int anonUnion = ids["anonunion"] = b.Union("", 4, ("z", @int, 0, 0), ("c", @char, 0, 0));
        int anonStruct = ids["anonstruct"] = b.Struct("", 8, ("y", @int, 0, 0), ("", anonUnion, 32, 0));
        int s = ids["s"] = b.Struct("s", 80,
            ("x", @long, 0, 0), ("f1", @uint, 64, 3), ("f2", @uint, 67, 5), ("", anonStruct, 96, 0),
            ("p", pair, 160, 0), ("name", arr, 224, 0), ("next", ptr, 352, 0), ("cv", cv, 416, 0),
            ("t", u32, 448, 0), ("e", color, 480, 0), ("fn", fnptr, 512, 0), ("d", dbl, 576, 0));
        int var = ids["var"] = b.Var("counter", @long, linkage: 1);
        ids["datasec"] = b.Datasec(".data", 16, (var, 8, 8));
        ids["decltag"] = b.DeclTag("kfunc", func, -1);
        ids["decltag1"] = b.DeclTag("nonnull", s, 1);
        _ = (restrict, tag, big);
        return (b.Build(bigEndian, headerLength), ids);
    }

    [Theory]
    [InlineData(false, 24)]
    [InlineData(true, 24)]
    [InlineData(false, 32)]
    [InlineData(true, 40)]
    public void Reads_every_kind_in_either_byte_order_and_with_a_longer_header(bool bigEndian, int headerLength)
    {
        var (blob, ids) = Sample(bigEndian, headerLength);
        var t = BtfTypes.Parse(blob);
        Assert.Equal(bigEndian, t.IsBigEndian);
        Assert.Equal(1, t.FirstId);
        Assert.Equal(ids.Count, t.Count);
        Assert.Equal(8, t.PointerSize);

        Assert.Equal(BtfKind.Void, t.KindOf(0));
        Assert.Equal(new BtfInt(1, 0, 32), t.GetInt(ids["int"]));
        Assert.True(t.GetInt(ids["char"]).IsChar);
        Assert.Equal(BtfKind.Fwd, t.KindOf(ids["fwd"]));
        Assert.Equal(ids["fwd"], t.Get(ids["ptr"]).TargetId);
        Assert.Equal(new BtfArray(ids["char"], ids["int"], 16), t.GetArray(ids["arr"]));
        Assert.Equal(ids["int"], t.GetArray(ids["arr"]).IndexType);
        Assert.Equal(BtfKind.Const, t.KindOf(ids["const"]));
        Assert.Equal(BtfKind.Restrict, t.KindOf(ids["restrict"]));
        Assert.Equal("u32_t", t.NameOf(ids["typedef"]));
        Assert.Equal("user", t.NameOf(ids["typetag"]));
        Assert.Equal([new("RED", 0), new("GREEN", 1), new("NEG", -2)], t.GetEnumValues(ids["enum"]));
        Assert.Equal([new("HUGE", unchecked((long)0xffff_0000_0000_0001UL)), new("ONE", 1)], t.GetEnumValues(ids["enum64"]));
        Assert.Equal(0xffff_0000_0000_0001UL, t.GetEnumValues(ids["enum64"])[0].UnsignedValue);
        Assert.Equal([new("a", ids["int"]), new("", 0)], t.GetParams(ids["proto"]));
        Assert.Equal(1, t.Get(ids["func"]).Vlen);
        Assert.Equal(BtfKind.Float, t.KindOf(ids["float"]));
        Assert.Equal(8, t.SizeOf(ids["float"]));
        Assert.Equal(1, t.GetVarLinkage(ids["var"]));
        Assert.Equal([new BtfVarSecInfo(ids["var"], 8, 8)], t.GetDatasecVars(ids["datasec"]));
        Assert.Equal(-1, t.GetDeclTagComponent(ids["decltag"]));
        Assert.Equal(1, t.GetDeclTagComponent(ids["decltag1"]));
        Assert.Equal("kfunc", t.NameOf(ids["decltag"]));
    }

    [Fact]
    public void Sizes_follow_arrays_pointers_typedefs_and_qualifiers()
    {
        var (blob, ids) = Sample();
        var t = BtfTypes.Parse(blob);
        Assert.Equal(16, t.SizeOf(ids["arr"]));
        Assert.Equal(8, t.SizeOf(ids["ptr"]));
        Assert.Equal(4, t.SizeOf(ids["const"]));
        Assert.Equal(8, t.SizeOf(ids["restrict"]));
        Assert.Equal(4, t.SizeOf(ids["typedef"]));
        Assert.Equal(4, t.SizeOf(ids["typetag"]));
        Assert.Equal(8, t.SizeOf(ids["var"]));
        Assert.Equal(80, t.SizeOf(ids["s"]));
        Assert.Equal(ids["int"], t.Resolve(ids["const"]));
        Assert.Equal(ids["uint"], t.Resolve(ids["typedef"]));
        Assert.Equal(ids["typedef"], t.StripQualifiers(ids["typedef"]));
        Assert.Throws<KvmException>(() => t.SizeOf(ids["func"]));
        Assert.Throws<KvmException>(() => t.SizeOf(ids["fwd"]));
        Assert.Throws<KvmException>(() => t.SizeOf(0));
        Assert.False(t.TrySizeOf(ids["proto"], out _, out string? why));
        Assert.Contains("FuncProto", why, StringComparison.Ordinal);
    }

    [Fact]
    public void Pointer_size_comes_from_long_or_the_caller()
    {
        var b = new BtfBuilder();
        int l = b.Int("long unsigned int", 4);
        int p = b.Ptr(l);
        var t = BtfTypes.Parse(b.Build());
        Assert.Equal(4, t.PointerSize);
        Assert.Equal(4, t.SizeOf(p));

        var b2 = new BtfBuilder();
        int i = b2.Int("int", 4);
        int p2 = b2.Ptr(i);
        var none = BtfTypes.Parse(b2.Build());
        Assert.Null(none.PointerSize);
        Assert.Contains("pointer size is unknown", Assert.Throws<KvmException>(() => none.SizeOf(p2)).Message, StringComparison.Ordinal);
        Assert.Equal(8, BtfTypes.Parse(b2.Build(), pointerSize: 8).SizeOf(p2));
        Assert.Equal(4, BtfTypes.Parse(b.Build(), pointerSize: 4).SizeOf(p));
    }

    [Fact]
    public void Members_flatten_anonymous_structs_and_unions_with_outer_offsets()
    {
        var (blob, ids) = Sample();
        var t = BtfTypes.Parse(blob);
        var direct = t.GetMembers(ids["s"]);
        Assert.Equal(12, direct.Count);
        Assert.Equal(new BtfMember("f2", ids["uint"], 67, 5), direct[2]);
        Assert.Equal("", direct[3].Name);

        var flat = t.GetFlattenedMembers(ids["s"]);
        Assert.Equal(
            ["x", "f1", "f2", "y", "z", "c", "p", "name", "next", "cv", "t", "e", "fn", "d"],
            flat.Select(f => f.Name));
        var byName = flat.ToDictionary(f => f.Name);
        Assert.Equal(new BtfField("f1", ids["uint"], 64, 3, 4), byName["f1"]);
        Assert.True(byName["f2"].IsBitfield);
        Assert.Equal(8, byName["f2"].Offset);
        Assert.Equal((96, 4L), (byName["y"].BitOffset, byName["y"].Size));
        Assert.Equal((128, 4L), (byName["z"].BitOffset, byName["z"].Size));
        Assert.Equal((128, 1L), (byName["c"].BitOffset, byName["c"].Size));
        Assert.Equal((20L, 8L), (byName["p"].Offset, byName["p"].Size));
        Assert.Equal((28L, 16L), (byName["name"].Offset, byName["name"].Size));
        Assert.Equal((44L, 8L), (byName["next"].Offset, byName["next"].Size));
        Assert.Equal((64L, 8L), (byName["fn"].Offset, byName["fn"].Size));
        Assert.False(byName["cv"].IsBitfield);
        Assert.Equal(16, t.FindMember(ids["s"], "z")!.Value.Offset);
        Assert.Null(t.FindMember(ids["s"], "nope"));
        Assert.Throws<ArgumentException>(() => t.GetMembers(ids["int"]));
    }

    [Fact]
    public void Bitfields_without_the_kind_flag_come_from_narrow_ints()
    {
        var b = new BtfBuilder();
        int u = b.Int("unsigned int", 4);
        int narrow = b.Int("unsigned int", 4, bits: 3);
        int shifted = b.Int("unsigned int", 4, bits: 2, bitOffset: 1);
        int s = b.Struct("old", 4, ("a", narrow, 0, 0), ("b", shifted, 3, 0), ("c", u, 0, 0));
        var t = BtfTypes.Parse(b.Build());
        Assert.False(t.Get(s).KindFlag);
        var m = t.GetMembers(s);
        Assert.Equal(new BtfMember("a", narrow, 0, 3), m[0]);
        Assert.Equal(new BtfMember("b", shifted, 4, 2), m[1]);
        Assert.Equal(new BtfMember("c", u, 0, 0), m[2]);
    }

    [Fact]
    public void Finds_types_by_name_and_kind()
    {
        var (blob, ids) = Sample();
        var t = BtfTypes.Parse(blob);
        Assert.Equal(ids["s"], t.Find("s", BtfKind.Struct));
        Assert.Equal(ids["fwd"], t.Find("s", BtfKind.Fwd));
        Assert.Equal([ids["fwd"], ids["s"]], t.FindAll("s"));
        Assert.Equal(ids["typedef"], t.Find("u32_t", BtfKind.Typedef));
        Assert.Equal(ids["enum"], t.Find("color", BtfKind.Enum));
        Assert.False(t.TryFind("s", BtfKind.Union, out _));
        Assert.Contains("no BTF union named 's'", Assert.Throws<KvmException>(() => t.Find("s", BtfKind.Union)).Message, StringComparison.Ordinal);
        Assert.True(t.TryFindComposite("struct pair", out int pair));
        Assert.Equal(ids["pair"], pair);
        Assert.True(t.TryFindComposite("s", out int s));
        Assert.Equal(ids["s"], s);
        Assert.False(t.TryFindComposite("union pair", out _));
        Assert.False(t.TryFindComposite("u32_t", out _));
        Assert.Empty(t.FindAll("absent"));
    }

    [Fact]
    public void Split_btf_continues_the_base_ids_and_strings()
    {
        var (blob, ids) = Sample();
        var baseTypes = BtfTypes.Parse(blob, sourceName: "vmlinux");
        var b = new BtfBuilder(baseTypes);
        int modInt = b.Int("mod_int", 2);
        int modStruct = b.Struct("mod_state", 24,
            ("owner", ids["ptr"], 0, 0), ("p", ids["pair"], 64, 0), ("w", modInt, 128, 0), ("flag", ids["uint"], 160, 1));
        int modPtr = b.Ptr(modStruct);
        int sameName = b.Struct("pair", 4, ("only", ids["int"], 0, 0));
        var split = BtfTypes.Parse(b.Build(), baseTypes, "module.ko");

        Assert.Same(baseTypes, split.Base);
        Assert.Equal(baseTypes.LastId + 1, split.FirstId);
        Assert.Equal(modInt, split.FirstId);
        Assert.Equal(sameName, split.LastId);
        Assert.Equal(8, split.PointerSize);
        Assert.Equal("mod_state", split.NameOf(modStruct));
        Assert.Equal("s", split.NameOf(ids["s"]));
        Assert.Equal(ids["s"], split.Find("s", BtfKind.Struct));
        Assert.Equal(modStruct, split.Find("mod_state", BtfKind.Struct));
        Assert.Equal([ids["pair"], sameName], split.FindAll("pair"));
        Assert.Equal(8, split.SizeOf(modPtr));
        var flat = split.GetFlattenedMembers(modStruct);
        Assert.Equal(["owner", "p", "w", "flag"], flat.Select(f => f.Name));
        Assert.Equal((16L, 2L), (flat[2].Offset, flat[2].Size));
        Assert.Equal((160L, 1), (flat[3].BitOffset, flat[3].BitSize));
        Assert.Throws<ArgumentOutOfRangeException>(() => baseTypes.Get(modInt));
    }
}
