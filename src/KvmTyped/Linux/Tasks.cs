using KvmTyped.Linux.Kernel;
using KvmTyped.Types;

namespace KvmTyped.Linux;

/// <summary>One kernel task (a thread; a process is its thread-group leader), as read from its task_struct.</summary>
/// <param name="Address">The task_struct's kernel virtual address.</param>
/// <param name="Pid">The kernel pid: the thread id.</param>
/// <param name="Tgid">The thread-group id: the process id.</param>
/// <param name="Ppid">The real parent's thread-group id (0 for tasks whose parent is the idle task).</param>
/// <param name="State">The state letter as /proc and ps print it (R S D T t X Z P I).</param>
/// <param name="Comm">task->comm (at most 15 characters).</param>
/// <param name="Cpu">The CPU the task last ran on, or -1 when the kernel does not record it where it can be read.</param>
/// <param name="Mm">task->mm (0 for kernel threads and exited tasks).</param>
/// <param name="RawState">task->__state (task->state on older kernels).</param>
/// <param name="ExitState">task->exit_state.</param>
/// <param name="IsIdle">An idle (swapper) task: init_task or another CPU's idle task.</param>
public sealed record KernelTask(ulong Address, int Pid, int Tgid, int Ppid, char State, string Comm, int Cpu, ulong Mm,
    ulong RawState, ulong ExitState, bool IsIdle);

/// <summary>Reads the kernel's tasks: the process list from init_task.tasks, each process's threads, and the other
/// CPUs' idle tasks — through the views of schemas/linux/sched.h, relocated against the kernel's types.</summary>
/// <remarks>Kernel variants are told apart as BPF CO-RE programs do: by whether this kernel's struct has a member the
/// schema declares optional (the <c>signal-&gt;thread_head</c> list of 6.6+ or the older <c>thread_group</c> ring;
/// <c>thread_info.cpu</c>; each view's <c>Has_</c> property), and
/// by flavors (libbpf's <c>___</c> suffix) for members that moved or changed type: <c>task_struct___pre_5_14.state</c>
/// before <c>__state</c>, <c>task_struct___pre_5_16.cpu</c> before <c>thread_info.cpu</c>.</remarks>
public sealed class KernelTasks
{
    /// <summary>The most tasks walked (PID_MAX_LIMIT): a longer list is a damaged or cyclic one.</summary>
    public const int MaxTasks = 4 * 1024 * 1024;

    /// <summary>The most argument bytes read for one process.</summary>
    public const int MaxArgBytes = 2 * 1024 * 1024;

    private readonly IKernelMemory _memory;
    private readonly Func<string, ulong?> _symbol;
    private readonly int _cpuCount;
    private readonly Kvm? _kvm;
    private readonly Func<string> _typeSource;
    private readonly bool _stateIsNew, _cpuInTask, _cpuInThreadInfo, _cpuViaStack, _threadHead;

    /// <summary>Task access for an opened image; task_struct's layout comes from its types (<see cref="Kvm.Relocate(KernelRelocationRequest)"/>).</summary>
    /// <exception cref="KvmException">The kernel's types lack task_struct or a member the walk needs.</exception>
    public KernelTasks(Kvm kvm)
        : this(kvm ?? throw new ArgumentNullException(nameof(kvm)), name => kvm.TryGetSymbol(name, out var a) ? a : null, kvm.CpuCount, kvm,
            () => kvm.TryGetBtf(out var btf, out _) ? btf.Source : "the kernel's types")
    {
    }

    /// <summary>Task access over any kernel memory that places relocated structs (tests, other image kinds);
    /// reading a process's memory needs a <paramref name="kvm"/> for the page tables.</summary>
    internal KernelTasks(IKernelMemory memory, Func<string, ulong?> symbol, int cpuCount, Kvm? kvm, Func<string> typeSource)
    {
        _memory = memory;
        _symbol = symbol;
        _cpuCount = cpuCount;
        _kvm = kvm;
        _typeSource = typeSource;
        // A view at 0 reads nothing: it only places the struct's members in this kernel.
        var task = task_struct.At(memory, 0);
        _stateIsNew = task.Has___state;
        if (!_stateIsNew && !task_struct___pre_5_14.At(memory, 0).Has_state)
            throw new KvmException($"{typeSource()}: struct task_struct has neither __state nor state");
        _cpuInTask = task_struct___pre_5_16.At(memory, 0).Has_cpu;
        var threadInfoCpu = !_cpuInTask && thread_info.At(memory, 0).Has_cpu;
        _cpuInThreadInfo = threadInfoCpu && task.Has_thread_info;
        _cpuViaStack = threadInfoCpu && !_cpuInThreadInfo && task.HasMember("stack");
        _threadHead = task.Has_thread_node && signal_struct.At(memory, 0).Has_thread_head;
        if (!_threadHead && !task.Has_thread_group)
            throw new KvmException($"{typeSource()}: struct task_struct has neither thread_node (with signal_struct.thread_head) nor thread_group");
    }

