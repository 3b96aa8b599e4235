using KvmTyped.Btf;
using KvmTyped.Tools;

namespace KvmTyped.Tests.Btf;

public class RelocatorSchemaImportTests
{
    [Fact]
    public void Holes_packing_bitfields_anonymous_members_and_typedefs_are_written_so_the_layout_stays()
    {
        var b = new BtfBuilder();
        int i32 = b.Int("int", 4, encoding: 1);
        int u32 = b.Int("unsigned int", 4);
        int i64 = b.Int("long int", 8, encoding: 1);
        int ch = b.Int("char", 1, encoding: 1);
        int u8 = b.Int("unsigned char", 1);
        int idx = b.Int("__ARRAY_SIZE_TYPE__", 4);
        int proto = b.FuncProto(i32, ("", i32));
        int fn = b.Ptr(proto);
        int anonUnion = b.Union("", 8, ("as_long", i64, 0, 0), ("as_int", i32, 0, 0));
        int counter = b.Struct("", 4, ("counter", i32, 0, 0));
        int atomic = b.Typedef("atomic_t", counter);
        int state = b.Enum("state", 4, false, ("IDLE", 0), ("BUSY", 1));
        int packed = b.Struct("wire", 5, ("tag", u8, 0, 0), ("value", u32, 8, 0));
        int tail = b.Array(ch, idx, 0);
        b.Struct("sample", 80,
            ("a", ch, 0, 0),
            ("flags", u32, 16, 3),              // a bitfield that starts at bit 16, not 8
            ("mode", u32, 19, 5),
            ("", anonUnion, 64, 0),
            ("refs", atomic, 128, 0),
            ("callback", fn, 192, 0),
            ("st", state, 256, 0),
            ("w", packed, 288, 0),
            ("aligned", i64, 448, 0),           // __aligned(16): a hole the BTF does not explain
            ("name", tail, 512, 0));            // a flexible array, then tail padding to 80
        var btf = BtfTypes.Parse(b.Build(), sourceName: "test.btf");
        var text = SchemaImport.Complete(btf, ["sample"]);
        Assert.Equal("""
            /* Complete structs imported from the BTF of test.btf; their layout is computed from these declarations. */
            #pragma once

            typedef struct {
                int counter;
            } atomic_t;

            enum state {
                IDLE = 0,
                BUSY = 1,
            };

            struct wire {
                unsigned char tag;
                unsigned int value;
            } __attribute__((packed));

            struct sample {
                char a;
                unsigned char : 8;
                unsigned int flags : 3;
                unsigned int mode : 5;
                union {
                    long as_long;
                    int as_int;
                };
                atomic_t refs;
                void *callback;
                enum state st;
                struct wire w;
                unsigned char __kvmtyped_pad0[15];
                long aligned;
                unsigned char __kvmtyped_pad1[16];
            };

            """.Replace("\r\n", "\n", StringComparison.Ordinal), text);
    }

    [Fact]
    public void Subsets_name_their_members_and_unknown_ones_fail()
    {
        var b = new BtfBuilder();
        int i32 = b.Int("int", 4, encoding: 1);
        int i64 = b.Int("long int", 8, encoding: 1);
        int anon = b.Union("", 4, ("x", i32, 0, 0), ("y", i32, 0, 0));
        b.Struct("thing", 16, ("id", i64, 0, 0), ("", anon, 64, 0));
        var btf = BtfTypes.Parse(b.Build(), sourceName: "t.btf");
        var text = SchemaImport.Subset(btf, ["struct thing"], ["y", "id"]);
        Assert.EndsWith("struct thing {\n    int y;\n    long id;\n} __attribute__((preserve_access_index));\n", text, StringComparison.Ordinal);
        Assert.Equal("t.btf: struct thing has no member 'z'", Assert.Throws<KvmException>(() => SchemaImport.Subset(btf, ["thing"], ["z"])).Message);
        Assert.Equal("t.btf: no struct or union named 'other'", Assert.Throws<KvmException>(() => SchemaImport.Complete(btf, ["other"])).Message);
    }

    [Fact]
    public void Hostile_nesting_is_refused_not_followed_forever()
    {
        // A struct that embeds itself by value (impossible in C) and a chain of 2,000 records each embedding the next.
        var b = new BtfBuilder();
        int i32 = b.Int("int", 4, encoding: 1);
        int self = b.Struct("loop", 8, ("x", i32, 0, 0), ("again", 2, 32, 0));
        int prev = b.Struct("leaf", 4, ("v", i32, 0, 0));
        for (int i = 0; i < 2000; i++)
            prev = b.Struct($"level{i}", 4, ("inner", prev, 0, 0));
        var btf = BtfTypes.Parse(b.Build(), sourceName: "h.btf", pointerSize: 8);
        Assert.Equal(2, self);
        Assert.Equal("h.btf: the layout of struct loop cannot be written as a schema",
            Assert.Throws<KvmException>(() => SchemaImport.Complete(btf, ["loop"])).Message);
        var e = Assert.Throws<KvmException>(() => SchemaImport.Complete(btf, ["level1999"]));
        Assert.Contains("more than 512 deep", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bitfield_of_a_type_with_no_integer_size_is_refused_not_divided_by()
    {
        // Found by the btf fuzz target: a kind-flag bitfield whose type is an empty struct had a unit of 0 bits.
        var b = new BtfBuilder();
        int empty = b.Struct("empty", 0);
        b.Struct("odd", 4, ("bits", empty, 0, 3));
        var btf = BtfTypes.Parse(b.Build(), sourceName: "o.btf", pointerSize: 8);
        Assert.Equal("o.btf: the layout of struct odd cannot be written as a schema",
            Assert.Throws<KvmException>(() => SchemaImport.Complete(btf, ["odd"])).Message);
    }

    [Fact]
    public void A_wide_gap_before_a_bitfield_is_one_byte_array_not_a_line_per_byte()
    {
        // Found by the btf fuzz target: a bitfield a gigabyte into a struct took a line per byte (1.2 GB of text).
        var b = new BtfBuilder();
        int u32 = b.Int("unsigned int", 4);
        int ch = b.Int("char", 1, encoding: 1);
        b.Struct("far", 112, ("a", ch, 0, 0), ("flags", u32, 8 + 8 * 100 + 3, 3));
        int u3 = b.Int("unsigned int", 4, bits: 3); // a bitfield as older encoders wrote it: 32-bit offsets
        b.Struct("huge", 1u << 28, ("a", ch, 0, 0), ("flags", u3, 8 * ((1u << 28) - 4), 0));
        var btf = BtfTypes.Parse(b.Build(), sourceName: "g.btf", pointerSize: 8);
        var text = SchemaImport.Complete(btf, ["far", "huge"]);
        Assert.Contains("""
            struct far {
                char a;
                unsigned char __kvmtyped_pad0[100];
                unsigned char : 3;
                unsigned int flags : 3;
                unsigned char __kvmtyped_pad1[10];
            };
            """.Replace("\r\n", "\n", StringComparison.Ordinal), text, StringComparison.Ordinal);
        Assert.Contains($"unsigned char __kvmtyped_pad2[{(1 << 28) - 5}];", text, StringComparison.Ordinal);
        Assert.True(text.Length < 2000, $"{text.Length} characters");
    }
}
