using System.Text;
using System.Buffers.Binary;
using KvmTyped.Btf;
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
/// CPUs' idle tasks; task_struct's layout comes from the kernel's BTF.</summary>
public sealed class KernelTasks
{
    /// <summary>The most tasks walked (PID_MAX_LIMIT): a longer list is a damaged or cyclic one.</summary>
    public const int MaxTasks = 4 * 1024 * 1024;

    /// <summary>The most argument bytes read for one process.</summary>
    public const int MaxArgBytes = 2 * 1024 * 1024;

    private readonly Kvm? _kvm;
    private readonly IKernelMemory _memory;
    private readonly Func<string, ulong?> _symbol;
    private readonly int _cpuCount;
    private readonly int _ptr;
    private readonly int _offTasks, _offPid, _offTgid, _offRealParent, _offComm, _commLength, _offState, _stateSize,
        _offExitState, _offMm, _offSignal, _offCpu, _offStack, _offThreadInfoCpu;
    private readonly int _offThreadNode = -1, _offThreadHead = -1, _offThreadGroup = -1;
    private readonly int _offArgStart, _offArgEnd, _offPgd;
    private readonly int _offEnvStart = -1, _offEnvEnd = -1;
    private readonly int _offRqIdle = -1;
    private readonly int _offRqCurr = -1;
    private readonly string _source;

    /// <summary>Reads task_struct's layout from <paramref name="btf"/>.</summary>
    /// <exception cref="KvmException">The BTF lacks a member the walk needs.</exception>
    public KernelTasks(Kvm kvm, KernelBtf btf)
        : this(kvm ?? throw new ArgumentNullException(nameof(kvm)), (btf ?? throw new ArgumentNullException(nameof(btf))).Types, btf.Source,
            name => kvm.TryGetSymbol(name, out var a) ? a : null, kvm.CpuCount, kvm)
    {
    }

    /// <summary>Task access over any kernel memory (tests, other image kinds); <see cref="GetArgs"/> needs a
    /// <paramref name="kvm"/> for the page tables.</summary>
    internal KernelTasks(IKernelMemory memory, BtfTypes t, string source, Func<string, ulong?> symbol, int cpuCount, Kvm? kvm)
    {
        _memory = memory;
        _symbol = symbol;
        _cpuCount = cpuCount;
        _kvm = kvm;
        _ptr = memory.DataModel.PointerSize();
        _source = source;
        var btf = (Source: source, Types: t);
        var task = Composite(t, "task_struct", btf.Source);
        _offTasks = Member(t, task, "tasks", btf.Source).Off;
        _offPid = Member(t, task, "pid", btf.Source).Off;
        _offTgid = Member(t, task, "tgid", btf.Source).Off;
        _offRealParent = Member(t, task, "real_parent", btf.Source).Off;
        (_offComm, _commLength) = Member(t, task, "comm", btf.Source);
        _commLength = Math.Clamp(_commLength, 1, 256);
        var state = t.FindMember(task, "__state") ?? t.FindMember(task, "state")
            ?? throw new KvmException($"{btf.Source}: struct task_struct has neither __state nor state");
        _offState = (int)state.Offset;
        _stateSize = (int)state.Size is 1 or 2 or 4 or 8 ? (int)state.Size : throw new KvmException($"{btf.Source}: task_struct state has size {state.Size}");
        _offExitState = Member(t, task, "exit_state", btf.Source).Off;
        _offMm = Member(t, task, "mm", btf.Source).Off;
        _offSignal = Member(t, task, "signal", btf.Source).Off;
        _offCpu = t.FindMember(task, "cpu") is { } cpu ? (int)cpu.Offset : -1;
        _offStack = -1;
        _offThreadInfoCpu = -1;
        if (_offCpu < 0 && t.TryFindComposite("thread_info", out var ti) && t.FindMember(ti, "cpu") is { } ticpu)
        {
            if (t.FindMember(task, "thread_info") is { } embedded)
                _offCpu = (int)(embedded.Offset + ticpu.Offset);
            else if (t.FindMember(task, "stack") is { } stack)
            {
                _offStack = (int)stack.Offset;
                _offThreadInfoCpu = (int)ticpu.Offset;
            }
        }
        if (t.FindMember(task, "thread_node") is { } node && t.TryFindComposite("signal_struct", out var sig) && t.FindMember(sig, "thread_head") is { } head)
        {
            _offThreadNode = (int)node.Offset;
            _offThreadHead = (int)head.Offset;
        }
        else if (t.FindMember(task, "thread_group") is { } group)
            _offThreadGroup = (int)group.Offset;
        var mm = Composite(t, "mm_struct", btf.Source);
        _offArgStart = Member(t, mm, "arg_start", btf.Source).Off;
        _offArgEnd = Member(t, mm, "arg_end", btf.Source).Off;
        _offPgd = Member(t, mm, "pgd", btf.Source).Off;
        if (t.FindMember(mm, "env_start") is { } envStart && t.FindMember(mm, "env_end") is { } envEnd)
            (_offEnvStart, _offEnvEnd) = ((int)envStart.Offset, (int)envEnd.Offset);
        if (t.TryFindComposite("rq", out var rq) && t.FindMember(rq, "idle") is { } idle)
            _offRqIdle = (int)idle.Offset;
        if (t.TryFindComposite("rq", out var rq2) && t.FindMember(rq2, "curr") is { } curr)
            _offRqCurr = (int)curr.Offset;
    }

