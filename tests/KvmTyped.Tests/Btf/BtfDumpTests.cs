using System.Text.Json;
using KvmTyped.Btf;
using KvmTyped.TestSupport;
using KvmTyped.Tools;

namespace KvmTyped.Tests.Btf;

public class BtfDumpTests
{
    private static (BtfTypes Types, int S, Dictionary<string, int> Ids) Sample()
    {
        var b = new BtfBuilder();
        var ids = new Dictionary<string, int>();
        int i = ids["int"] = b.Int("int", 4, encoding: 1);
        int u = ids["uint"] = b.Int("unsigned int", 4);
        int c = ids["char"] = b.Int("char", 1, encoding: 1);
        int l = ids["long"] = b.Int("long int", 8, encoding: 1);
        int fwd = b.Fwd("s");
        int ptr = ids["ptr"] = b.Ptr(fwd);
        int arr = ids["arr"] = b.Array(c, i, 16);
        int cv = ids["cv"] = b.Const(b.Volatile(i));
        int constPtr = ids["constptr"] = b.Const(b.Ptr(i));
        int ptrArr = ids["ptrarr"] = b.Array(ptr, i, 4);
        int arrPtr = ids["arrptr"] = b.Ptr(arr);
        int proto = b.FuncProto(i, ("", i), ("", 0));
        int fnptr = ids["fnptr"] = b.Ptr(proto);
        int voidProto = b.FuncProto(0);
        int voidFn = ids["voidfn"] = b.Ptr(voidProto);
        int tagged = ids["tagged"] = b.Ptr(b.TypeTag("user", c));
        int pair = b.Struct("pair", 8, ("lo", i, 0, 0), ("hi", i, 32, 0));
        int au = b.Union("", 4, ("z", i, 0, 0), ("zc", c, 0, 0));
        int inner = b.Struct("", 8, ("y", i, 0, 0), ("", au, 32, 0));
        int named = b.Struct("", 4, ("w", i, 0, 0));
        int s = b.Struct("s", 136,
            ("x", l, 0, 0), ("f1", u, 64, 3), ("f2", u, 67, 5), ("", inner, 96, 0), ("p", pair, 160, 0),
            ("name", arr, 224, 0), ("next", ptr, 384, 0), ("cv", cv, 448, 0), ("fn", fnptr, 512, 0),
            ("cp", constPtr, 576, 0), ("pa", ptrArr, 640, 0), ("ap", arrPtr, 896, 0), ("anon", named, 960, 0),
            ("hi_bits", u, 1000, 20));
        _ = (voidFn, tagged);
        return (BtfTypes.Parse(b.Build()), s, ids);
    }

    [Fact]
    public void Declarations_are_spelled_as_C()
    {
        var (t, _, ids) = Sample();
        Assert.Equal("struct s *next", t.FormatDeclaration(ids["ptr"], "next"));
        Assert.Equal("char name[16]", t.FormatDeclaration(ids["arr"], "name"));
        Assert.Equal("const volatile int cv", t.FormatDeclaration(ids["cv"], "cv"));
        Assert.Equal("int *const cp", t.FormatDeclaration(ids["constptr"], "cp"));
        Assert.Equal("struct s *pa[4]", t.FormatDeclaration(ids["ptrarr"], "pa"));
        Assert.Equal("char (*ap)[16]", t.FormatDeclaration(ids["arrptr"], "ap"));
        Assert.Equal("int (*fn)(int, ...)", t.FormatDeclaration(ids["fnptr"], "fn"));
        Assert.Equal("void (*cb)(void)", t.FormatDeclaration(ids["voidfn"], "cb"));
        Assert.Equal("char *u", t.FormatDeclaration(ids["tagged"], "u"));
        Assert.Equal("struct s *", t.FormatType(ids["ptr"]));
        Assert.Equal("long int", t.FormatType(ids["long"]));
    }

