using System.Globalization;
using KvmTyped.Formats;
using KvmTyped.Linux.Kernel;
using KvmTyped.Linux.Unwind;
using KvmTyped.Types;

namespace KvmTyped.Linux;

/// <summary>Where it crashed: the register sets a dump carries for its CPUs, the CPU that panicked and the task it
/// ran, and the kernel stack of any task or CPU — unwound from the image alone: the ORC tables in its memory on x86-64,
/// frame pointers on i386, arm64 (frame records) and x86-64 kernels built without ORC, symbolized with the namelist and
/// the modules' in-memory symbols. No DWARF vmlinux is needed.</summary>
/// <remarks>
/// <para>A CPU's registers come from its NT_PRSTATUS note: in a kdump, the panicking CPU's from crash_setup_regs and
/// the others' from the NMI that stopped them; in a QEMU dump, each vCPU's state when it was stopped. Notes are matched
/// to CPUs by QEMU's pr_pid (the vCPU index + 1), else by their order, checked against the pid of the task each CPU
/// runs.</para>
/// <para>The CPU that panicked is the kernel's <c>panic_cpu</c>, else <c>crashing_cpu</c> (x86 kexec), else the one
/// note whose pr_pid names a task. A task that is not running is unwound from what __switch_to_asm left at its
/// <c>thread.sp</c> (struct inactive_task_frame); on arm64 from what cpu_switch_to saved in <c>thread.cpu_context</c>.
/// A running task needs its CPU's registers: without them its trace says so.</para>
/// </remarks>
public sealed class KernelStacks
{
    private readonly IKernelMemory _memory;
    private readonly Func<string, ulong?> _symbol;
    private readonly KernelMachine _machine;
    private readonly CpuNotes _notes;
    private readonly int _pageBytes;
    private readonly int _cpuCount;
    private readonly Lazy<IReadOnlyList<CpuRegisters>> _cpus;
    private readonly Lazy<IReadOnlyDictionary<int, ulong>> _active;
    private readonly Lazy<(int? Cpu, string? Source)> _crashedCpu;
    private readonly Lazy<object> _unwinder;
    private readonly ulong _stackBytes;
    private readonly ulong _pacMask;

    /// <summary>Stacks of an opened image.</summary>
    /// <exception cref="KvmException">The kernel is not an x86-64, i386 or arm64 one (no other is unwound yet), or its
    /// types lack task_struct (see <see cref="KernelTasks"/>).</exception>
    public KernelStacks(Kvm kvm)
        : this(kvm ?? throw new ArgumentNullException(nameof(kvm)), KernelModules.For(kvm))
    {
    }

    private KernelStacks(Kvm kvm, KernelModules modules)
        : this(kvm, name => kvm.TryGetSymbol(name, out var a) ? a : null, kvm.Machine, KernelTasks.For(kvm), modules, new KernelSymbolizer(kvm, modules),
            CpuNotes.Read(kvm.Physical), kvm.PageSize, kvm.CpuCount, Arm64PacMask(kvm))
    {
    }