    /// <summary>Task access for <paramref name="kvm"/> with its kernel BTF (<see cref="KernelBtf.For"/>).</summary>
    public static KernelTasks For(Kvm kvm, string? btfPath = null) => new(kvm, KernelBtf.For(kvm, btfPath));

    private static int Composite(BtfTypes t, string name, string source) =>
        t.TryFindComposite(name, out var id) ? id : throw new KvmException($"{source}: no struct {name} in the BTF");

    private static (int Off, int Size) Member(BtfTypes t, int id, string name, string source)
    {
        var f = t.FindMember(id, name) ?? throw new KvmException($"{source}: struct {t.NameOf(id)} has no member {name}");
        return ((int)f.Offset, (int)Math.Min(f.Size, int.MaxValue));
    }

    /// <summary>The address of init_task (the boot CPU's idle task, pid 0).</summary>
    public ulong InitTask => _symbol("init_task") ?? throw new KvmException("the namelist has no symbol \"init_task\"");

    private ulong ReadUInt(ulong address, int size)
    {
        Span<byte> b = stackalloc byte[8];
        b.Clear();
        if (!_memory.TryReadVirtual(address, b[..size], out var failure))
            throw new KvmReadException(address, failure);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    private ulong ReadPointer(ulong address) => ReadUInt(address, _ptr);

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
        var init = InitTask;
        CheckInitTask(init);
        foreach (var process in WalkList(init + (ulong)_offTasks, _offTasks, "init_task.tasks"))
        {
            if (!seen.Add(process))
                continue;
            result.Add(Read(process, isIdle: process == init));
            foreach (var thread in Threads(process, walked))
            {
                if (seen.Add(thread))
                    result.Add(Read(thread, isIdle: false));
                if (seen.Count > MaxTasks)
                    throw new KvmException($"more than {MaxTasks} tasks: the task lists are damaged");
            }
        }
        foreach (var idle in OtherIdleTasks(init))
        {
            if (seen.Add(idle))
                result.Add(Read(idle, isIdle: true));
        }
        return result;
    }

    /// <summary>BTF of another kernel (or another build) places task_struct's members elsewhere: init_task then
    /// does not read as the idle task, and the walk would follow garbage. Refuse it with a message that says so.</summary>
    private void CheckInitTask(ulong init)
    {
        KernelTask first;
        try
        {
            first = Read(init, isIdle: true);
        }
        catch (KvmReadException e)
        {
            throw new KvmException($"{_source}: the BTF does not fit this kernel: init_task cannot be read with its layout ({e.Message})", e);
        }
        if (first.Pid != 0 || first.Tgid != 0 || !first.Comm.StartsWith("swapper", StringComparison.Ordinal))
            throw new KvmException($"{_source}: the BTF does not fit this kernel: init_task reads as pid {first.Pid}, comm \"{first.Comm}\", not the idle task swapper");
    }

