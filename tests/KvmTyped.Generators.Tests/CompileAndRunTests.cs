using System.Globalization;
using System.Reflection;
using System.Text;
using KvmTyped.Generators.Schema;
using KvmTyped.Types;

namespace KvmTyped.Generators.Tests;

/// <summary>Runs the generator, compiles its output with a probe, and reads known bytes written at the
/// (gcc-checked) computed offsets, through the ILP32 and the LP64 variant.</summary>
public sealed class CompileAndRunTests
{
    internal const string SampleSchema = """
        #include "list.h"
        enum color { RED = 1, GREEN = 2, BLUE = 0x10 };
        struct point { int x; int y; };
        struct sample {
            unsigned char u8v;
            long lv;
            unsigned long ulv;
            struct point pt;
            struct point *ppt;
            char name[8];
            int arr[3];
            unsigned int flags : 3, mode : 5;
            int neg : 4;
            enum color c;
            union { int i; short s; };
            struct list_head link;
            void *opaque;
            long long ll;
            double d;
            _Bool b;
            struct point pts[2];
            u16 words[2][2];
            int (*callback)(int);
        };
        struct holder { int id; struct list_head node; };
        """;

    private const string Probe = """
        using System.Linq;
        using KvmTyped.Types;
        using Test.Kernel;

        namespace Test;

        public static class Probe
        {
            public static string Read(IKernelMemory m, ulong a)
            {
                var s = sample.At(m, a);
                var ids = string.Join(",", s.link.Entries<holder>(h => h.node).Select(h => h.id));
                var back = s.link.ContainerOf<sample>(x => x.link).Address == a;
                string oob;
                try { _ = s.arr[3]; oob = "no"; } catch (System.IndexOutOfRangeException) { oob = "oob"; }
                string unreadable;
                try { _ = sample.At(m, 8).u8v; unreadable = "no"; } catch (KvmTyped.KvmReadException) { unreadable = "unreadable"; }
                var size = KernelTypes.SizeOf<sample>(m.DataModel) + "/" + KernelTypes.OffsetOf<sample>(m.DataModel, "link");
                return string.Join("|", s.u8v, s.lv, s.ulv, s.pt.x, s.pt.y, s.ppt.Value.y, s.name, s.arr[1], s.arr.Length, s.flags, s.mode, s.neg,
                    s.c, s.i, s.s, ids, back, s.opaque.ToString("x"), s.ll, s.d.ToString(System.Globalization.CultureInfo.InvariantCulture), s.b,
                    s.pts[1].y, s.words[2].ToString("x"), oob, unreadable, size, s.ppt.IsNull, sample.IsRelocated);
            }

            public static string ReadTask(IKernelMemory m, ulong a)
            {
                var t = task_struct.At(m, a);
                return string.Join("|", t.pid, t.comm, t.tasks.Address - a, t.mm.Address.ToString("x"), task_struct.SizeOf(m), task_struct.IsRelocated,
                    t.HasMember("pid"), t.HasMember("prio"), t.HasMember("no_such_member"));
            }
        }
        """;

    private static readonly Lazy<Assembly> Compiled = new(() =>
        GeneratorHarness.CompileAndLoad(GeneratorHarness.ShippedSchemas().Concat(GeneratorHarness.Schemas(("sample.h", SampleSchema)).ToList()), Probe));

    private static void SetBits(byte[] bytes, long bitOffset, int width, ulong value)
    {
        for (var i = 0; i < width; i++)
        {
            var bit = bitOffset + i;
            if ((value >> i & 1) != 0) bytes[bit / 8] |= (byte)(1 << (int)(bit % 8));
            else bytes[bit / 8] &= (byte)~(1 << (int)(bit % 8));
        }
    }