    [Fact]
    public void Text_prints_pahole_style_member_lines()
    {
        var (t, s, _) = Sample();
        var text = BtfDump.ToText(t, s);
        var lines = text.Split('\n');
        Assert.Equal("struct s {", lines[0]);
        Assert.Contains("\tlong int                   x;                    /*     0     8 */", lines);
        Assert.Contains("\tunsigned int               f1:3;                 /*     8: 0  4 */", lines);
        Assert.Contains("\tunsigned int               f2:5;                 /*     8: 3  4 */", lines);
        Assert.Contains("\tunsigned int               hi_bits:20;           /*   124: 8  4 */", lines);
        Assert.Contains("\tstruct {", lines);
        Assert.Contains("\t\tunion {", lines);
        Assert.Contains("\t\t\tint        z;                    /*    16     4 */", lines);
        Assert.Contains("\t\t};                                       /*    16     4 */", lines);
        Assert.Contains("\t};                                               /*    12     8 */", lines);
        Assert.Contains("\t} anon;                                          /*   120     4 */", lines);
        Assert.Contains("\tstruct s *                 next;                 /*    48     8 */", lines);
        Assert.Contains("\tint (*fn)(int, ...);                             /*    64     8 */", lines);
        Assert.Contains("\t/* XXX 4 bytes hole, try to pack */", lines);
        Assert.Contains("\t/* --- cacheline 1 boundary (64 bytes) --- */", lines);
        Assert.Contains("\t/* size: 136, cachelines: 3, members: 14 */", lines);
        Assert.Equal("};", lines[^2]);

        var parsed = Pahole.Parse(text)["s"];
        Assert.Equal(136, parsed.Size);
        Assert.Equal(["x", "f1", "f2", "y", "z", "zc", "p", "name", "next", "cv", "fn", "cp", "pa", "ap", "anon", "hi_bits"],
            parsed.Fields.Select(f => f.Name));
    }

    [Fact]
    public void Json_has_the_schema_layout_shape_with_anonymous_members_flattened()
    {
        var (t, s, _) = Sample();
        var sw = new StringWriter();
        BtfDump.WriteJson(t, [s], sw);
        using var doc = JsonDocument.Parse(sw.ToString());
        var structs = doc.RootElement.GetProperty("structs");
        Assert.Equal(1, structs.GetArrayLength());
        var st = structs[0];
        Assert.Equal("s", st.GetProperty("name").GetString());
        Assert.Equal(136, st.GetProperty("size").GetInt64());
        var fields = st.GetProperty("fields").EnumerateArray().ToList();
        var flat = t.GetFlattenedMembers(s);
        Assert.Equal(flat.Count, fields.Count);
        for (int k = 0; k < flat.Count; k++)
        {
            var f = fields[k];
            Assert.Equal(flat[k].Name, f.GetProperty("name").GetString());
            if (flat[k].IsBitfield)
            {
                Assert.Equal(3, f.EnumerateObject().Count());
                Assert.Equal(flat[k].BitOffset, f.GetProperty("bitOffset").GetInt64());
                Assert.Equal(flat[k].BitSize, f.GetProperty("bitSize").GetInt32());
            }
            else
            {
                Assert.Equal(3, f.EnumerateObject().Count());
                Assert.Equal(flat[k].Offset, f.GetProperty("offset").GetInt64());
                Assert.Equal(flat[k].Size, f.GetProperty("size").GetInt64());
            }
        }
        var z = fields.Single(f => f.GetProperty("name").GetString() == "z");
        Assert.Equal(16, z.GetProperty("offset").GetInt64());
        var f2 = fields.Single(f => f.GetProperty("name").GetString() == "f2");
        Assert.Equal(67, f2.GetProperty("bitOffset").GetInt64());
        Assert.Equal(5, f2.GetProperty("bitSize").GetInt64());
    }

    [Fact]
    public void Names_are_found_as_C_tools_accept_them_and_unknown_ones_are_named()
    {
        var (t, s, _) = Sample();
        Assert.Equal([s], BtfDump.FindComposites(t, ["struct s"]));
        Assert.Equal([s, s], BtfDump.FindComposites(t, ["s", "s"]));
        var e = Assert.Throws<KvmException>(() => BtfDump.FindComposites(t, ["nosuch"]));
        Assert.Equal("BTF: no struct or union named 'nosuch' in its BTF", e.Message);
        var all = BtfDump.FindComposites(t, []);
        Assert.Equal(["pair", "s"], all.Select(t.NameOf));
    }