    /// <summary>Stacks over any kernel memory that places relocated structs (tests, fuzzing); on arm64
    /// <c>pacMask</c> is the pointer authentication bits of a kernel address (see
    /// <see cref="Arm64FramePointerUnwinder.StripPac"/>), ignored elsewhere.</summary>
    internal KernelStacks(IKernelMemory memory, Func<string, ulong?> symbol, KernelMachine machine, KernelTasks tasks, KernelModules modules,
        KernelSymbolizer symbolizer, CpuNotes notes, int pageSize, int cpuCount, ulong pacMask = 0)
    {
        if (machine is not (KernelMachine.X86_64 or KernelMachine.X86 or KernelMachine.Arm64))
            throw new KvmException($"kernel stacks are unwound on x86-64, i386 and arm64 kernels only; this one is {machine}");
        _memory = memory;
        _symbol = symbol;
        _machine = machine;
        Tasks = tasks;
        Modules = modules;
        Symbolizer = symbolizer;
        _notes = notes;
        _pageBytes = pageSize;
        _cpuCount = cpuCount;
        _pacMask = pacMask;
        _stackBytes = symbol("__end_init_task") is { } end && (symbol("__start_init_task") ?? symbol("init_stack")) is { } start && end > start && end - start <= MaxThreadSize
            ? end - start
            : machine == KernelMachine.X86 ? 8192UL : 16384UL;
        _cpus = new(ReadCpus, LazyThreadSafetyMode.ExecutionAndPublication);
        _active = new(ReadActive, LazyThreadSafetyMode.ExecutionAndPublication);
        _crashedCpu = new(FindCrashedCpu, LazyThreadSafetyMode.ExecutionAndPublication);
        _unwinder = new(CreateUnwinder, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The largest kernel stack believed (THREAD_SIZE is 8 to 32 KiB; 64 KiB with KASAN on some arches).</summary>
    public const ulong MaxThreadSize = 1 << 20;

    /// <summary>Stacks of <paramref name="kvm"/>.</summary>
    public static KernelStacks For(Kvm kvm) => new(kvm);

    /// <summary>The kernel's tasks.</summary>
    public KernelTasks Tasks { get; }

    /// <summary>The kernel's modules (their symbols name module code; their ORC tables unwind it).</summary>
    public KernelModules Modules { get; }

    /// <summary>How frames are named.</summary>
    public KernelSymbolizer Symbolizer { get; }

    /// <summary>THREAD_SIZE: the size of a task's kernel stack (from init_stack's extent in the namelist).</summary>
    public ulong ThreadSize => _stackBytes;

    /// <summary>"ORC" (x86-64 kernels with ORC tables) or "frame pointers" (i386, arm64, x86-64 without ORC).</summary>
    public string Unwinder => _machine == KernelMachine.X86_64 && OrcTables.Present(_symbol) ? "ORC" : "frame pointers";

    /// <summary>The register sets the dump carries, one per CPU it recorded, with the CPU each belongs to.</summary>
    public IReadOnlyList<CpuRegisters> Cpus => _cpus.Value;

    /// <summary>The task each CPU was running (x86's current_task, else the run queue's curr), by CPU.</summary>
    public IReadOnlyDictionary<int, ulong> ActiveTasks => _active.Value;

    /// <summary>The CPU that panicked, or null when the dump does not tell.</summary>
    public int? CrashedCpu => _crashedCpu.Value.Cpu;

    /// <summary>How <see cref="CrashedCpu"/> was found ("panic_cpu", "crashing_cpu", "the only NT_PRSTATUS naming a
    /// task"), or null.</summary>
    public string? CrashedCpuSource => _crashedCpu.Value.Source;

    /// <summary>The task that panicked (the one the panicking CPU ran), or null when unknown.</summary>
    public KernelTask? CrashedThread =>
        CrashedCpu is { } cpu && ActiveTasks.TryGetValue(cpu, out var task) ? Tasks.Read(task, task == Tasks.InitTask) : null;

    /// <summary>The stack of the task that panicked.</summary>
    /// <exception cref="KvmException">The dump does not tell which CPU panicked.</exception>
    public KernelStackTrace CrashedThreadStack() =>
        CrashedCpu is { } cpu ? StackTraceOfCpu(cpu) : throw new KvmException("the dump does not tell which CPU panicked (no panic_cpu, crashing_cpu or NT_PRSTATUS naming a task)");

    /// <summary>The stack of the task <paramref name="cpu"/> was running, from the CPU's registers.</summary>
    /// <exception cref="KvmException">The CPU is not one the kernel knows, or no task can be found for it.</exception>
    public KernelStackTrace StackTraceOfCpu(int cpu)
    {
        if (!ActiveTasks.TryGetValue(cpu, out var address))
        {
            var regs = Cpus.FirstOrDefault(c => c.Cpu == cpu);
            if (regs is null)
                throw new KvmException($"CPU {cpu.ToString(CultureInfo.InvariantCulture)}: neither its task nor its registers are known");
            return Trace(null, cpu, regs, 0);
        }
        var task = Tasks.Read(address, address == Tasks.InitTask);
        return StackTrace(task with { Cpu = cpu });
    }

    /// <summary>The kernel stack of <paramref name="task"/>: from its CPU's registers when it was running, else from
    /// its saved thread.sp.</summary>
    public KernelStackTrace StackTrace(KernelTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var running = ActiveTasks.Where(p => p.Value == task.Address).Select(p => (int?)p.Key).FirstOrDefault();
        if (running is { } cpu)
        {
            var regs = Cpus.FirstOrDefault(c => c.Cpu == cpu);
            if (regs is null)
            {
                var n = cpu.ToString(CultureInfo.InvariantCulture);
                return Failed(task, cpu, true, $"CPU {n}'s registers", $"running on CPU {n}, whose registers the dump does not hold");
            }
            return Trace(task, cpu, regs, TaskStack(task));
        }
        return Switched(task);
    }

    private KernelStackTrace Switched(KernelTask task)
    {
        var start = _machine == KernelMachine.Arm64 ? "its saved thread.cpu_context" : "its saved thread.sp";
        var stack = TaskStack(task);
        if (stack == 0)
            return Failed(task, task.Cpu, false, start, "the task has no kernel stack (it has exited)");
        if (_machine == KernelMachine.Arm64)
            return SwitchedArm64(task, stack, start);
        ulong threadSp;
        ulong? sp0 = null;
        try
        {
            if (_machine == KernelMachine.X86_64)
            {
                threadSp = Kernel.X86_64.task_struct___x86_64.At(_memory, task.Address).thread.sp;
            }
            else
            {
                var thread = Kernel.I386.task_struct___i386.At(_memory, task.Address).thread;
                threadSp = thread.sp;
                sp0 = thread.Has_sp0 ? thread.sp0 : null;
            }
        }
        catch (KvmException e)
        {
            return Failed(task, task.Cpu, false, start, "thread.sp cannot be read: " + e.Message);
        }
        var stacks = new StackSet([new StackRange(StackKind.Task, "task", stack, stack + _stackBytes)]);
        UnwindResult result;
        try
        {
            result = _unwinder.Value switch
            {
                OrcUnwinder orc => orc.FromSwitchedOut(threadSp, stacks),
                FramePointerUnwinder fp => fp.FromSwitchedOut(threadSp, stacks, PtRegsTop(stack, sp0)),
                var why => new UnwindResult([], UnwindEnd.Error, (string)why, null),
            };
        }
        catch (KvmException e)
        {
            result = new UnwindResult([], UnwindEnd.Error, e.Message, null);
        }
        return Convert(task, task.Cpu, false, start, result);
    }

    private KernelStackTrace SwitchedArm64(KernelTask task, ulong stack, string start)
    {
        var stacks = new StackSet([new StackRange(StackKind.Task, "task", stack, stack + _stackBytes)]);
        UnwindResult result;
        try
        {
            result = _unwinder.Value is Arm64FramePointerUnwinder arm
                ? arm.FromSwitchedOut(task.Address, stacks, FinalFrame(stack))
                : new UnwindResult([], UnwindEnd.Error, (string)_unwinder.Value, null);
        }
        catch (KvmException e)
        {
            result = new UnwindResult([], UnwindEnd.Error, e.Message, null);
        }
        return Convert(task, task.Cpu, false, start, result);
    }

    /// <summary>arm64: the task's final frame record, task_pt_regs(task)->stackframe, which ends every chain: the
    /// pt_regs at the top of its stack.</summary>
    private ulong FinalFrame(ulong stack) =>
        stack + _stackBytes - Kernel.Arm64.pt_regs.SizeOf(_memory) + Kernel.Arm64.pt_regs.OffsetOf(_memory, "stackframe");

    /// <summary>arm64's stacks other than the task's a CPU may be on (arch/arm64/include/asm/stacktrace.h): its IRQ stack
    /// (per-CPU irq_stack_ptr, IRQ_STACK_SIZE = THREAD_SIZE), its overflow stack (the per-CPU overflow_stack itself,
    /// OVERFLOW_STACK_SIZE = 4 KiB) and its SDEI stacks (sdei_stack_normal_ptr, sdei_stack_critical_ptr).</summary>
    private void Arm64CpuStacks(int cpu, List<StackRange> ranges)
    {
        if (PerCpu.TryReadPointer(_memory, _symbol, "irq_stack_ptr", cpu, out var irq) && irq != 0)
            ranges.Add(new StackRange(StackKind.HardIrq, "IRQ", irq, irq + _stackBytes));
        if (PerCpu.TryAddress(_memory, _symbol, "overflow_stack", cpu, out var overflow))
            ranges.Add(new StackRange(StackKind.Overflow, "overflow", overflow, overflow + Arm64OverflowStackSize));
        if (PerCpu.TryReadPointer(_memory, _symbol, "sdei_stack_normal_ptr", cpu, out var normal) && normal != 0)
            ranges.Add(new StackRange(StackKind.Sdei, "SDEI", normal, normal + _stackBytes));
        if (PerCpu.TryReadPointer(_memory, _symbol, "sdei_stack_critical_ptr", cpu, out var critical) && critical != 0)
            ranges.Add(new StackRange(StackKind.Sdei, "SDEI critical", critical, critical + _stackBytes));
    }

    /// <summary>arm64's OVERFLOW_STACK_SIZE.</summary>
    private const ulong Arm64OverflowStackSize = 4096;

    /// <summary>The bits a pointer authentication code occupies in an arm64 kernel address: VMCOREINFO
    /// NUMBER(KERNELPACMASK) (5.11+ with CONFIG_ARM64_PTR_AUTH), else GENMASK(63, VA_BITS), which leaves an address
    /// without a code as it is; 0 on other machines.</summary>
    private static ulong Arm64PacMask(Kvm kvm)
    {
        if (kvm.Machine != KernelMachine.Arm64)
            return 0;
        if (kvm.VmcoreInfoData is { } info && VmcoreNumber.Get(info, "KERNELPACMASK") is { } mask and not 0)
            return mask;
        return kvm.Layout is Arch.Arm64.Arm64KernelLayout layout ? ~0UL << layout.VaBits : 0xffff_0000_0000_0000UL;
    }

    private KernelStackTrace Trace(KernelTask? task, int cpu, CpuRegisters regs, ulong stack)
    {
        var start = $"CPU {cpu.ToString(CultureInfo.InvariantCulture)}'s registers (NT_PRSTATUS)";
        var ranges = new List<StackRange>();
        if (stack != 0)
            ranges.Add(new StackRange(StackKind.Task, "task", stack, stack + _stackBytes));
        ulong exceptionArea = 0;
        if (_machine != KernelMachine.Arm64 && PerCpu.HardIrqStack(_memory, _symbol, _machine, cpu) is { } irq)
        {
            // x86-64 points at the stack's top word, i386 at its bottom.
            ranges.Add(_machine == KernelMachine.X86_64
                ? new StackRange(StackKind.HardIrq, "IRQ", irq + 8 - _stackBytes, irq + 8)
                : new StackRange(StackKind.HardIrq, "IRQ", irq, irq + _stackBytes));
        }
        if (_machine == KernelMachine.X86 && PerCpu.TryReadPointer(_memory, _symbol, "softirq_stack_ptr", cpu, out var soft) && soft != 0)
            ranges.Add(new StackRange(StackKind.SoftIrq, "softirq", soft, soft + _stackBytes));
        if (_machine == KernelMachine.X86_64 && PerCpu.TryReadPointer(_memory, _symbol, "cea_exception_stacks", cpu, out var estacks))
            exceptionArea = estacks;
        if (_machine == KernelMachine.Arm64)
            Arm64CpuStacks(cpu, ranges);
        var stacks = new StackSet(ranges, _memory, exceptionArea, _pageBytes);
        var registers = new Registers(regs.Registers, full: true) { Vm86 = _machine == KernelMachine.X86 };
        ulong? sp0 = null;
        if (task is not null && _machine == KernelMachine.X86)
        {
            try
            {
                var thread = Kernel.I386.task_struct___i386.At(_memory, task.Address).thread;
                sp0 = thread.Has_sp0 ? thread.sp0 : null;
            }
            catch (KvmException)
            {
            }
        }
        UnwindResult result;
        try
        {
            result = _unwinder.Value switch
            {
                OrcUnwinder orc => orc.FromRegisters(registers, stacks),
                FramePointerUnwinder fp => fp.FromRegisters(registers, stacks, stack == 0 ? null : PtRegsTop(stack, sp0)),
                Arm64FramePointerUnwinder arm => arm.FromRegisters(registers, stacks, stack == 0 ? null : FinalFrame(stack)),
                var why => new UnwindResult([], UnwindEnd.Error, (string)why, null),
            };
        }
        catch (KvmException e)
        {
            result = new UnwindResult([], UnwindEnd.Error, e.Message, null);
        }
        return Convert(task, cpu, true, start, result);
    }

    /// <summary>task_pt_regs: where the user-mode registers are saved, at the top of the task's stack (below i386's
    /// padding, which thread.sp0 excludes).</summary>
    private ulong? PtRegsTop(ulong stack, ulong? sp0)
    {
        var size = _machine == KernelMachine.X86_64 ? Kernel.X86_64.pt_regs.SizeOf(_memory) : Kernel.I386.pt_regs.SizeOf(_memory);
        var top = sp0 is { } s && s > stack && s <= stack + _stackBytes ? s : stack + _stackBytes;
        return top - size;
    }

    /// <summary>task->stack, or 0.</summary>
    private ulong TaskStack(KernelTask task)
    {
        try
        {
            return task_struct.At(_memory, task.Address).stack;
        }
        catch (KvmException)
        {
            return 0;
        }
    }

    private object CreateUnwinder()
    {
        try
        {
            if (_machine == KernelMachine.X86_64 && OrcTables.Present(_symbol))
            {
                var tables = OrcTables.Open(_memory, _symbol, () => Modules.OrcTables);
                return new OrcUnwinder(_memory, tables, Symbolizer.IsText, _symbol("ret_from_fork") ?? 0,
                    ip => Symbolizer.Symbolize(ip) is { IsKnown: true } f ? f.SymbolAddress : null);
            }
            if (_machine is KernelMachine.X86_64 or KernelMachine.X86)
                return new FramePointerUnwinder(_memory, Symbolizer.IsText);
            if (_machine == KernelMachine.Arm64)
            {
                var entry = _symbol("__entry_text_start") ?? 0;
                var entryEnd = _symbol("__entry_text_end") ?? 0;
                return new Arm64FramePointerUnwinder(_memory, Symbolizer.IsText, ip => ip >= entry && ip < entryEnd,
                    ip => Symbolizer.Symbolize(ip) is { IsKnown: true } f ? f.SymbolAddress : null, _pacMask);
            }
            return $"no unwinder for {_machine} kernels";
        }
        catch (KvmException e)
        {
            return e.Message;
        }
    }

    private KernelStackTrace Convert(KernelTask? task, int cpu, bool active, string start, UnwindResult result)
    {
        var frames = new List<StackFrame>(result.Frames.Count);
        foreach (var f in result.Frames)
        {
            var symbol = f.Exact ? Symbolizer.Symbolize(f.Ip) : Symbolizer.SymbolizeReturnAddress(f.Ip);
            frames.Add(new StackFrame(frames.Count, f.Ip, f.Sp, symbol, f.Reliable, f.Exact, f.Stack, f.Registers is null ? null : new RegisterSet(f.Registers.Values)));
        }
        var end = result.End switch
        {
            UnwindEnd.EndOfStack => StackTraceEnd.EndOfStack,
            UnwindEnd.UserMode => StackTraceEnd.UserMode,
            _ => StackTraceEnd.Error,
        };
        return new KernelStackTrace(task, cpu, active, Unwinder, start, frames, end, result.Reason,
            result.UserRegisters is null ? null : new RegisterSet(result.UserRegisters.Values));
    }

    private KernelStackTrace Failed(KernelTask? task, int cpu, bool active, string start, string why) =>
        new(task, cpu, active, Unwinder, start, [], StackTraceEnd.Error, why, null);

    private IReadOnlyList<CpuRegisters> ReadCpus()
    {
        var notes = _notes.Notes;
        if (notes.Count == 0)
            return [];
        var possible = Math.Max(PerCpu.PossibleCpus(_memory, _symbol, Math.Max(_cpuCount, notes.Count)), notes.Count);
        var cpuOf = new int[notes.Count];
        if (_notes.FromQemu)
        {
            for (var i = 0; i < notes.Count; i++)
                cpuOf[i] = notes[i].Pid >= 1 && notes[i].Pid <= possible ? notes[i].Pid - 1 : -1;
        }
        else
        {
            // kdump writes one note per CPU that saved its registers, in CPU order: note i is CPU i when every note's
            // pid is that CPU's task's; otherwise notes are matched by pid where it is unique.
            var pidOf = new Dictionary<int, int>();
            for (var c = 0; c < possible && c < PerCpu.MaxCpus; c++)
            {
                if (ActiveTasks.TryGetValue(c, out var t) && TryPid(t) is { } pid)
                    pidOf[c] = pid;
            }
            var inOrder = Enumerable.Range(0, notes.Count).All(i => !pidOf.TryGetValue(i, out var pid) || pid == notes[i].Pid);
            for (var i = 0; i < notes.Count; i++)
            {
                if (inOrder)
                {
                    cpuOf[i] = i;
                    continue;
                }
                var matches = pidOf.Where(p => p.Value == notes[i].Pid && notes[i].Pid != 0).Select(p => p.Key).ToList();
                cpuOf[i] = matches.Count == 1 ? matches[0] : -1;
            }
        }
        var result = new List<CpuRegisters>();
        for (var i = 0; i < notes.Count; i++)
        {
            var n = notes[i];
            var task = cpuOf[i] >= 0 && ActiveTasks.TryGetValue(cpuOf[i], out var t) ? t : 0;
            result.Add(new CpuRegisters(cpuOf[i], n.Pid, task, new RegisterSet(n.Names.Zip(n.Values, (k, v) => new KeyValuePair<string, ulong>(k, v)))));
        }
        return result;
    }

    private int? TryPid(ulong task)
    {
        try
        {
            return task_struct.At(_memory, task).pid;
        }
        catch (KvmException)
        {
            return null;
        }
    }

    private IReadOnlyDictionary<int, ulong> ReadActive()
    {
        var result = new Dictionary<int, ulong>();
        var cpus = PerCpu.PossibleCpus(_memory, _symbol, Math.Max(_cpuCount, _notes.Notes.Count));
        for (var cpu = 0; cpu < cpus; cpu++)
        {
            if (PerCpu.CurrentTask(_memory, _symbol, _machine, cpu) is { } task)
                result[cpu] = task;
        }
        return result;
    }

    private (int?, string?) FindCrashedCpu()
    {
        var possible = PerCpu.PossibleCpus(_memory, _symbol, Math.Max(_cpuCount, _notes.Notes.Count));
        foreach (var name in new[] { "panic_cpu", "crashing_cpu" })
        {
            if (_symbol(name) is { } at && PerCpu.TryReadWord(_memory, at, 4, out var raw) && (int)raw is var cpu && cpu >= 0 && cpu < Math.Max(possible, 1))
                return (cpu, name);
        }
        if (!_notes.FromQemu)
        {
            var named = Cpus.Where(c => c.NotePid != 0 && c.Cpu >= 0).ToList();
            if (named.Count == 1)
                return (named[0].Cpu, "the only NT_PRSTATUS naming a task");
        }
        return (null, null);
    }
}
