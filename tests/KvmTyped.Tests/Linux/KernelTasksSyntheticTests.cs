using KvmTyped.Btf;
using KvmTyped.Linux;
using KvmTyped.Types;
using KvmTyped.Tests.Btf;

namespace KvmTyped.Tests.Linux;

public class KernelTasksSyntheticTests
{
    private const ulong Init = 0x1000, A = 0x2000, B = 0x3000, Thread = 0x4000, SignalA = 0x5000, SignalB = 0x5100;

    /// <summary>A small 64-bit kernel's types: list_head, task_struct (with signal->thread_head threads),
    /// mm_struct and signal_struct, at chosen offsets.</summary>
    private static BtfTypes Types(bool withExitState = true)
    {
        var b = new BtfBuilder();
        var u32 = b.Int("unsigned int", 4);
        var u64 = b.Int("long unsigned int", 8);
        var ch = b.Int("char", 1, encoding: 2);
        var listHead = b.Struct("list_head", 16, ("next", 5, 0, 0), ("prev", 5, 64, 0));
        b.Ptr(listHead); // 5
        b.Ptr(7); // 6: struct task_struct *
        var members = new List<(string, int, uint, int)>
        {
            ("tasks", listHead, 0, 0), ("pid", u32, 128, 0), ("tgid", u32, 160, 0), ("real_parent", 6, 192, 0),
            ("comm", 8, 256, 0), ("__state", u32, 384, 0), ("mm", 10, 448, 0), ("signal", 12, 512, 0),
            ("thread_node", listHead, 576, 0), ("cpu", u32, 704, 0),
        };
        if (withExitState)
            members.Add(("exit_state", u32, 416, 0));
        b.Struct("task_struct", 128, [.. members]); // 7
        b.Array(ch, u32, 16); // 8
        b.Struct("mm_struct", 24, ("arg_start", u64, 0, 0), ("arg_end", u64, 64, 0), ("pgd", 13, 128, 0)); // 9
        b.Ptr(9); // 10
        b.Struct("signal_struct", 16, ("thread_head", listHead, 0, 0)); // 11
        b.Ptr(11); // 12
        b.Ptr(u64); // 13: pgd_t *
        return BtfTypes.Parse(b.Build(), sourceName: "test BTF", pointerSize: 8);
    }

    private static void Task(FlatKernelMemory m, ulong at, uint pid, uint tgid, ulong parent, string comm, uint state, uint exitState, ulong signal, uint cpu)
    {
        m.U32(at + 16, pid);
        m.U32(at + 20, tgid);
        m.U64(at + 24, parent);
        m.Text(at + 32, comm);
        m.U32(at + 48, state);
        m.U32(at + 52, exitState);
        m.U64(at + 64, signal);
        m.U32(at + 88, cpu);
    }

    private static void Link(FlatKernelMemory m, params ulong[] ring)
    {
        for (var i = 0; i < ring.Length; i++)
            m.U64(ring[i], ring[(i + 1) % ring.Length]);
    }

    private static FlatKernelMemory Memory()
    {
        var m = new FlatKernelMemory(DataModel.LP64, 0x1000, 0x10000);
        Task(m, Init, 0, 0, Init, "swapper/0", 0, 0, 0, 0);
        Task(m, A, 1, 1, Init, "init", 1, 0, SignalA, 1);
        Task(m, Thread, 3, 1, Init, "worker-thread-long", 0x402, 0, SignalA, 0);
        Task(m, B, 2, 2, A, "child", 0, 0x20, SignalB, 1);
        Link(m, Init, A, B); // init_task.tasks
        Link(m, SignalA, A + 72, Thread + 72); // A's threads: the leader and one more
        Link(m, SignalB, B + 72);
        return m;
    }

    private static KernelTasks Tasks(FlatKernelMemory m, BtfTypes? types = null) =>
        new(new ViewMemory(m, new BtfRelocator(types ?? Types(), DataModel.LP64, "test kernel")), name => name == "init_task" ? Init : null, 1, null, () => "test BTF");

    [Fact]
    public void Processes_come_with_their_threads_and_proc_s_fields()
    {
        var list = Tasks(Memory()).List();
        Assert.Equal(
            [
                new KernelTask(Init, 0, 0, 0, 'R', "swapper/0", 0, 0, 0, 0, true),
                new KernelTask(A, 1, 1, 0, 'S', "init", 1, 0, 1, 0, false),
                new KernelTask(Thread, 3, 1, 0, 'I', "worker-thread-lo", 0, 0, 0x402, 0, false),
                new KernelTask(B, 2, 2, 1, 'Z', "child", 1, 0, 0, 0x20, false),
            ],
            list);
    }