    /// <summary>Yields init_task itself (as the list head's owner), then each entry of the circular list at
    /// <paramref name="head"/> as the address of the struct holding it, <paramref name="linkOffset"/> before the link.</summary>
    private IEnumerable<ulong> WalkList(ulong head, int linkOffset, string what)
    {
        yield return head - (ulong)linkOffset;
        var visited = new HashSet<ulong> { head };
        var link = ReadPointer(head);
        while (link != head)
        {
            if (link == 0)
                throw new KvmException($"{what}: NULL link after {visited.Count} entries");
            if (!visited.Add(link))
                throw new KvmException($"{what}: the list loops back to 0x{link:x} without reaching its head");
            if (visited.Count > MaxTasks)
                throw new KvmException($"{what}: more than {MaxTasks} entries");
            yield return link - (ulong)linkOffset;
            link = ReadPointer(link);
        }
    }

    /// <summary>The other threads of the process whose leader is <paramref name="leader"/> (signal->thread_head on
    /// kernels with it, else the thread_group ring).</summary>
    public IEnumerable<ulong> Threads(ulong leader) => Threads(leader, []);

    /// <summary>As <see cref="Threads(ulong)"/>, sharing <paramref name="walked"/> (the links of lists walked before):
    /// a list whose head was walked before yields nothing; one that runs into another's links is damaged.</summary>
    private IEnumerable<ulong> Threads(ulong leader, HashSet<ulong> walked)
    {
        if (_offThreadHead >= 0)
        {
            var signal = ReadPointer(leader + (ulong)_offSignal);
            if (signal == 0)
                yield break;
            var head = signal + (ulong)_offThreadHead;
            if (!walked.Add(head))
                yield break; // another process's signal: its threads were listed with that process
            var link = ReadPointer(head);
            while (link != head)
            {
                if (link == 0 || !walked.Add(link) || walked.Count > MaxTasks)
                    throw new KvmException($"task 0x{leader:x}: signal->thread_head list is damaged at 0x{link:x}");
                var thread = link - (ulong)_offThreadNode;
                if (thread != leader)
                    yield return thread;
                link = ReadPointer(link);
            }
        }
        else if (_offThreadGroup >= 0)
        {
            var start = leader + (ulong)_offThreadGroup;
            if (!walked.Add(start))
                yield break; // the leader is on a ring walked before: its threads were listed then
            var link = ReadPointer(start);
            while (link != start)
            {
                if (link == 0 || !walked.Add(link) || walked.Count > MaxTasks)
                    throw new KvmException($"task 0x{leader:x}: thread_group list is damaged at 0x{link:x}");
                yield return link - (ulong)_offThreadGroup;
                link = ReadPointer(link);
            }
        }
    }

    /// <summary>The idle tasks of CPUs 1.. (runqueues.idle per CPU); none when the run queues are not readable.</summary>
    private IEnumerable<ulong> OtherIdleTasks(ulong init)
    {
        foreach (var (cpu, idle) in RunQueueField(_offRqIdle))
        {
            if (cpu > 0 && idle != 0 && idle != init)
                yield return idle;
        }
    }

    /// <summary>The task each CPU was running (its run queue's curr; at a panic, what each CPU had when it
    /// stopped), by CPU; empty when the run queues cannot be read.</summary>
    public IReadOnlyDictionary<int, ulong> RunningTasks()
    {
        var result = new Dictionary<int, ulong>();
        foreach (var (cpu, task) in RunQueueField(_offRqCurr))
        {
            if (task != 0)
                result[cpu] = task;
        }
        return result;
    }

