using KvmTyped.Linux;

namespace KvmTyped.Compat;

#pragma warning disable CS8981 // the C names are the point of this facade
/// <summary>A process as kvm_nextproc(3KVM) and kvm_getproc return it (C's struct proc): one per thread-group
/// leader, as /proc lists processes.</summary>
public sealed class proc
{
    internal proc(KernelTask task) => Task = task;

    /// <summary>The kernel's view of the process's leader task, for code that moves to the idiomatic API.</summary>
    public KernelTask Task { get; }

    /// <summary>The process id (the leader's tgid).</summary>
    public int p_pid => Task.Tgid;

    /// <summary>The parent's process id.</summary>
    public int p_ppid => Task.Ppid;

    /// <summary>The state letter as /proc and ps print it (R S D T t X Z P I).</summary>
    public char p_stat => Task.State;

    /// <summary>task->comm: the command name (at most 15 characters).</summary>
    public string p_comm => Task.Comm;

    /// <summary>The kernel virtual address of the leader's task_struct.</summary>
    public ulong p_addr => Task.Address;

    /// <summary>task->mm: the address of the process's mm_struct (0 for kernel threads and zombies).</summary>
    public ulong p_mm => Task.Mm;

    /// <summary>The CPU the leader last ran on, or -1.</summary>
    public int p_cpu => Task.Cpu;

    /// <inheritdoc />
    public override string ToString() => $"{p_pid} {p_ppid} {p_stat} {p_comm}";
}

/// <summary>What kvm_getu(3KVM) returns (C's struct user). Linux keeps no u-area: the command name comes from the
/// task and the arguments from the process's memory.</summary>
public sealed class user
{
    /// <summary>PSARGSZ: the size of u_psargs in C, its terminating NUL included.</summary>
    public const int PSARGSZ = 80;

    internal user(proc p, string psargs)
    {
        Proc = p;
        u_psargs = psargs;
    }

    internal proc Proc { get; }

    /// <summary>The command name (task->comm).</summary>
    public string u_comm => Proc.p_comm;

    /// <summary>The arguments joined by spaces, at most PSARGSZ - 1 characters; empty for a kernel thread or
    /// zombie, or when the argument pages are not in the image (kvm_getcmd then says why).</summary>
    public string u_psargs { get; }
}
#pragma warning restore CS8981

/// <summary>Per-handle process state: the list kvm_nextproc walks, its cursor, and kvm_getu's current process.</summary>
internal sealed class ProcState
{
    public KernelTasks? Tasks;
    public List<proc>? List;
    public int Cursor;
    public proc? Current;
    public ProcessMemory? CurrentSpace;
    public string? CurrentSpaceFailure;

    public void Reset()
    {
        Tasks = null;
        List = null;
        Cursor = 0;
        Current = null;
        CurrentSpace = null;
        CurrentSpaceFailure = null;
    }
}

public static partial class Libkvm
{
    private static bool Usable(KvmHandle? kd) => kd is not null && !kd.Kvm.IsClosed;

    private static KernelTasks TasksOf(KvmHandle kd) => kd.Procs.Tasks ??= KernelTasks.For(kd.Kvm);

    /// <summary>The processes: thread-group leaders with a pid (the idle tasks and other threads are not processes).</summary>
    private static List<proc> BuildList(KvmHandle kd) =>
        [.. TasksOf(kd).List().Where(t => t.Pid > 0 && t.Pid == t.Tgid && !t.IsIdle).Select(t => new proc(t))];

    /// <summary>kvm_setproc: rewinds kvm_nextproc to the first process; the next kvm_nextproc reads the list anew.</summary>
    /// <returns>0, or -1 for a null or closed handle.</returns>
    public static int kvm_setproc(KvmHandle? kd)
    {
        if (!Usable(kd))
            return -1;
        kd!.Procs.List = null;
        kd.Procs.Cursor = 0;
        return 0;
    }

    /// <summary>kvm_nextproc: the next process (one per thread-group leader, in the kernel's list order), or null
    /// at the end or on error. The first call after kvm_open or kvm_setproc reads the process list.</summary>
    public static proc? kvm_nextproc(KvmHandle? kd)
    {
        if (!Usable(kd))
            return null;
        var state = kd!.Procs;
        try
        {
            state.List ??= BuildList(kd);
        }
        catch (KvmException e)
        {
            if (e is not KvmClosedException)
                kd.Report($"kvm_nextproc: {e.Message}");
            return null;
        }
        return state.Cursor < state.List.Count ? state.List[state.Cursor++] : null;
    }

    /// <summary>kvm_getproc: the process <paramref name="pid"/>, or null when there is none (or on error). The
    /// cursor of kvm_nextproc is left where it is.</summary>
    public static proc? kvm_getproc(KvmHandle? kd, int pid)
    {
        if (!Usable(kd))
            return null;
        try
        {
            var list = kd!.Procs.List ?? BuildList(kd);
            return list.Find(p => p.p_pid == pid);
        }
        catch (KvmException e)
        {
            if (e is not KvmClosedException)
                kd!.Report($"kvm_getproc: {e.Message}");
            return null;
        }
    }

