using KvmTyped.Btf;
using KvmTyped.TestSupport;
using KvmTyped.Types;
using KvmTyped.Tools;

namespace KvmTyped.Tests.Btf;

/// <summary>BTF with the kinds newer kernels emit — TYPE_TAG (__user, __rcu), DECL_TAG, ENUM64 — and const
/// function-pointer members, from tests/Shared/Btf/tagged.btf (clang + pahole -J), so they are covered on every
/// machine whatever its own kernel: by the reader, the dump, the relocator and schema import.</summary>
public class TaggedBtfTests
{
    private static readonly Lazy<BtfTypes> Lazy = new(() => BtfReader.Load(Host.TaggedBtf));

    private static BtfTypes T => Lazy.Value;

    private static int Task => T.Find("tag_task", BtfKind.Struct);

    [Fact]
    public void Every_newer_kind_is_read()
    {
        var kinds = Enumerable.Range(1, T.LastId).GroupBy(T.KindOf).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(2, kinds[BtfKind.TypeTag]);
        Assert.Equal(4, kinds[BtfKind.DeclTag]);
        Assert.Equal(2, kinds[BtfKind.Enum64]);
        Assert.Equal(8, T.PointerSize);

        var tags = Enumerable.Range(1, T.LastId).Where(id => T.KindOf(id) == BtfKind.DeclTag)
            .Select(id => (T.NameOf(id), T.NameOf((int)T.Get(id).SizeOrType), T.GetDeclTagComponent(id))).ToList();
        Assert.Equal([("pid", "tag_task", 0), ("bits", "tag_task", 1), ("task", "tag_task", -1), ("fn", "tag_fn", -1)], tags);

        var typeTags = Enumerable.Range(1, T.LastId).Where(id => T.KindOf(id) == BtfKind.TypeTag).Select(T.NameOf);
        Assert.Equal(["user", "rcu"], typeTags);
    }

    [Fact]
    public void Enum64_values_keep_all_64_bits_and_their_sign()
    {
        var wide = T.GetEnumValues(T.Find("tag_wide", BtfKind.Enum64));
        Assert.Equal(["TAG_WIDE_LOW", "TAG_WIDE_HIGH", "TAG_WIDE_TOP"], wide.Select(v => v.Name));
        Assert.Equal([1UL, 0x1_0000_0000UL, ulong.MaxValue], wide.Select(v => v.UnsignedValue));
        var signed = T.GetEnumValues(T.Find("tag_signed", BtfKind.Enum64));
        Assert.Equal([-0x1_0000_0000L, 7L], signed.Select(v => v.Value));
        Assert.Equal(8, T.SizeOf(T.Find("tag_wide", BtfKind.Enum64)));
    }

    [Fact]
    public void Type_tags_sit_between_a_pointer_and_its_target_and_resolve_through()
    {
        var ubuf = T.FindMember(Task, "ubuf")!.Value;
        Assert.Equal(BtfKind.Ptr, T.KindOf(ubuf.TypeId));
        int tag = (int)T.Get(ubuf.TypeId).SizeOrType;
        Assert.Equal(BtfKind.TypeTag, T.KindOf(tag));
        Assert.Equal("user", T.NameOf(tag));
        Assert.Equal("char", T.NameOf(T.Resolve(tag)));
        Assert.Equal(8, ubuf.Size);
        Assert.Equal(8, ubuf.Offset);
        var parent = T.FindMember(Task, "parent")!.Value;
        Assert.Equal(Task, T.Resolve((int)T.Get(parent.TypeId).SizeOrType));
    }

    [Fact]
    public void Members_have_the_offsets_clang_gave_them()
    {
        var members = T.GetFlattenedMembers(Task);
        Assert.Equal(["pid", "state", "flags", "ubuf", "parent", "ops", "wide", "sign", "cb", "vc", "u", "bytes", "comm"],
            members.Select(m => m.Name));
        Assert.Equal([0L, 32, 35, 64, 128, 192, 256, 320, 384, 448, 512, 512, 576], members.Select(m => m.BitOffset));
        Assert.Equal([0, 3, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], members.Select(m => m.BitSize));
        Assert.Equal(88, T.SizeOf(Task));
    }