    /// <summary>Task access for <paramref name="kvm"/>.</summary>
    public static KernelTasks For(Kvm kvm) => new(kvm);

    /// <summary>The address of init_task (the boot CPU's idle task, pid 0).</summary>
    public ulong InitTask => _symbol("init_task") ?? throw new KvmException("the namelist has no symbol \"init_task\"");

    /// <summary>Every task: init_task, each process on init_task.tasks followed by its other threads, then the other
    /// CPUs' idle tasks when the kernel's run queues can be read.</summary>
    /// <exception cref="KvmException">A list is cyclic or longer than <see cref="MaxTasks"/>, or memory cannot be read.</exception>
    public IReadOnlyList<KernelTask> List()
    {
        var result = new List<KernelTask>();
        var seen = new HashSet<ulong>();
        // Every thread-list link walked so far, over all processes: each list is walked once, so processes whose
        // signal (or thread ring) leads into a list already walked cannot make the walk quadratic.
        var walked = new HashSet<ulong>();
        var init = task_struct.At(_memory, InitTask);
        CheckInitTask(init);
        foreach (var process in Walk(init.tasks, "init_task.tasks").Select(l => l.ContainerOf<task_struct>(t => t.tasks)).Prepend(init))
        {
            if (!seen.Add(process.Address))
                continue;
            result.Add(Read(process, isIdle: process.Address == init.Address));
            foreach (var thread in Threads(process, walked))
            {
                if (seen.Add(thread.Address))
                    result.Add(Read(thread, isIdle: false));
                if (seen.Count > MaxTasks)
                    throw new KvmException($"more than {MaxTasks} tasks: the task lists are damaged");
            }
        }
        foreach (var idle in OtherIdleTasks(init.Address))
        {
            if (seen.Add(idle))
                result.Add(Read(idle, isIdle: true));
        }
        return result;
    }

    /// <summary>Types of another kernel (or another build) place task_struct's members elsewhere: init_task then does
    /// not read as the idle task, and the walk would follow garbage. Refuse them with a message that says so.</summary>
    private void CheckInitTask(task_struct init)
    {
        KernelTask first;
        try
        {
            first = Read(init, isIdle: true);
        }
        catch (KvmReadException e)
        {
            throw new KvmException($"{_typeSource()}: the BTF does not fit this kernel: init_task cannot be read with its layout ({e.Message})", e);
        }
        if (first.Pid != 0 || first.Tgid != 0 || !first.Comm.StartsWith("swapper", StringComparison.Ordinal))
            throw new KvmException($"{_typeSource()}: the BTF does not fit this kernel: init_task reads as pid {first.Pid}, comm \"{first.Comm}\", not the idle task swapper");
    }

    /// <summary>The nodes of the circular list whose head is <paramref name="head"/>, in order, the head left out.</summary>
    private static IEnumerable<list_head> Walk(list_head head, string what)
    {
        var visited = new HashSet<ulong> { head.Address };
        var link = head.next;
        while (link.Address != head.Address)
        {
            if (link.IsNull)
                throw new KvmException($"{what}: NULL link after {visited.Count} entries");
            if (!visited.Add(link.Address))
                throw new KvmException($"{what}: the list loops back to 0x{link.Address:x} without reaching its head");
            if (visited.Count > MaxTasks)
                throw new KvmException($"{what}: more than {MaxTasks} entries");
            var node = link.Value;
            yield return node;
            link = node.next;
        }
    }

    /// <summary>The other threads of the process whose leader is at <paramref name="leader"/> (signal->thread_head on
    /// kernels with it, else the thread_group ring).</summary>
    public IEnumerable<ulong> Threads(ulong leader) => Threads(task_struct.At(_memory, leader), []).Select(t => t.Address);

    /// <summary>As <see cref="Threads(ulong)"/>, sharing <paramref name="walked"/> (the links of lists walked before):
    /// a list whose head was walked before yields nothing; one that runs into another's links is damaged.</summary>
    private IEnumerable<task_struct> Threads(task_struct leader, HashSet<ulong> walked)
    {
        list_head start;
        if (_threadHead)
        {
            var signal = leader.signal;
            if (signal.IsNull)
                yield break;
            start = signal.Value.thread_head;
        }
        else
        {
            start = leader.thread_group;
        }
        if (!walked.Add(start.Address))
            yield break; // another process's list (or ring): its threads were listed with that process
        var what = _threadHead ? "signal->thread_head list" : "thread_group list";
        var link = start.next;
        while (link.Address != start.Address)
        {
            if (link.IsNull || !walked.Add(link.Address) || walked.Count > MaxTasks)
                throw new KvmException($"task 0x{leader.Address:x}: {what} is damaged at 0x{link.Address:x}");
            var node = link.Value;
            var thread = _threadHead ? node.ContainerOf<task_struct>(t => t.thread_node) : node.ContainerOf<task_struct>(t => t.thread_group);
            if (thread.Address != leader.Address)
                yield return thread;
            link = node.next;
        }
    }

