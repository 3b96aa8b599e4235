using KvmTyped.Btf;
using KvmTyped.EndToEnd.Tests.Kernel;
using KvmTyped.EndToEnd.Tests.Linux;
using KvmTyped.Linux;
using KvmTyped.TestSupport;
using KvmTyped.Types;

namespace KvmTyped.EndToEnd.Tests.Relocation;

/// <summary>The generated schemas/linux views, relocated against each fixture kernel's own BTF.</summary>
public class RelocationTests
{
    private static Kvm Open(DumpCase c) =>
        Kvm.Open(Fixtures.Get(c.Namelist), Fixtures.Get(c.Core), options: new KvmOpenOptions { BtfPath = c.BtfPath });

    /// <summary>task->comm for a /proc comm (at most 15 bytes; a kworker's "-workqueue" suffix is /proc's).</summary>
    private static string KernelComm(string procComm)
    {
        if (procComm.StartsWith("kworker/", StringComparison.Ordinal) && procComm.IndexOf('-', StringComparison.Ordinal) is var dash and > 0)
            procComm = procComm[..dash];
        return procComm.Length > 15 ? procComm[..15] : procComm;
    }

    [Theory]
    [MemberData(nameof(DumpCase.All), MemberType = typeof(DumpCase))]
    public void Every_schemas_linux_subset_relocates(DumpCase c)
    {
        using var kvm = Open(c);
        Assert.StartsWith(c.ExpectedBtfSource, kvm.Btf.Source, StringComparison.Ordinal);
        var btf = kvm.Btf.Types;
        ulong Size(string name) => (ulong)btf.SizeOf(btf.Find(name, BtfKind.Struct));
        Assert.Equal(Size("task_struct"), task_struct.SizeOf(kvm));
        Assert.Equal(Size("mm_struct"), mm_struct.SizeOf(kvm));
        Assert.Equal(Size("cred"), cred.SizeOf(kvm));
        Assert.Equal(Size("pid"), pid.SizeOf(kvm));
        Assert.Equal(Size("upid"), upid.SizeOf(kvm));
        Assert.Equal(Size("uts_namespace"), uts_namespace.SizeOf(kvm));
        var init = task_struct.At(kvm, kvm.SymbolAddress("init_task"));
        foreach (var member in new[] { "__state", "flags", "prio", "tasks", "mm", "active_mm", "pid", "tgid", "real_parent", "comm", "thread_group", "cred" })
            Assert.True(init.HasMember(member), member);
        Assert.False(init.HasMember("no_such_member"));
        var request = new KernelRelocationRequest("task_struct", false, ["comm", "tasks", "pid"]);
        var relocation = kvm.Relocate(request);
        var task = btf.Find("task_struct", BtfKind.Struct);
        Assert.Equal(new[] { "comm", "tasks", "pid" }.Select(m => btf.FindMember(task, m)!.Value.BitOffset), Enumerable.Range(0, 3).Select(relocation.BitOffset));
    }