    [Fact]
    public void A_task_list_that_loops_without_its_head_is_refused()
    {
        var m = Memory();
        m.U64(B, A); // B -> A -> B -> ...
        var e = Assert.Throws<KvmException>(() => Tasks(m).List());
        Assert.Contains("init_task.tasks: the list loops back to 0x2000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_null_or_unreadable_link_is_an_error_not_a_hang()
    {
        var m = Memory();
        m.U64(B, 0);
        Assert.Contains("NULL link", Assert.Throws<KvmException>(() => Tasks(m).List()).Message, StringComparison.Ordinal);
        m.U64(B, 0xdead_0000);
        Assert.Equal(0xdead_0000UL + 16, Assert.Throws<KvmReadException>(() => Tasks(m).List()).Address); // its pid, the first field read
        m = Memory();
        m.U64(Thread + 72, A + 72); // the thread ring loops without its head
        Assert.Contains("thread_head list is damaged", Assert.Throws<KvmException>(() => Tasks(m).List()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Processes_sharing_one_thread_list_walk_it_once()
    {
        // 200 processes whose signal all point at one signal_struct with 200 threads: walking the list again for
        // each process would read 40,000 links.
        const int Processes = 200, Threads = 200;
        const ulong Shared = 0x8000, ProcessBase = 0x10000, ThreadBase = 0x20000;
        var m = new FlatKernelMemory(DataModel.LP64, 0x1000, 0x40000);
        Task(m, Init, 0, 0, Init, "swapper/0", 0, 0, 0, 0);
        var processes = Enumerable.Range(0, Processes).Select(i => ProcessBase + (ulong)i * 0x80).ToArray();
        var threads = Enumerable.Range(0, Threads).Select(i => ThreadBase + (ulong)i * 0x80).ToArray();
        for (var i = 0; i < Processes; i++)
            Task(m, processes[i], (uint)(100 + i), (uint)(100 + i), Init, "p", 1, 0, Shared, 0);
        for (var i = 0; i < Threads; i++)
            Task(m, threads[i], (uint)(1000 + i), 100, Init, "t", 1, 0, Shared, 0);
        Link(m, [Init, .. processes]);
        Link(m, [Shared, .. threads.Select(t => t + 72)]);
        var list = Tasks(m).List();
        Assert.Equal([Init, processes[0], .. threads, .. processes[1..]], list.Select(t => t.Address));
        Assert.True(m.Reads < 15 * (Processes + Threads), $"{m.Reads} reads for {Processes + Threads + 1} tasks");
    }

    [Fact]
    public void A_thread_list_running_into_one_walked_before_is_damaged()
    {
        var m = Memory();
        m.U64(SignalB, Thread + 72); // B's list leads into A's, which never returns to B's head
        Assert.Contains("task 0x3000: signal->thread_head list is damaged at 0x4048", Assert.Throws<KvmException>(() => Tasks(m).List()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Btf_that_does_not_fit_the_kernel_is_refused_before_the_walk()
    {
        var m = Memory();
        m.Text(Init + 32, "garbage\0");
        var e = Assert.Throws<KvmException>(() => Tasks(m).List());
        Assert.Equal("test BTF: the BTF does not fit this kernel: init_task reads as pid 0, comm \"garbage\", not the idle task swapper", e.Message);
        m = Memory();
        m.U64(Init + 24, 0xbad_0000); // real_parent
        Assert.Contains("init_task cannot be read with its layout", Assert.Throws<KvmException>(() => Tasks(m).List()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Btf_without_a_needed_member_is_named()
    {
        var e = Assert.Throws<KvmException>(() => Tasks(Memory(), Types(withExitState: false)).List());
        Assert.Equal("this kernel's struct task_struct has no member 'exit_state' (test kernel)", e.Message);
    }

    [Fact]
    public void Args_need_an_opened_image_and_an_mm()
    {
        var kt = Tasks(Memory());
        var task = kt.Read(A);
        Assert.Contains("no mm", Assert.Throws<KvmException>(() => kt.GetArgs(task)).Message, StringComparison.Ordinal);
        Assert.Contains("opened image", Assert.Throws<KvmException>(() => kt.GetArgs(task with { Mm = 0x6000 })).Message, StringComparison.Ordinal);
    }
}