    /// <summary>The idle tasks of CPUs 1.. (runqueues.idle per CPU); none when the run queues are not readable.</summary>
    private IEnumerable<ulong> OtherIdleTasks(ulong init)
    {
        foreach (var (cpu, rq) in RunQueues(r => r.HasMember("idle")))
        {
            if (cpu > 0 && TryPointer(() => rq.idle.Address) is { } idle && idle != 0 && idle != init)
                yield return idle;
        }
    }

    /// <summary>The task each CPU was running (its run queue's curr; at a panic, what each CPU had when it
    /// stopped), by CPU; empty when the run queues cannot be read.</summary>
    public IReadOnlyDictionary<int, ulong> RunningTasks()
    {
        var result = new Dictionary<int, ulong>();
        foreach (var (cpu, rq) in RunQueues(r => r.HasMember("curr")))
        {
            if (TryPointer(() => rq.curr.Address) is { } task && task != 0)
                result[cpu] = task;
        }
        return result;
    }

    private static ulong? TryPointer(Func<ulong> read)
    {
        try
        {
            return read();
        }
        catch (KvmReadException)
        {
            return null;
        }
    }

    /// <summary>Each possible CPU's struct rq (the per-CPU variable runqueues), when the kernel's has the member asked for.</summary>
    private IEnumerable<(int Cpu, rq Rq)> RunQueues(Func<rq, bool> has)
    {
        if (_symbol("runqueues") is not { } runqueues || !TryRq(out var probe) || !has(probe))
            yield break;
        var cpus = PerCpu.PossibleCpus(_memory, _symbol, _cpuCount);
        for (var cpu = 0; cpu < cpus; cpu++)
        {
            if (!PerCpu.TryAddress(_memory, _symbol, runqueues, cpu, out var address))
                yield break;
            yield return (cpu, rq.At(_memory, address));
        }
    }

    /// <summary>A view at 0 that places struct rq's members; false when the kernel's types lack struct rq.</summary>
    private bool TryRq(out rq probe)
    {
        try
        {
            probe = rq.At(_memory, 0);
            return true;
        }
        catch (KvmException)
        {
            probe = default;
            return false;
        }
    }

    /// <summary>Reads one task_struct.</summary>
    /// <exception cref="KvmReadException">Its memory cannot be read.</exception>
    public KernelTask Read(ulong task, bool isIdle = false) => Read(task_struct.At(_memory, task), isIdle);

    private KernelTask Read(task_struct t, bool isIdle)
    {
        var pid = t.pid;
        var tgid = t.tgid;
        var parent = t.real_parent;
        var ppid = parent.IsNull ? 0 : parent.Value.tgid;
        var state = _stateIsNew ? t.__state : unchecked((ulong)task_struct___pre_5_14.At(_memory, t.Address).state);
        var exitState = (ulong)(uint)t.exit_state;
        var comm = t.comm;
        var cpu = -1;
        if (_cpuInTask)
            cpu = (int)task_struct___pre_5_16.At(_memory, t.Address).cpu;
        else if (_cpuInThreadInfo)
            cpu = (int)t.thread_info.cpu;
        else if (_cpuViaStack && t.stack is var stack and not 0)
            cpu = (int)thread_info.At(_memory, stack).cpu;
        var mm = t.mm.Address;
        return new KernelTask(t.Address, pid, tgid, ppid, StateLetter(state, exitState), comm, cpu, mm, state, exitState, isIdle || pid == 0);
    }

    /// <summary>The state letter /proc/PID/stat prints for a task's state and exit_state (fs/proc/array.c's
    /// mapping: the highest reportable bit, TASK_IDLE as I, an rt-lock wait or a frozen task as D).</summary>
    public static char StateLetter(ulong state, ulong exitState)
    {
        const ulong TaskReport = 0x7f; // running .. parked: interruptible, uninterruptible, stopped, traced, dead, zombie, parked
        const ulong TaskIdle = 0x402; // TASK_UNINTERRUPTIBLE | TASK_NOLOAD
        const ulong TaskRtLockWait = 0x1000;
        const ulong TaskFrozen = 0x8000;
        const ulong TaskReportIdle = TaskReport + 1;
        var report = (state | exitState) & TaskReport;
        // As the kernel's __task_state_index(): TASK_IDLE with other bits (TASK_FREEZABLE) is still I; an rt-lock
        // wait or a frozen task shows as D, even when idle.
        if ((state & TaskIdle) == TaskIdle)
            report = TaskReportIdle;
        if ((state & (TaskRtLockWait | TaskFrozen)) != 0)
            report = 0x2;
        return "RSDTtXZPI"[report == 0 ? 0 : 64 - System.Numerics.BitOperations.LeadingZeroCount(report)];
    }