    /// <summary>kvm_getu: the "u-area" of <paramref name="p"/> (its command name and up to PSARGSZ - 1 characters of
    /// its arguments), or null; <paramref name="p"/> becomes the process kvm_uread and kvm_uwrite address.</summary>
    public static user? kvm_getu(KvmHandle? kd, proc? p)
    {
        if (!Usable(kd) || p is null)
            return null;
        var state = kd!.Procs;
        try
        {
            var tasks = TasksOf(kd);
            ProcessMemory? space = null;
            string? spaceFailure = null;
            var psargs = "";
            if (p.p_mm == 0)
                spaceFailure = $"pid {p.p_pid} ({p.p_comm}) has no user address space (a kernel thread or a zombie)";
            else
            {
                space = tasks.GetMemory(p.Task);
                try
                {
                    psargs = string.Join(' ', tasks.GetArgs(p.Task));
                }
                catch (KvmException)
                {
                    // The argument pages are not in the image, or the area is implausible: u_psargs stays empty,
                    // kvm_getcmd reports why.
                }
                if (psargs.Length > user.PSARGSZ - 1)
                    psargs = psargs[..(user.PSARGSZ - 1)];
            }
            state.Current = p;
            state.CurrentSpace = space;
            state.CurrentSpaceFailure = spaceFailure;
            return new user(p, psargs);
        }
        catch (KvmException e)
        {
            if (e is not KvmClosedException)
                kd.Report($"kvm_getu: {e.Message}");
            return null;
        }
    }

    /// <summary>kvm_getcmd: the arguments (mm->arg_start..arg_end) and environment (mm->env_start..env_end) of
    /// <paramref name="p"/>, read from its memory. <paramref name="u"/> is accepted for the C signature and may be null.</summary>
    /// <returns>0, or -1 (both arrays null) when either cannot be read: a kernel thread or zombie, or pages not in the image.</returns>
    public static int kvm_getcmd(KvmHandle? kd, proc? p, user? u, out string[]? arg, out string[]? env)
    {
        _ = u;
        arg = null;
        env = null;
        if (!Usable(kd) || p is null)
            return -1;
        try
        {
            var tasks = TasksOf(kd!);
            var a = tasks.GetArgs(p.Task);
            var e = tasks.GetEnv(p.Task);
            (arg, env) = ([.. a], [.. e]);
            return 0;
        }
        catch (KvmException e)
        {
            if (e is not KvmClosedException)
                kd!.Report($"kvm_getcmd: {e.Message}");
            return -1;
        }
    }

    /// <summary>kvm_uread: reads the user memory of the process of the most recent kvm_getu; the bytes read, or -1.</summary>
    /// <remarks>Reads page by page and stops at the first unreadable byte: a partial count is returned when some
    /// bytes were read, -1 when none could be (no kvm_getu, a process without user memory, a page not present or
    /// excluded from the dump). A swapped-out page is read from the swapfile given at open.</remarks>
    public static long kvm_uread(KvmHandle? kd, ulong addr, Span<byte> buf)
    {
        if (!Usable(kd))
            return -1;
        var state = kd!.Procs;
        if (state.CurrentSpace is not { } space)
        {
            kd.Report($"kvm_uread: {state.CurrentSpaceFailure ?? "no process: call kvm_getu first"}");
            return -1;
        }
        try
        {
            return URead(kd, space, state.Current!, addr, buf);
        }
        catch (KvmClosedException)
        {
            return -1;
        }
    }

    private static long URead(KvmHandle kd, ProcessMemory space, proc p, ulong addr, Span<byte> buf)
    {
        space.TryRead(addr, buf, out var done, out var failure);
        if (done == 0 && buf.Length > 0)
        {
            kd.Report($"kvm_uread: pid {p.p_pid}: {failure}");
            return -1;
        }
        return done;
    }

    /// <summary>kvm_uwrite: writes the user memory of the process of the most recent kvm_getu into the corefile
    /// (O_RDWR), at the physical addresses its page tables give; the bytes written, or -1 (nothing written).</summary>
    /// <remarks>Every page is translated and checked before any byte is written; a swapped-out page fails the write
    /// (the swapfile is never written).</remarks>
    public static long kvm_uwrite(KvmHandle? kd, ulong addr, ReadOnlySpan<byte> buf)
    {
        if (!Usable(kd))
            return -1;
        var state = kd!.Procs;
        if (state.CurrentSpace is not { } space)
        {
            kd.Report($"kvm_uwrite: {state.CurrentSpaceFailure ?? "no process: call kvm_getu first"}");
            return -1;
        }
        try
        {
            space.Write(addr, buf);
            return buf.Length;
        }
        catch (KvmException e)
        {
            if (e is not KvmClosedException)
                kd.Report($"kvm_uwrite: {e.Message}");
            return -1;
        }
    }
}
