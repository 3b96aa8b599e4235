using KvmTyped.Btf;
using KvmTyped.TestSupport;

namespace KvmTyped.Tests.Btf;

/// <summary>pahole is the BTF oracle: for the running kernel and the fixtures' kernels, every member of 100+ structs
/// (core kernel structs plus a seeded random sample) has the offset, size, bit offset and bit width pahole prints,
/// and every struct and union pahole lists has the size it lists.</summary>
public class PaholeOracleTests
{
    internal static readonly string[] Core =
    [
        "task_struct", "mm_struct", "file", "inode", "sk_buff", "page", "dentry", "super_block", "vm_area_struct",
        "net_device", "sock", "cred", "list_head", "hlist_node", "module", "kobject", "file_operations", "address_space",
        "signal_struct", "sighand_struct", "files_struct", "fs_struct", "nsproxy", "pid", "uts_namespace", "new_utsname",
        "thread_struct", "pt_regs", "tcp_sock", "bio", "device", "socket", "path", "vfsmount", "timer_list", "hrtimer",
        "rb_node", "qstr", "kref", "callback_head", "mutex", "wait_queue_head", "sched_entity", "sched_avg",
        "thread_info", "mm_rss_stat", "upid", "pid_namespace", "ipc_namespace", "user_namespace",
    ];

    internal const int Seed = 20261126;
    internal const int RandomCount = 110;

    internal static string PathOf(string source) => source switch
    {
        "sysfs" => RealBtfTests.RequireSysfs(),
        "amd64" => Fixtures.Get(RealBtfTests.Amd64Vmlinux),
        "i386" => Fixtures.Get(RealBtfTests.I386Detached),
        _ => throw new ArgumentOutOfRangeException(nameof(source)),
    };