    /// <summary>The process's arguments (argv, without the trailing NUL), read from mm->arg_start..arg_end through
    /// the process's own page tables.</summary>
    /// <exception cref="KvmException">The task has no mm (a kernel thread or an exited task).</exception>
    /// <exception cref="KvmReadException">A page of the arguments is not present, was excluded from the dump, or is
    /// swapped out and cannot be read from the swapfile.</exception>
    public IReadOnlyList<string> GetArgs(KernelTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (task.Mm == 0)
            throw new KvmException($"pid {task.Pid} ({task.Comm}) has no mm: a kernel thread or an exited task has no arguments");
        var mm = mm_struct.At(_memory, task.Mm);
        var (start, end) = (mm.arg_start, mm.arg_end);
        if (end < start || end - start > MaxArgBytes)
            throw new KvmException($"pid {task.Pid}: mm->arg_start 0x{start:x} .. arg_end 0x{end:x} is not a plausible argument area");
        return ReadUserStrings(task, start, end, "arguments", keepEmpty: true);
    }

    /// <summary>The process's environment (its NAME=value strings), read from mm->env_start..env_end through the
    /// process's own page tables, bounded by <see cref="MaxArgBytes"/> like the arguments.</summary>
    /// <exception cref="KvmException">The task has no mm (a kernel thread or an exited task), or the kernel's
    /// mm_struct has no env_start.</exception>
    /// <exception cref="KvmReadException">A page of the environment is not present, was excluded from the dump, or is
    /// swapped out and cannot be read from the swapfile.</exception>
    public IReadOnlyList<string> GetEnv(KernelTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (!mm_struct.At(_memory, 0).HasMember("env_start"))
            throw new KvmException($"{_typeSource()}: struct mm_struct has no member env_start");
        if (task.Mm == 0)
            throw new KvmException($"pid {task.Pid} ({task.Comm}) has no mm: a kernel thread or an exited task has no environment");
        var mm = mm_struct.At(_memory, task.Mm);
        var (start, end) = (mm.env_start, mm.env_end);
        if (end < start || end - start > MaxArgBytes)
            throw new KvmException($"pid {task.Pid}: the environment area 0x{start:x} .. 0x{end:x} is not plausible");
        return ReadUserStrings(task, start, end, "environment", keepEmpty: false);
    }

    /// <summary>The user memory of <paramref name="task"/>, read (and, on an image opened O_RDWR, written) through its
    /// own page tables: mm->pgd is the root.</summary>
    /// <exception cref="KvmException">The task has no mm, or the image's paging layout is unknown.</exception>
    /// <exception cref="KvmReadException">mm->pgd cannot be read or translated.</exception>
    public ProcessMemory GetMemory(KernelTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (task.Mm == 0)
            throw new KvmException($"pid {task.Pid} ({task.Comm}) has no mm: a kernel thread or an exited task has no user address space");
        var kvm = _kvm ?? throw new KvmException("reading a process's memory needs an opened image");
        var pgd = mm_struct.At(_memory, task.Mm).pgd;
        return ProcessMemory.Create(kvm, task, pgd);
    }

    /// <summary>NUL-separated strings of a process's memory in [<paramref name="start"/>, <paramref name="end"/>).</summary>
    private List<string> ReadUserStrings(KernelTask task, ulong start, ulong end, string what, bool keepEmpty)
    {
        var memory = GetMemory(task);
        var bytes = new byte[end - start];
        if (!memory.TryRead(start, bytes, out var done, out var why))
            throw new KvmReadException(start + (ulong)done, $"pid {task.Pid} {what}: {why}");
        // A process's argument area always holds argv[0]'s text; all zeros is what a dump reads for pages it left out
        // without saying so (an ELF vmcore from makedumpfile -d fills them with zeros).
        if (bytes.Length > 1 && !bytes.AsSpan().ContainsAnyExcept((byte)0))
            throw new KvmReadException(start, $"pid {task.Pid} {what} at 0x{start:x}: the {bytes.Length} bytes read as zeros (page excluded from the dump?)");
        var text = bytes.AsSpan();
        if (!text.IsEmpty && text[^1] == 0)
            text = text[..^1];
        var result = new List<string>();
        if (text.IsEmpty && !keepEmpty)
            return result;
        foreach (var range in text.Split((byte)0))
            result.Add(System.Text.Encoding.UTF8.GetString(text[range]));
        return result;
    }
}
