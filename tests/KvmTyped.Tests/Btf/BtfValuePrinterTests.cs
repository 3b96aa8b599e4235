using System.Text;
using System.Text.Json;
using KvmTyped.Btf;
using KvmTyped.Tools;

namespace KvmTyped.Tests.Btf;

public class BtfValuePrinterTests
{
    private static (BtfTypes Types, int Id) Sample()
    {
        var b = new BtfBuilder();
        var u8 = b.Int("unsigned char", 1, encoding: 0);
        var ch = b.Int("char", 1, encoding: 2);
        var s32 = b.Int("int", 4, encoding: 1);
        var u32 = b.Int("unsigned int", 4);
        var s64 = b.Int("long", 8, encoding: 1);
        var boolean = b.Int("_Bool", 1, encoding: 4);
        var idx = u32;
        var name = b.Array(ch, idx, 8);
        var nums = b.Array(s32, idx, 3);
        var ptr = b.Ptr(s32);
        var color = b.Enum("color", 4, false, ("RED", 0), ("GREEN", 1), ("BLUE", 2));
        var inner = b.Struct("inner", 8, ("a", s32, 0, 0), ("b", u32, 32, 0));
        var anon = b.Union("", 4, ("x", u32, 0, 0), ("y", s32, 0, 0));
        // struct sample { char name[8]; int nums[3]; int *p; enum color c; struct inner in; union { x; y; };
        //                 int neg:4; unsigned pos:3; _Bool ok; long big; unsigned char tail; }
        var id = b.Struct("sample", 64,
            ("name", name, 0, 0), ("nums", nums, 64, 0), ("p", ptr, 192, 0), ("c", color, 256, 0),
            ("in", inner, 288, 0), ("", anon, 352, 0), ("neg", s32, 384, 4), ("pos", u32, 388, 3),
            ("ok", boolean, 392, 0), ("big", s64, 448, 0));
        _ = u8;
        return (BtfTypes.Parse(b.Build(), pointerSize: 8), id);
    }

    private static byte[] Bytes()
    {
        var d = new byte[64];
        Encoding.ASCII.GetBytes("comm").CopyTo(d, 0);
        BitConverter.GetBytes(-5).CopyTo(d, 8);
        BitConverter.GetBytes(7).CopyTo(d, 12);
        BitConverter.GetBytes(1 << 20).CopyTo(d, 16);
        BitConverter.GetBytes(0xffff888012345678UL).CopyTo(d, 24);
        BitConverter.GetBytes(2).CopyTo(d, 32);
        BitConverter.GetBytes(-1).CopyTo(d, 36);
        BitConverter.GetBytes(41u).CopyTo(d, 40);
        BitConverter.GetBytes(0xdeadbeefu).CopyTo(d, 44);
        d[48] = 0b0101_1010; // neg = 0b1010 = -6 (4 bits, signed); pos = 0b101 = 5
        d[49] = 1;
        BitConverter.GetBytes(-1234567890123L).CopyTo(d, 56);
        return d;
    }

    [Fact]
    public void Text_shows_every_kind_of_member()
    {
        var (types, id) = Sample();
        var o = new StringWriter();
        new BtfValuePrinter(types) { ShowOffsets = true }.WriteText(o, id, Bytes(), "0x1000");
        var expected = """
            struct sample 0x1000 {
              [0x0] name = "comm",
              [0x8] nums = {-5, 7, 1048576},
              [0x18] p = 0xffff888012345678,
              [0x20] c = BLUE,
              [0x24] in = {
                [0x24] a = -1,
                [0x28] b = 41,
              },
              [0x2c] x = 3735928559,
              [0x2c] y = -559038737,
              [0x30] neg = -6,
              [0x30] pos = 5,
              [0x31] ok = true,
              [0x38] big = -1234567890123,
            }

            """.Replace("\r\n", "\n", StringComparison.Ordinal);
        Assert.Equal(expected, o.ToString());
    }

    [Fact]
    public void Json_carries_numbers_strings_and_nesting()
    {
        var (types, id) = Sample();
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
            new BtfValuePrinter(types).WriteJson(w, id, Bytes(), "0x1000");
        using var doc = JsonDocument.Parse(ms.ToArray());
        var v = doc.RootElement.GetProperty("value");
        Assert.Equal("struct sample", doc.RootElement.GetProperty("type").GetString());
        Assert.Equal("comm", v.GetProperty("name").GetString());
        Assert.Equal(7, v.GetProperty("nums")[1].GetInt32());
        Assert.Equal("0xffff888012345678", v.GetProperty("p").GetString());
        Assert.Equal("BLUE", v.GetProperty("c").GetString());
        Assert.Equal(41, v.GetProperty("in").GetProperty("b").GetInt32());
        Assert.Equal(-6, v.GetProperty("neg").GetInt32());
        Assert.True(v.GetProperty("ok").GetBoolean());
        Assert.Equal(-1234567890123L, v.GetProperty("big").GetInt64());
    }

    [Fact]
    public void Bytes_shorter_than_the_type_say_so_instead_of_throwing()
    {
        var (types, id) = Sample();
        var o = new StringWriter();
        new BtfValuePrinter(types).WriteText(o, id, Bytes()[..30], null);
        Assert.Contains("c = (outside the object)", o.ToString());
    }
}