    [Fact]
    public void Const_and_volatile_function_pointers_and_tagged_pointers_are_spelled_as_C()
    {
        var text = BtfDump.ToText(T, T.Find("kset_uevent_ops", BtfKind.Struct)).Split('\n');
        Assert.Contains("\tint (*const filter)(const struct kobject *);     /*     0     8 */", text);
        Assert.Contains("\tconst char *(*const name)(const struct kobject *); /*     8     8 */", text);
        Assert.Contains("\tint (*volatile uevent)(const struct kobject *, void *); /*    16     8 */", text);
        var task = BtfDump.ToText(T, Task).Split('\n');
        Assert.Contains("\tchar *                     ubuf;                 /*     8     8 */", task);
        Assert.Contains("\tenum tag_wide              wide;                 /*    32     8 */", task);
        Assert.Contains("\tint (*const cb)(int *);                          /*    48     8 */", task);
        Assert.Contains("\tconst volatile long *const vc;                   /*    56     8 */", task);
    }

    [Fact]
    public void The_dump_agrees_with_pahole_member_by_member()
    {
        var names = new[] { "tag_task", "kset_uevent_ops", "kobject" };
        var theirs = Pahole.Parse(Pahole.Run("-F", "btf", "-C", string.Join(',', names), Host.TaggedBtf));
        var text = new StringWriter();
        BtfDump.WriteText(T, BtfDump.FindComposites(T, names), text);
        var ours = Pahole.Parse(text.ToString());
        foreach (var name in names)
        {
            Assert.Equal(theirs[name].Size, ours[name].Size);
            Assert.Equal(theirs[name].Fields, ours[name].Fields);
        }
        // pahole 1.24 prints kset_uevent_ops.filter as "const int (*filter)(…)"; both spellings name the member.
        Assert.Equal(["filter", "name", "uevent"], theirs["kset_uevent_ops"].Fields.Select(f => f.Name));
    }

    [Fact]
    public void The_relocator_finds_members_behind_tags_and_accepts_enum64_as_a_64_bit_integer()
    {
        var relocator = new BtfRelocator(T, DataModel.LP64, "tagged test kernel");
        var ptr = new KernelFieldType(KernelFieldKind.Pointer, 8, 8);
        var r = relocator.Relocate(new KernelRelocationRequest("tag_task", false, ["pid", "ubuf", "parent", "wide", "sign", "cb", "state", "u"],
            [new(KernelFieldKind.Int, 4, 4, true), ptr, ptr, new(KernelFieldKind.Int, 8, 8, false), new(KernelFieldKind.Int, 8, 8, true), ptr,
             new(KernelFieldKind.Int, 4, 4, false, BitWidth: 3), new(KernelFieldKind.Int, 8, 8, false)]));
        Assert.Equal(88UL, r.Size);
        Assert.Equal(new long[] { 0, 64, 128, 256, 320, 384, 32, 512 }, Enumerable.Range(0, 8).Select(r.BitOffset));
        Assert.Equal(3, r.BitSize(6));
        var e = Assert.Throws<KvmException>(() => relocator.Relocate(new KernelRelocationRequest("tag_task", false, ["wide"], [new(KernelFieldKind.Int, 4, 4, false)])));
        Assert.StartsWith("struct tag_task, member 'wide': declared unsigned 4-byte int, but tagged test kernel has enum tag_wide wide", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Schema_import_writes_the_tagged_structs_as_plain_C()
    {
        var text = SchemaImport.Complete(T, ["tag_task"]);
        Assert.Contains("""
            struct tag_task {
                int pid;
                unsigned int state : 3;
                unsigned int flags : 5;
                char *ubuf;
                struct tag_task *parent;
                struct kset_uevent_ops *ops;
                unsigned long long wide;
                long long sign;
                void *cb;
                long *vc;
                union {
                    unsigned long long u;
                    char bytes[8];
                };
                char comm[16];
            };
            """.Replace("\r\n", "\n", StringComparison.Ordinal), text, StringComparison.Ordinal);
        var subset = SchemaImport.Subset(T, ["tag_task"], ["ubuf", "wide", "cb"]);
        Assert.Contains("struct tag_task {\n    char *ubuf;\n    unsigned long long wide;\n    void *cb;\n} __attribute__((preserve_access_index));",
            subset, StringComparison.Ordinal);
    }
}
