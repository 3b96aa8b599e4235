using KvmTyped.Btf;
using KvmTyped.TestSupport;

namespace KvmTyped.Tests.Btf;

/// <summary>The reader on real kernels' BTF: the fixtures' kernels everywhere, and this machine's running kernel where it
/// has BTF (a theory's "sysfs" row is skipped, naming the file, where it has none).</summary>
public class RealBtfTests
{
    internal const string SysfsVmlinux = Host.BtfPath;
    internal const string Amd64Vmlinux = "amd64/vmlinux-6.1.0-56-amd64.gz";
    internal const string I386Detached = "i386/vmlinux-6.1.0-50-686-pae.btf";

    private static readonly Lazy<BtfTypes> SysfsLazy = new(() => BtfReader.Load(RequireSysfs()));
    private static readonly Lazy<BtfTypes> Amd64Lazy = new(() => BtfReader.Load(Fixtures.Get(Amd64Vmlinux)));
    private static readonly Lazy<BtfTypes> I386Lazy = new(() => BtfReader.Load(Fixtures.Get(I386Detached)));

    internal static BtfTypes Sysfs => SysfsLazy.Value;
    internal static BtfTypes Amd64 => Amd64Lazy.Value;
    internal static BtfTypes I386 => I386Lazy.Value;

    /// <summary>The running kernel's BTF. Tests that read it carry <see cref="HostBtfFactAttribute"/> or
    /// <see cref="HostBtfDataAttribute"/>, which skip them by name where it is missing; reaching this without one fails.</summary>
    internal static string RequireSysfs()
    {
        if (Host.BtfSkipReason is { } why)
            Assert.Fail(why);
        return SysfsVmlinux;
    }

    /// <summary>The fixtures' kernels; theories add the running kernel with <c>[HostBtfData("sysfs")]</c>.</summary>
    public static TheoryData<string> Sources => new() { "amd64", "i386" };

    internal static BtfTypes Of(string source) => source switch
    {
        "sysfs" => Sysfs,
        "amd64" => Amd64,
        "i386" => I386,
        _ => throw new ArgumentOutOfRangeException(nameof(source)),
    };

    [Theory]
    [MemberData(nameof(Sources))]
    [HostBtfData("sysfs")]
    public void Finds_core_structs_with_sane_layouts(string source)
    {
        var t = Of(source);
        int ptr = source == "i386" ? 4 : 8;
        Assert.Equal(ptr, t.PointerSize);
        Assert.Equal(1, t.FirstId);
        Assert.True(t.Count > 50_000, $"{t.Count} types");

        int listHead = t.Find("list_head", BtfKind.Struct);
        Assert.Equal(2 * ptr, t.SizeOf(listHead));
        var members = t.GetFlattenedMembers(listHead);
        Assert.Equal(["next", "prev"], members.Select(m => m.Name));
        Assert.Equal([0L, ptr], members.Select(m => m.Offset));
        Assert.All(members, m => Assert.Equal(ptr, m.Size));
        Assert.Equal(BtfKind.Ptr, t.KindOf(members[0].TypeId));

        int task = t.Find("task_struct", BtfKind.Struct);
        var comm = t.FindMember(task, "comm");
        Assert.NotNull(comm);
        Assert.Equal(16, comm.Value.Size);
        Assert.Equal(BtfKind.Array, t.KindOf(t.Resolve(comm.Value.TypeId)));
        Assert.True(t.SizeOf(task) > comm.Value.Offset);

        // u64 is a typedef chain down to an 8-byte unsigned int.
        int u64 = t.Find("u64", BtfKind.Typedef);
        Assert.Equal(8, t.SizeOf(u64));
        Assert.Equal(BtfKind.Int, t.KindOf(t.Resolve(u64)));
        Assert.False(t.GetInt(t.Resolve(u64)).IsSigned);
    }