    /// <summary>A pointer field of each possible CPU's struct rq (the per-CPU variable runqueues).</summary>
    private IEnumerable<(int Cpu, ulong Value)> RunQueueField(int offset)
    {
        if (offset < 0 || _symbol("runqueues") is not { } runqueues || _symbol("__per_cpu_offset") is not { } offsets)
            yield break;
        var cpus = 0;
        if (_symbol("nr_cpu_ids") is { } nrCpuIds)
        {
            var b = new byte[4];
            if (_memory.TryReadVirtual(nrCpuIds, b, out _))
                cpus = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(b), 8192u);
        }
        if (cpus == 0)
            cpus = _cpuCount;
        var buffer = new byte[_ptr];
        for (var cpu = 0; cpu < cpus; cpu++)
        {
            if (!_memory.TryReadVirtual(offsets + (ulong)(cpu * _ptr), buffer, out _))
                yield break;
            var perCpu = _ptr == 8 ? BitConverter.ToUInt64(buffer) : BitConverter.ToUInt32(buffer);
            var rq = unchecked(runqueues + perCpu);
            if (!_memory.TryReadVirtual(rq + (ulong)offset, buffer, out _))
                continue;
            yield return (cpu, _ptr == 8 ? BitConverter.ToUInt64(buffer) : BitConverter.ToUInt32(buffer));
        }
    }

    /// <summary>Reads one task_struct.</summary>
    /// <exception cref="KvmReadException">Its memory cannot be read.</exception>
    public KernelTask Read(ulong task, bool isIdle = false)
    {
        var pid = (int)ReadUInt(task + (ulong)_offPid, 4);
        var tgid = (int)ReadUInt(task + (ulong)_offTgid, 4);
        var parent = ReadPointer(task + (ulong)_offRealParent);
        var ppid = parent == 0 ? 0 : (int)ReadUInt(parent + (ulong)_offTgid, 4);
        var state = ReadUInt(task + (ulong)_offState, _stateSize);
        var exitState = ReadUInt(task + (ulong)_offExitState, 4);
        Span<byte> comm = stackalloc byte[_commLength];
        if (!_memory.TryReadVirtual(task + (ulong)_offComm, comm, out var failure))
            throw new KvmReadException(task + (ulong)_offComm, failure);
        var nul = comm.IndexOf((byte)0);
        var name = Encoding.UTF8.GetString(nul >= 0 ? comm[..nul] : comm);
        var cpu = -1;
        if (_offCpu >= 0)
            cpu = (int)ReadUInt(task + (ulong)_offCpu, 4);
        else if (_offStack >= 0 && ReadPointer(task + (ulong)_offStack) is var stack and not 0)
            cpu = (int)ReadUInt(stack + (ulong)_offThreadInfoCpu, 4);
        var mm = ReadPointer(task + (ulong)_offMm);
        return new KernelTask(task, pid, tgid, ppid, StateLetter(state, exitState), name, cpu, mm, state, exitState, isIdle || pid == 0);
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
        var kvm = _kvm ?? throw new KvmException("reading a process's memory needs an opened image");
        var layout = kvm.Layout ?? throw new KvmException("the image's paging layout is unknown: cannot read a process's memory");
        var start = ReadPointer(task.Mm + (ulong)_offArgStart);
        var end = ReadPointer(task.Mm + (ulong)_offArgEnd);
        if (end < start || end - start > MaxArgBytes)
            throw new KvmException($"pid {task.Pid}: mm->arg_start 0x{start:x} .. arg_end 0x{end:x} is not a plausible argument area");
        var pgd = ReadPointer(task.Mm + (ulong)_offPgd);
        if (!kvm.TryTranslate(pgd, out var pgdPhysical, out var why))
            throw new KvmReadException(pgd, $"pid {task.Pid}: mm->pgd 0x{pgd:x}: {why}");
        var space = layout.CreateProcessAddressSpace(pgdPhysical);
        var bytes = new byte[end - start];
        if (!UserMemory.TryRead(kvm, space, start, bytes, out var done, out why))
            throw new KvmReadException(start + (ulong)done, $"pid {task.Pid} arguments: {why}");
        // A process's argument area always holds argv[0]'s text; all zeros is what a dump reads for pages it
        // left out without saying so (an ELF vmcore from makedumpfile -d fills them with zeros).
        if (bytes.Length > 1 && !bytes.AsSpan().ContainsAnyExcept((byte)0))
            throw new KvmReadException(start, $"pid {task.Pid} arguments at 0x{start:x}: the {bytes.Length} bytes read as zeros (page excluded from the dump?)");
        var text = bytes.AsSpan();
        if (!text.IsEmpty && text[^1] == 0)
            text = text[..^1];
        var args = new List<string>();
        foreach (var range in text.Split((byte)0))
            args.Add(Encoding.UTF8.GetString(text[range]));
        return args;
    }

    /// <summary>The process's environment (its NAME=value strings), read from mm->env_start..env_end through the
    /// process's own page tables, bounded by <see cref="MaxArgBytes"/> like the arguments.</summary>
    /// <exception cref="KvmException">The task has no mm (a kernel thread or an exited task), or the kernel's BTF has
    /// no mm_struct.env_start.</exception>
    /// <exception cref="KvmReadException">A page of the environment is not present, was excluded from the dump, or is
    /// swapped out and cannot be read from the swapfile.</exception>
    public IReadOnlyList<string> GetEnv(KernelTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (_offEnvStart < 0)
            throw new KvmException($"{_source}: struct mm_struct has no member env_start");
        return ReadUserStrings(task, _offEnvStart, _offEnvEnd, "environment");
    }

    /// <summary>The user address space of <paramref name="task"/>: its mm->pgd as the root of the process's page tables.</summary>
    /// <exception cref="KvmException">The task has no mm, or the image's paging layout is unknown.</exception>
    /// <exception cref="KvmReadException">mm->pgd cannot be read or translated.</exception>
    internal Translation.IAddressSpace GetAddressSpace(KernelTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (task.Mm == 0)
            throw new KvmException($"pid {task.Pid} ({task.Comm}) has no mm: a kernel thread or an exited task has no user address space");
        var kvm = _kvm ?? throw new KvmException("reading a process's memory needs an opened image");
        var layout = kvm.Layout ?? throw new KvmException("the image's paging layout is unknown: cannot read a process's memory");
        var pgd = ReadPointer(task.Mm + (ulong)_offPgd);
        if (!kvm.TryTranslate(pgd, out var pgdPhysical, out var why))
            throw new KvmReadException(pgd, $"pid {task.Pid}: mm->pgd 0x{pgd:x}: {why}");
        return layout.CreateProcessAddressSpace(pgdPhysical);
    }

    /// <summary>NUL-separated strings of a process's memory between the mm_struct pointers at
    /// <paramref name="startOffset"/> and <paramref name="endOffset"/>.</summary>
    private List<string> ReadUserStrings(KernelTask task, int startOffset, int endOffset, string what)
    {
        if (task.Mm == 0)
            throw new KvmException($"pid {task.Pid} ({task.Comm}) has no mm: a kernel thread or an exited task has no {what}");
        var kvm = _kvm ?? throw new KvmException("reading a process's memory needs an opened image");
        var start = ReadPointer(task.Mm + (ulong)startOffset);
        var end = ReadPointer(task.Mm + (ulong)endOffset);
        if (end < start || end - start > MaxArgBytes)
            throw new KvmException($"pid {task.Pid}: the {what} area 0x{start:x} .. 0x{end:x} is not plausible");
        var space = GetAddressSpace(task);
        var bytes = new byte[end - start];
        if (!UserMemory.TryRead(kvm, space, start, bytes, out var done, out var why))
            throw new KvmReadException(start + (ulong)done, $"pid {task.Pid} {what}: {why}");
        // As for the arguments: an area of only zeros is a page the dump left out without saying so.
        if (bytes.Length > 1 && !bytes.AsSpan().ContainsAnyExcept((byte)0))
            throw new KvmReadException(start, $"pid {task.Pid} {what} at 0x{start:x}: the {bytes.Length} bytes read as zeros (page excluded from the dump?)");
        var text = bytes.AsSpan();
        if (!text.IsEmpty && text[^1] == 0)
            text = text[..^1];
        var result = new List<string>();
        if (text.IsEmpty)
            return result;
        foreach (var range in text.Split((byte)0))
            result.Add(Encoding.UTF8.GetString(text[range]));
        return result;
    }
}