    [Theory]
    [MemberData(nameof(DumpCase.All), MemberType = typeof(DumpCase))]
    public void Init_task_is_swapper_and_utsname_release_is_osrelease(DumpCase c)
    {
        using var kvm = Open(c);
        var init = task_struct.At(kvm, kvm.SymbolAddress("init_task"));
        Assert.Equal("swapper/0", init.comm);
        Assert.Equal(0, init.pid);
        Assert.Equal(init.Address, init.group_leader.Address);
        var uts = uts_namespace.At(kvm, kvm.SymbolAddress("init_uts_ns"));
        Assert.NotNull(kvm.Release);
        Assert.Equal(kvm.Release, uts.name.release);
        Assert.Equal("Linux", uts.name.sysname);
        var truth = LinuxTruth.Load(c.Folder);
        Assert.StartsWith($"Linux {uts.name.nodename} {uts.name.release} {uts.name.version} {uts.name.machine}", truth.UnameA, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(DumpCase.All), MemberType = typeof(DumpCase))]
    public void Walking_init_task_tasks_with_generated_views_yields_proc_s_processes(DumpCase c)
    {
        var truth = LinuxTruth.Load(c.Folder);
        using var kvm = Open(c);
        var tasks = GeneratedTaskList.Read(kvm, kvm.SymbolAddress("init_task"));
        Assert.Equal((0, "swapper/0"), (tasks[0].Pid, tasks[0].Comm));
        var byTid = tasks.Skip(1).ToDictionary(t => t.Pid); // throws on a task listed twice
        var expected = truth.Tasks;
        var maxTruthTid = expected.Max(t => t.Tid);
        var compared = 0;
        foreach (var p in expected)
        {
            // Allowed (as for the BTF task walker): a kworker may have exited between the snapshot and the dump.
            if (!byTid.TryGetValue(p.Tid, out var k))
            {
                Assert.StartsWith("kworker/", p.Comm, StringComparison.Ordinal);
                continue;
            }
            Assert.Equal((p.Tid, p.Pid, p.Ppid, KernelComm(p.Comm)), (k.Pid, k.Tgid, k.Ppid, k.Comm));
            compared++;
        }
        Assert.True(compared >= expected.Count * 9 / 10, $"{compared} of {expected.Count} compared");
        // Allowed extra tasks: ones created after the snapshot (a higher pid) and kworkers.
        foreach (var k in byTid.Values.Where(k => !expected.Any(p => p.Tid == k.Pid)))
            Assert.True(k.Pid > maxTruthTid || k.Comm.StartsWith("kworker/", StringComparison.Ordinal), $"pid {k.Pid} ({k.Comm}) is not in /proc's list");
        // The same set the library's own BTF walker finds (it also lists the other CPUs' idle tasks).
        var walker = KernelTasks.For(kvm).List().Where(t => t.Pid > 0).Select(t => (t.Pid, t.Tgid, t.Ppid, t.Comm)).Order();
        Assert.Equal(walker, byTid.Values.Select(t => (t.Pid, t.Tgid, t.Ppid, t.Comm)).Order());
        Assert.All(byTid.Values.Where(t => t.Ppid == 2), t => Assert.False(t.HasMm));
        Assert.True(byTid[1].HasMm);
    }

    [Theory]
    [InlineData(Dumps.Amd64Kdump, Dumps.Amd64Map, null, "amd64/kdump-kaslr")]
    [InlineData(Dumps.I386Kdump, Dumps.I386Map, DumpCase.I386Btf, "i386/pae-kdump-kaslr")]
    public void One_piece_of_code_reads_the_task_list_of_a_64_bit_and_a_32_bit_kernel(string core, string namelist, string? btf, string folder)
    {
        using var kvm = Kvm.Open(Fixtures.Get(namelist), Fixtures.Get(core), options: new KvmOpenOptions { BtfPath = btf is null ? null : Fixtures.Get(btf) });
        var tasks = GeneratedTaskList.Read(kvm, kvm.SymbolAddress("init_task"));
        var truth = LinuxTruth.Load(folder);
        var marker = Assert.Single(tasks, t => t.Comm == "labmarker");
        Assert.Equal(truth.Tasks.Single(p => p.Comm == "labmarker" && p.Pid == p.Tid).Pid, marker.Pid);
        Assert.Equal(2, tasks.Count(t => t.Comm.StartsWith("labthr-", StringComparison.Ordinal) && t.Tgid == marker.Pid));
        Assert.Equal(btf is null ? DataModel.LP64 : DataModel.ILP32, kvm.DataModel);
        // The layouts differ: the offsets came from each kernel's BTF, not from the schema.
        var request = new KernelRelocationRequest("task_struct", false, ["comm"]);
        Assert.Equal(btf is null ? 2976UL : 1412UL, kvm.Relocate(request).ByteOffset(0)); // pahole -C task_struct
    }

