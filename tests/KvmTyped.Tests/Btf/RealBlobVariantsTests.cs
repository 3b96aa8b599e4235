using System.Buffers.Binary;
using KvmTyped.Btf;
using KvmTyped.TestSupport;
using KvmTyped.Tools;

namespace KvmTyped.Tests.Btf;

/// <summary>The running kernel's BTF rewritten: big-endian, with a longer header, and continued by a split blob.</summary>
public class RealBlobVariantsTests
{
    /// <summary>Every field of the header and the type section is a 16- or 32-bit word; strings are bytes.</summary>
    private static byte[] ToBigEndian(byte[] little)
    {
        var big = (byte[])little.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(big, BinaryPrimitives.ReadUInt16LittleEndian(little));
        for (int at = 4; at < 24; at += 4)
            BinaryPrimitives.WriteUInt32BigEndian(big.AsSpan(at), BinaryPrimitives.ReadUInt32LittleEndian(little.AsSpan(at)));
        int hdr = (int)BinaryPrimitives.ReadUInt32LittleEndian(little.AsSpan(4));
        int typeOff = hdr + (int)BinaryPrimitives.ReadUInt32LittleEndian(little.AsSpan(8));
        int typeLen = (int)BinaryPrimitives.ReadUInt32LittleEndian(little.AsSpan(12));
        for (int at = typeOff; at < typeOff + typeLen; at += 4)
            BinaryPrimitives.WriteUInt32BigEndian(big.AsSpan(at), BinaryPrimitives.ReadUInt32LittleEndian(little.AsSpan(at)));
        return big;
    }

    [HostBtfFact]
    public void A_big_endian_copy_of_the_running_kernels_BTF_reads_the_same()
    {
        var (blob, _) = BtfReader.ReadBlob(RealBtfTests.RequireSysfs());
        var le = BtfTypes.Parse(blob);
        var be = BtfTypes.Parse(ToBigEndian(blob));
        Assert.True(be.IsBigEndian);
        Assert.Equal(le.LastId, be.LastId);
        Assert.Equal(le.PointerSize, be.PointerSize);
        for (int id = 1; id <= le.LastId; id++)
        {
            Assert.Equal(le.Get(id), be.Get(id));
            var kind = le.KindOf(id);
            if (kind is BtfKind.Struct or BtfKind.Union)
                Assert.Equal(le.GetFlattenedMembers(id), be.GetFlattenedMembers(id));
            else if (kind is BtfKind.Enum or BtfKind.Enum64)
                Assert.Equal(le.GetEnumValues(id), be.GetEnumValues(id));
            else if (kind == BtfKind.Int)
                Assert.Equal(le.GetInt(id), be.GetInt(id));
            else if (kind == BtfKind.Array)
                Assert.Equal(le.GetArray(id), be.GetArray(id));
        }
    }

    [HostBtfFact]
    public void A_longer_header_is_skipped_by_its_length()
    {
        var (blob, _) = BtfReader.ReadBlob(RealBtfTests.RequireSysfs());
        var longer = new byte[blob.Length + 8];
        blob.AsSpan(0, 24).CopyTo(longer);
        blob.AsSpan(24).CopyTo(longer.AsSpan(32));
        BtfBuilder.WriteU32(longer, 4, 32);
        var t = BtfTypes.Parse(longer);
        var reference = RealBtfTests.Sysfs;
        Assert.Equal(reference.LastId, t.LastId);
        int task = t.Find("task_struct", BtfKind.Struct);
        Assert.Equal(reference.GetFlattenedMembers(task), t.GetFlattenedMembers(task));
    }

    [HostBtfFact]
    public void A_module_blob_continues_the_running_kernels_ids_and_strings()
    {
        var vmlinux = RealBtfTests.Sysfs;
        int listHead = vmlinux.Find("list_head", BtfKind.Struct);
        int task = vmlinux.Find("task_struct", BtfKind.Struct);
        int u32 = vmlinux.Find("u32", BtfKind.Typedef);
        var b = new BtfBuilder(vmlinux);
        int taskPtr = b.Ptr(task);
        int module = b.Struct("demo_module_state", 32,
            ("node", listHead, 0, 0), ("owner", taskPtr, 128, 0), ("flags", u32, 192, 0), ("ready", u32, 224, 1));
        int typedef = b.Typedef("demo_state_t", module);
        var split = BtfTypes.Parse(b.Build(), vmlinux, "demo.ko");
        Assert.Equal(vmlinux.LastId + 1, split.FirstId);
        Assert.Equal(module, split.Find("demo_module_state", BtfKind.Struct));
        Assert.Equal(task, split.Find("task_struct", BtfKind.Struct));
        Assert.True(split.TryFindComposite("demo_state_t", out int viaTypedef));
        Assert.Equal(module, viaTypedef);
        Assert.Equal(typedef, split.Find("demo_state_t", BtfKind.Typedef));
        var f = split.GetFlattenedMembers(module);
        Assert.Equal(["node", "owner", "flags", "ready"], f.Select(x => x.Name));
        Assert.Equal("struct task_struct *owner", split.FormatDeclaration(f[1].TypeId, "owner"));
        Assert.Equal([0L, 16, 24], f.Take(3).Select(x => x.Offset));
        Assert.Equal(4, split.SizeOf(f[2].TypeId));
        Assert.Contains("\tu32                        ready:1;", BtfDump.ToText(split, module), StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_kernel_BTF_is_a_skip_that_names_the_file()
    {
        Assert.Equal("/sys/kernel/btf/no-such-kernel is missing: the running kernel was built without CONFIG_DEBUG_INFO_BTF",
            Host.BtfSkipReasonFor("/sys/kernel/btf/no-such-kernel"));
        Assert.Null(Host.BtfSkipReasonFor(Host.TaggedBtf));
    }
}