    /// <summary>The oracle's own parser: pahole 1.24 and kvmtyped spell a const function pointer differently
    /// (<c>const int (*filter)(…)</c> against the C <c>int (*const filter)(…)</c>), and both name the member.</summary>
    [Fact]
    public void Pahole_parser_names_members_behind_pointer_qualifiers()
    {
        const string text = """
            struct kset_uevent_ops {
            	const int                  (*filter)(const struct kobject  *); /*     0     8 */
            	int (*const name)(const struct kobject *);       /*     8     8 */
            	void (* volatile *restrict cbs)(void);           /*    16     8 */
            	volatile int ()(const struct kobject  *, void *) *  uevent; /*    24     8 */
            	<ERROR                    > ubuf;                /*    32     8 */
            	const volatile long *const vc;                   /*    40     8 */

            	/* size: 48, cachelines: 1, members: 6 */
            };
            """;
        var parsed = Pahole.Parse(text.Replace("\r\n", "\n", StringComparison.Ordinal))["kset_uevent_ops"];
        Assert.Equal(48, parsed.Size);
        Assert.Equal(["filter", "name", "cbs", "uevent", "ubuf", "vc"], parsed.Fields.Select(f => f.Name));
        Assert.Equal([0L, 8, 16, 24, 32, 40], parsed.Fields.Select(f => f.Offset));
    }

    [Theory]
    [MemberData(nameof(RealBtfTests.Sources), MemberType = typeof(RealBtfTests))]
    [HostBtfData("sysfs")]
    public void Text_dump_agrees_with_pahole_member_by_member(string source)
    {
        var t = RealBtfTests.Of(source);
        string path = PaholeOracleTests.PathOf(source);
        var unique = PaholeOracleTests.UniqueComposites(t);
        var sizes = Pahole.Sizes(path);
        var sample = PaholeOracleTests.Sample(unique, sizes, t);
        var theirs = Pahole.Parse(Pahole.Run("-F", "btf", "-C", string.Join(',', sample), path));
        var text = new StringWriter();
        BtfDump.WriteText(t, BtfDump.FindComposites(t, sample), text);
        var ours = Pahole.Parse(text.ToString());
        Assert.Equal(sample.Count, ours.Count);
        var mismatches = new List<string>();
        foreach (var name in sample)
        {
            var a = theirs[name];
            var b = ours[name];
            if (a.Keyword != b.Keyword || (a.Keyword == "struct" && a.Size != b.Size))
                mismatches.Add($"{name}: pahole {a.Keyword} size {a.Size}, ours {b.Keyword} size {b.Size}");
            if (!a.Fields.SequenceEqual(b.Fields))
            {
                var diff = a.Fields.Zip(b.Fields).FirstOrDefault(p => p.First != p.Second);
                mismatches.Add($"{name}: pahole {a.Fields.Count} members, ours {b.Fields.Count}; first difference pahole {diff.First}, ours {diff.Second}");
            }
        }
        Assert.True(mismatches.Count == 0, string.Join('\n', mismatches.Take(20)));
    }

    [HostBtfFact]
    public void Json_of_task_struct_matches_the_flattened_members()
    {
        var t = RealBtfTests.Sysfs;
        var sw = new StringWriter();
        BtfDump.WriteJson(t, BtfDump.FindComposites(t, ["task_struct", "sk_buff"]), sw);
        using var doc = JsonDocument.Parse(sw.ToString());
        var structs = doc.RootElement.GetProperty("structs").EnumerateArray().ToList();
        Assert.Equal(["task_struct", "sk_buff"], structs.Select(s => s.GetProperty("name").GetString()));
        var skb = structs[1].GetProperty("fields").EnumerateArray().ToList();
        int id = t.Find("sk_buff", BtfKind.Struct);
        Assert.Equal(t.GetFlattenedMembers(id).Count, skb.Count);
        var cloned = skb.Single(f => f.GetProperty("name").GetString() == "cloned");
        Assert.Equal(1, cloned.GetProperty("bitSize").GetInt32());
        Assert.Equal(t.FindMember(id, "cloned")!.Value.BitOffset, cloned.GetProperty("bitOffset").GetInt64());
        Assert.False(cloned.TryGetProperty("offset", out _));
    }
}