    [Fact]
    public void A_member_the_kernel_lacks_is_reported_and_fails_when_read_naming_struct_field_and_release()
    {
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(Dumps.NoKaslrElf));
        var request = new KernelRelocationRequest("task_struct", false, ["pid", "no_such_member"],
            [new KernelFieldType(KernelFieldKind.Int, 4, 4, true), new KernelFieldType(KernelFieldKind.Int, 4, 4)]);
        var r = kvm.Relocate(request);
        Assert.True(r.Has(0));
        Assert.False(r.Has(1));
        Assert.False(r.Has("no_such_member"));
        var e = Assert.Throws<KvmException>(() => r.ByteOffset(1));
        Assert.Equal($"this kernel's struct task_struct has no member 'no_such_member' (kernel {kvm.Release})", e.Message);
        Assert.Contains("6.1.0-56-amd64", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_declared_type_the_kernel_disagrees_with_fails_naming_both_types_and_the_release()
    {
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(Dumps.NoKaslrElf));
        var wrongSize = new KernelRelocationRequest("task_struct", false, ["pid"], [new KernelFieldType(KernelFieldKind.Int, 8, 8, true)]);
        var e = Assert.Throws<KvmException>(() => kvm.Relocate(wrongSize));
        Assert.Equal("struct task_struct, member 'pid': declared signed 8-byte int, but kernel 6.1.0-56-amd64 has pid_t pid (signed 4-byte int): the sizes differ", e.Message);
        var notPointer = new KernelRelocationRequest("task_struct", false, ["comm"], [new KernelFieldType(KernelFieldKind.Pointer, 4, 8)]);
        e = Assert.Throws<KvmException>(() => kvm.Relocate(notPointer));
        Assert.Contains("member 'comm': declared pointer, but kernel 6.1.0-56-amd64 has char comm[16] (array[16] of signed 1-byte int): a pointer needs a pointer", e.Message, StringComparison.Ordinal);
        var shortArray = new KernelRelocationRequest("task_struct", false, ["comm"],
            [new KernelFieldType(KernelFieldKind.Array, 0, 0, Length: 8, Element: new KernelFieldType(KernelFieldKind.Int, 1, 1, true))]);
        Assert.Contains("the lengths differ (8 declared, 16 in the kernel)", Assert.Throws<KvmException>(() => kvm.Relocate(shortArray)).Message, StringComparison.Ordinal);
        var union = new KernelRelocationRequest("task_struct", false, ["tasks"], [new KernelFieldType(KernelFieldKind.Union, 0, 0, Name: "list_head")]);
        Assert.Contains("a union needs a union", Assert.Throws<KvmException>(() => kvm.Relocate(union)).Message, StringComparison.Ordinal);
        // What CO-RE allows: another signedness, a flavor suffix, an enum for an int of the same size.
        var allowed = new KernelRelocationRequest("task_struct___mine", false, ["pid", "__state"],
            [new KernelFieldType(KernelFieldKind.Int, 4, 4, false), new KernelFieldType(KernelFieldKind.Enum, 4, 4)]);
        var r = kvm.Relocate(allowed);
        Assert.True(r.Has(0) && r.Has(1));
    }

    [Fact]
    public void An_unknown_struct_fails_naming_it_and_the_release()
    {
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.I386Map), Fixtures.Get(Dumps.I386Kdump), options: new KvmOpenOptions { BtfPath = Fixtures.Get(DumpCase.I386Btf) });
        var e = Assert.Throws<KvmException>(() => kvm.Relocate(new KernelRelocationRequest("no_such_struct", false, ["x"])));
        Assert.StartsWith("struct no_such_struct: kernel 6.1.0-50-686-pae has no struct no_such_struct in its BTF", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Relocations_are_made_once_per_image()
    {
        using var a = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(Dumps.NoKaslrElf));
        using var b = Kvm.Open(Fixtures.Get(Dumps.Amd64Vmlinux), Fixtures.Get(Dumps.NoKaslrElf));
        var ta = task_struct.At(a, a.SymbolAddress("init_task"));
        var tb = task_struct.At(b, b.SymbolAddress("init_task"));
        Assert.Equal(ta.comm, tb.comm);
        var request = new KernelRelocationRequest("task_struct", false, ["comm"]);
        Assert.Same(a.Relocate(request), a.Relocate(request));
        Assert.Same(KernelRelocations.Get(a, request), KernelRelocations.Get(a, request));
        Assert.NotSame(a.Relocate(request), b.Relocate(request));
        Assert.Equal(a.Relocate(request).ByteOffset(0), b.Relocate(request).ByteOffset(0));
        // Views of two images made in turn each get their own image's answer.
        for (int i = 0; i < 3; i++)
        {
            Assert.Same(a.Relocate(request), KernelRelocations.Get(a, request));
            Assert.Same(b.Relocate(request), KernelRelocations.Get(b, request));
        }
    }

    [Fact]
    public void Views_of_an_image_without_btf_fail_saying_where_btf_was_looked_for()
    {
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.I386Map), Fixtures.Get(Dumps.I386Kdump));
        var e = Assert.Throws<KvmException>(() => task_struct.At(kvm, kvm.SymbolAddress("init_task")));
        Assert.Contains("--btf", e.Message, StringComparison.Ordinal);
        Assert.Contains("__start_BTF", e.Message, StringComparison.Ordinal);
    }
}