    [Theory]
    [InlineData(DataModel.ILP32, 0xc1000000UL)]
    [InlineData(DataModel.LP64, 0xffff888001000000UL)]
    public void ReadsKnownBytesThroughEachModel(DataModel model, ulong baseAddress)
    {
        var lp64 = model == DataModel.LP64;
        var ptr = lp64 ? 8 : 4;
        var units = Repo.ShippedSchemaFiles().Select(f => SchemaParser.Parse(f, File.ReadAllText(f))).Append(SchemaParser.Parse("sample.h", SampleSchema));
        var layout = new SchemaLayout(SchemaResolver.Resolve(units), lp64);
        var sample = layout.Get("sample")!;
        var holder = layout.Get("holder")!;
        long Off(StructLayout l, string name) => l.Fields.Single(f => f.Name == name).Offset;
        var mem = new ByteMemory(model, baseAddress, new byte[4096]);
        var a = baseAddress + 0x100;
        ulong At(string field, long extra = 0) => a + (ulong)(Off(sample, field) + extra);
        mem.Write(At("u8v"), 0xAB, 1);
        mem.Write(At("lv"), unchecked((ulong)-5L), ptr);
        mem.Write(At("ulv"), 0x89ABCDEF, ptr);
        mem.Write(At("pt"), 7, 4);
        mem.Write(At("pt", 4), unchecked((ulong)-8L), 4);
        mem.Write(At("ppt"), baseAddress + 0x800, ptr);
        mem.Write(baseAddress + 0x804, 200, 4);
        Encoding.ASCII.GetBytes("kvm\0").CopyTo(mem.Bytes, (int)(At("name") - baseAddress));
        mem.Write(At("arr", 4), unchecked((ulong)-2L), 4);
        var image = mem.Bytes;
        var sampleBits = (long)(a - baseAddress) * 8;
        foreach (var (name, value) in new[] { ("flags", 5UL), ("mode", 17UL), ("neg", unchecked((ulong)-3L)) })
        {
            var f = sample.Fields.Single(x => x.Name == name);
            SetBits(image, sampleBits + f.BitOffset, f.BitSize, value);
        }
        mem.Write(At("c"), 0x10, 4);
        mem.Write(At("i"), 0x12345678, 4);
        var holderA = baseAddress + 0x400;
        var holderB = baseAddress + 0x500;
        var nodeOffset = (ulong)Off(holder, "node");
        mem.Write(holderA, 1, 4);
        mem.Write(holderB, 2, 4);
        mem.Write(At("link"), holderA + nodeOffset, ptr);
        mem.Write(holderA + nodeOffset, holderB + nodeOffset, ptr);
        mem.Write(holderB + nodeOffset, At("link"), ptr);
        mem.Write(At("opaque"), 0xdeadbeef, ptr);
        mem.Write(At("ll"), unchecked((ulong)-0x123456789L), 8);
        mem.Write(At("d"), (ulong)BitConverter.DoubleToInt64Bits(2.5), 8);
        mem.Write(At("b"), 1, 1);
        mem.Write(At("pts", 8 + 4), 42, 4);
        mem.Write(At("words", 4), 0xBEEF, 2);

        var probe = Compiled.Value.GetType("Test.Probe")!.GetMethod("Read")!;
        var text = (string)probe.Invoke(null, new object[] { mem, a })!;
        var expected = string.Join("|", 0xAB, -5, 0x89ABCDEF, 7, -8, 200, "kvm", -2, 3, 5, 17, -3, "BLUE", 0x12345678, 0x5678, "1,2", "True", "deadbeef",
            -0x123456789L, "2.5", "True", 42, "beef", "oob", "unreadable",
            sample.Size.ToString(CultureInfo.InvariantCulture) + "/" + Off(sample, "link").ToString(CultureInfo.InvariantCulture), "False", "False");
        Assert.Equal(expected, text);
    }

    [Theory]
    [InlineData(DataModel.ILP32, 0xc1000000UL)]
    [InlineData(DataModel.LP64, 0xffff888001000000UL)]
    public void RelocatedStructsReadOffsetsFromTheImage(DataModel model, ulong baseAddress)
    {
        var table = new KernelTypeOffsetTable()
            .Struct("task_struct", 0x900)
            .Field("task_struct", "pid", 0x24)
            .Field("task_struct", "comm", 0x70)
            .Field("task_struct", "tasks", 0x40)
            .Field("task_struct", "mm", 0x58);
        var mem = new ByteMemory(model, baseAddress, new byte[8192], table);
        var a = baseAddress + 0x200;
        mem.Write(a + 0x24, 4242, 4);
        Encoding.ASCII.GetBytes("systemd\0").CopyTo(mem.Bytes, 0x200 + 0x70);
        mem.Write(a + 0x58, 0xc0ffee, model == DataModel.LP64 ? 8 : 4);
        var probe = Compiled.Value.GetType("Test.Probe")!.GetMethod("ReadTask")!;
        Assert.Equal("4242|systemd|64|c0ffee|2304|True|True|False|False", (string)probe.Invoke(null, new object[] { mem, a })!);
    }

    [Fact]
    public void RelocatedStructWithoutTypeInformationThrows()
    {
        var mem = new NoTypes();
        var view = Compiled.Value.GetType("Test.Kernel.task_struct")!.GetMethod("At")!;
        var e = Assert.Throws<TargetInvocationException>(() => view.Invoke(null, new object[] { mem, 0x1000UL }));
        Assert.IsType<KvmException>(e.InnerException);
        Assert.Contains("BTF", e.InnerException!.Message, StringComparison.Ordinal);
    }

    private sealed class NoTypes : IKernelMemory
    {
        public DataModel DataModel => DataModel.LP64;

        public bool TryReadVirtual(ulong address, Span<byte> destination, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure)
        {
            failure = "nothing here";
            return false;
        }
    }
}