    /// <summary>Names of structs and unions defined exactly once (pahole and a name lookup agree on which one is meant).</summary>
    internal static Dictionary<string, int> UniqueComposites(BtfTypes t)
    {
        var count = new Dictionary<string, int>(StringComparer.Ordinal);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 1; id <= t.LastId; id++)
        {
            if (t.KindOf(id) is not (BtfKind.Struct or BtfKind.Union))
                continue;
            string name = t.NameOf(id);
            if (name.Length == 0)
                continue;
            count[name] = count.GetValueOrDefault(name) + 1;
            ids[name] = id;
        }
        return ids.Where(kv => count[kv.Key] == 1).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
    }

    /// <summary>The core structs this kernel has, plus a seeded random sample of the others.</summary>
    internal static List<string> Sample(Dictionary<string, int> unique, Dictionary<string, long> paholeSizes, BtfTypes t)
    {
        var eligible = unique.Keys.Where(paholeSizes.ContainsKey).Where(n => t.Get(unique[n]).Vlen > 0).Order(StringComparer.Ordinal).ToList();
        var chosen = Core.Where(eligible.Contains).ToList();
        var rest = eligible.Except(chosen).ToArray();
        new Random(Seed).Shuffle(rest);
        chosen.AddRange(rest.Take(RandomCount));
        return chosen;
    }

    [Theory]
    [MemberData(nameof(RealBtfTests.Sources), MemberType = typeof(RealBtfTests))]
    [HostBtfData("sysfs")]
    public void Every_struct_size_agrees_with_pahole_sizes(string source)
    {
        var t = RealBtfTests.Of(source);
        var sizes = Pahole.Sizes(PathOf(source));
        var unique = UniqueComposites(t);
        var mismatches = new List<string>();
        int compared = 0;
        foreach (var (name, size) in sizes)
        {
            if (!unique.TryGetValue(name, out int id))
                continue;
            compared++;
            if (t.SizeOf(id) != size)
                mismatches.Add($"{name}: pahole {size}, ours {t.SizeOf(id)}");
        }
        Assert.True(compared > 5_000, $"only {compared} structs compared");
        Assert.True(mismatches.Count == 0, string.Join('\n', mismatches.Take(20)));
    }

    [Theory]
    [MemberData(nameof(RealBtfTests.Sources), MemberType = typeof(RealBtfTests))]
    [HostBtfData("sysfs")]
    public void Every_member_agrees_with_pahole_for_core_and_sampled_structs(string source)
    {
        var t = RealBtfTests.Of(source);
        string path = PathOf(source);
        var unique = UniqueComposites(t);
        var sizes = Pahole.Sizes(path);
        var sample = Sample(unique, sizes, t);
        Assert.True(sample.Count >= 100, $"only {sample.Count} structs sampled");
        Assert.Contains("task_struct", sample);
        Assert.Contains("sk_buff", sample);

        var printed = Pahole.Parse(Pahole.Run("-F", "btf", "-C", string.Join(',', sample), path));
        var mismatches = new List<string>();
        int members = 0, bitfields = 0;
        foreach (var name in sample)
        {
            if (!printed.TryGetValue(name, out var expected))
            {
                mismatches.Add($"{name}: pahole printed nothing");
                continue;
            }
            int id = unique[name];
            long size = expected.Size >= 0 ? expected.Size : sizes[name]; // pahole prints no size summary for unions
            if (size != t.SizeOf(id))
                mismatches.Add($"{name}: size pahole {size}, ours {t.SizeOf(id)}");
            var ours = t.GetFlattenedMembers(id);
            members += ours.Count;
            bitfields += ours.Count(f => f.IsBitfield);
            mismatches.AddRange(Compare(name, expected.Fields, ours));
        }
        Assert.True(mismatches.Count == 0, $"{mismatches.Count} mismatches:\n" + string.Join('\n', mismatches.Take(30)));
        Assert.True(members > 2_000, $"{members} members");
        Assert.True(bitfields > 50, $"{bitfields} bitfields");
    }

    [Theory]
    [MemberData(nameof(RealBtfTests.Sources), MemberType = typeof(RealBtfTests))]
    [HostBtfData("sysfs")]
    public void Every_member_of_every_struct_pahole_prints_agrees(string source)
    {
        var t = RealBtfTests.Of(source);
        string path = PathOf(source);
        var unique = UniqueComposites(t);
        var printed = Pahole.Parse(Pahole.Run("-F", "btf", path));
        var mismatches = new List<string>();
        int structs = 0;
        foreach (var (name, expected) in printed)
        {
            if (!unique.TryGetValue(name, out int id))
                continue;
            structs++;
            if (expected.Size >= 0 && expected.Size != t.SizeOf(id))
                mismatches.Add($"{name}: size pahole {expected.Size}, ours {t.SizeOf(id)}");
            mismatches.AddRange(Compare(name, expected.Fields, t.GetFlattenedMembers(id)));
        }
        Assert.True(structs > 5_000, $"only {structs} structs compared");
        Assert.True(mismatches.Count == 0, $"{mismatches.Count} mismatches:\n" + string.Join('\n', mismatches.Take(30)));
    }

    internal static IEnumerable<string> Compare(string name, IReadOnlyList<PaholeField> expected, IReadOnlyList<BtfField> ours)
    {
        if (expected.Count != ours.Count)
        {
            yield return $"{name}: pahole {expected.Count} members [{string.Join(' ', expected.Select(e => e.Name))}], ours {ours.Count} [{string.Join(' ', ours.Select(o => o.Name))}]";
            yield break;
        }
        for (int i = 0; i < ours.Count; i++)
        {
            var e = expected[i];
            var o = ours[i];
            if (e.Name != o.Name)
                yield return $"{name}[{i}]: name pahole {e.Name}, ours {o.Name}";
            else if (e.BitSize != o.BitSize)
                yield return $"{name}.{o.Name}: bit size pahole {e.BitSize}, ours {o.BitSize}";
            else if (o.IsBitfield && e.BitOffset != o.BitOffset)
                yield return $"{name}.{o.Name}: bit offset pahole {e.BitOffset}, ours {o.BitOffset}";
            else if (!o.IsBitfield && (e.Offset != o.Offset || e.Size != o.Size))
                yield return $"{name}.{o.Name}: pahole {e.Offset}+{e.Size}, ours {o.Offset}+{o.Size}";
        }
    }
}