    [Theory]
    [MemberData(nameof(Sources))]
    [HostBtfData("sysfs")]
    public void Every_struct_union_and_enum_reads_and_every_member_lies_inside_its_struct(string source)
    {
        var t = Of(source);
        int composites = 0, enums = 0, bitfields = 0, anonymous = 0;
        for (int id = 1; id <= t.LastId; id++)
        {
            var kind = t.KindOf(id);
            if (kind is BtfKind.Enum or BtfKind.Enum64)
            {
                Assert.Equal(t.Get(id).Vlen, t.GetEnumValues(id).Count);
                enums++;
            }
            if (kind is not (BtfKind.Struct or BtfKind.Union))
                continue;
            composites++;
            long sizeBits = 8 * t.SizeOf(id);
            foreach (var m in t.GetMembers(id))
            {
                if (m.Name.Length == 0)
                    anonymous++;
            }
            foreach (var f in t.GetFlattenedMembers(id))
            {
                Assert.True(f.Name.Length > 0);
                if (f.IsBitfield)
                {
                    bitfields++;
                    Assert.True(f.BitOffset + f.BitSize <= sizeBits, $"{t.NameOf(id)}.{f.Name}");
                    Assert.True(f.BitSize <= 8 * f.Size, $"{t.NameOf(id)}.{f.Name}");
                }
                else
                {
                    Assert.True(f.BitOffset % 8 == 0, $"{t.NameOf(id)}.{f.Name} at bit {f.BitOffset}");
                    Assert.True(f.BitOffset + 8 * f.Size <= sizeBits, $"{t.NameOf(id)}.{f.Name}: {f.Offset}+{f.Size} > {sizeBits / 8}");
                }
            }
        }
        Assert.True(composites > 5_000, $"{composites} structs and unions");
        Assert.True(enums > 500, $"{enums} enums");
        Assert.True(bitfields > 1_000, $"{bitfields} bitfields");
        Assert.True(anonymous > 500, $"{anonymous} anonymous members");
    }

    [Fact]
    public void Reads_the_dot_BTF_section_of_an_ELF_vmlinux_in_place()
    {
        var path = Fixtures.Get(Amd64Vmlinux);
        var (blob, offset) = BtfReader.ReadBlob(path);
        // readelf -S: [18] .BTF PROGBITS ffffffff824c1b88 016c1b88 size 000000000042866d
        Assert.Equal(0x016c1b88, offset);
        Assert.Equal(0x42866d, blob.Length);
        Assert.Equal(0xEB9F, BitConverter.ToUInt16(blob, 0));
    }

    [Fact]
    public void The_detached_i386_file_is_raw_BTF()
    {
        var (blob, offset) = BtfReader.ReadBlob(Fixtures.Get(I386Detached));
        Assert.Equal(0, offset);
        Assert.Equal(new FileInfo(Fixtures.Get(I386Detached)).Length, blob.Length);
        Assert.False(I386.IsBigEndian);
    }

    [HostBtfFact]
    public void One_instance_answers_many_threads_at_once()
    {
        var t = BtfReader.Load(RequireSysfs());
        string[] names = ["task_struct", "mm_struct", "sk_buff", "inode", "file", "page", "dentry", "list_head"];
        var expected = names.Select(n => BtfReader.Load(RequireSysfs()).GetFlattenedMembers(t.Find(n, BtfKind.Struct)).ToList()).ToList();
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, k =>
        {
            int n = k % names.Length;
            int id = t.Find(names[n], BtfKind.Struct);
            Assert.Equal(expected[n], t.GetFlattenedMembers(id));
        });
    }

    /// <summary>The kinds every kernel since 5.x has (DECL_TAG, TYPE_TAG and ENUM64 came later: the tagged BTF
    /// under tests/Shared/Btf covers them on every machine), and any newer kind the running kernel has reads.</summary>
    [HostBtfFact]
    public void The_running_kernel_has_the_common_kinds()
    {
        var t = Sysfs;
        var seen = new HashSet<BtfKind>();
        for (int id = 1; id <= t.LastId; id++)
            seen.Add(t.KindOf(id));
        foreach (var k in new[] { BtfKind.Int, BtfKind.Ptr, BtfKind.Array, BtfKind.Struct, BtfKind.Union, BtfKind.Enum,
                     BtfKind.Fwd, BtfKind.Typedef, BtfKind.Volatile, BtfKind.Const, BtfKind.Func, BtfKind.FuncProto,
                     BtfKind.Var, BtfKind.Datasec })
            Assert.Contains(k, seen);
        for (int id = 1; id <= t.LastId; id++)
        {
            switch (t.KindOf(id))
            {
                case BtfKind.DeclTag:
                    Assert.InRange(t.GetDeclTagComponent(id), -1, int.MaxValue);
                    Assert.NotEmpty(t.NameOf(id));
                    break;
                case BtfKind.TypeTag:
                    Assert.NotEmpty(t.NameOf(id));
                    break;
                case BtfKind.Enum64:
                    Assert.Equal(t.Get(id).Vlen, t.GetEnumValues(id).Count);
                    break;
            }
        }
    }
}
