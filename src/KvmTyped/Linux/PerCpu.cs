using System.Buffers.Binary;
using KvmTyped.Linux.Kernel;
using KvmTyped.Types;

namespace KvmTyped.Linux;

/// <summary>Per-CPU variables: the copy of a variable (a DEFINE_PER_CPU symbol such as <c>runqueues</c> or
/// <c>current_task</c>) that belongs to one CPU lies at the symbol's address plus <c>__per_cpu_offset[cpu]</c>. The one
/// place the library reads them: the task each CPU runs, its run queue, its interrupt stacks.</summary>
/// <remarks>On x86-64 per-CPU symbols are linked from 0 (so KASLR does not move them); on i386 and arm64 they are
/// addresses in the image. Either way the sum is the CPU's copy. Kernels 6.2+ keep x86's hottest per-CPU variables
/// (current_task, hardirq_stack_ptr) together in <c>pcpu_hot</c>; older ones define them one by one.</remarks>
internal static class PerCpu
{
    /// <summary>The most CPUs walked (NR_CPUS of the largest kernel configurations).</summary>
    public const int MaxCpus = 8192;

    /// <summary>How many CPUs the kernel may have: <c>nr_cpu_ids</c> (at most <see cref="MaxCpus"/>), else
    /// <paramref name="fallback"/> (the CPUs the dump's notes describe).</summary>
    public static int PossibleCpus(IKernelMemory memory, Func<string, ulong?> symbol, int fallback)
    {
        if (symbol("nr_cpu_ids") is { } nrCpuIds)
        {
            Span<byte> b = stackalloc byte[4];
            if (memory.TryReadVirtual(nrCpuIds, b, out _) && BinaryPrimitives.ReadUInt32LittleEndian(b) is var n and > 0)
                return (int)Math.Min(n, MaxCpus);
        }
        return fallback;
    }

    /// <summary>The address of <paramref name="cpu"/>'s copy of the per-CPU variable at <paramref name="variable"/>;
    /// false when <c>__per_cpu_offset</c> is unknown or unreadable.</summary>
    public static bool TryAddress(IKernelMemory memory, Func<string, ulong?> symbol, ulong variable, int cpu, out ulong address)
    {
        address = 0;
        if (cpu < 0 || cpu >= MaxCpus || symbol("__per_cpu_offset") is not { } offsets)
            return false;
        var size = memory.DataModel.PointerSize();
        if (!TryReadWord(memory, offsets + (ulong)cpu * (ulong)size, size, out var offset))
            return false;
        address = Wrap(memory, unchecked(variable + offset));
        return true;
    }

    /// <summary>The address of <paramref name="cpu"/>'s copy of the per-CPU variable named <paramref name="name"/>.</summary>
    public static bool TryAddress(IKernelMemory memory, Func<string, ulong?> symbol, string name, int cpu, out ulong address)
    {
        address = 0;
        return symbol(name) is { } variable && TryAddress(memory, symbol, variable, cpu, out address);
    }

    /// <summary>The value of <paramref name="cpu"/>'s copy of the per-CPU pointer variable named <paramref name="name"/>.</summary>
    public static bool TryReadPointer(IKernelMemory memory, Func<string, ulong?> symbol, string name, int cpu, out ulong value)
    {
        value = 0;
        return TryAddress(memory, symbol, name, cpu, out var address) && TryReadWord(memory, address, memory.DataModel.PointerSize(), out value);
    }

    /// <summary>The task <paramref name="cpu"/> runs: x86's per-CPU <c>current_task</c> (to 6.1) or
    /// <c>pcpu_hot.current_task</c> (6.2+), else the run queue's <c>curr</c> (which a context switch sets a little
    /// earlier); null when none of them can be read.</summary>
    public static ulong? CurrentTask(IKernelMemory memory, Func<string, ulong?> symbol, KernelMachine machine, int cpu)
    {
        if (TryReadPointer(memory, symbol, "current_task", cpu, out var task) && task != 0)
            return task;
        if (TryAddress(memory, symbol, "pcpu_hot", cpu, out var hot))
        {
            var fromHot = Guard(() => machine switch
            {
                KernelMachine.X86_64 => Kernel.X86_64.pcpu_hot.At(memory, hot).current_task.Address,
                KernelMachine.X86 => Kernel.I386.pcpu_hot.At(memory, hot).current_task.Address,
                _ => 0UL,
            });
            if (fromHot is > 0)
                return fromHot;
        }
        if (TryAddress(memory, symbol, "runqueues", cpu, out var runqueue))
        {
            var curr = Guard(() => rq.At(memory, runqueue).curr.Address);
            if (curr is > 0)
                return curr;
        }
        return null;
    }

    /// <summary>x86's per-CPU pointer to the CPU's hard-IRQ stack (<c>hardirq_stack_ptr</c>, in <c>pcpu_hot</c> since
    /// 6.2): on x86-64 the stack's top word, on i386 its bottom (struct irq_stack *); null when unknown.</summary>
    public static ulong? HardIrqStack(IKernelMemory memory, Func<string, ulong?> symbol, KernelMachine machine, int cpu)
    {
        if (TryReadPointer(memory, symbol, "hardirq_stack_ptr", cpu, out var top) && top != 0)
            return top;
        if (TryAddress(memory, symbol, "pcpu_hot", cpu, out var hot))
        {
            var fromHot = Guard(() => machine switch
            {
                KernelMachine.X86_64 => Kernel.X86_64.pcpu_hot.At(memory, hot).hardirq_stack_ptr,
                KernelMachine.X86 => Kernel.I386.pcpu_hot.At(memory, hot).hardirq_stack_ptr,
                _ => 0UL,
            });
            if (fromHot is > 0)
                return fromHot;
        }
        return null;
    }

    /// <summary>A pointer or word of <paramref name="size"/> bytes.</summary>
    internal static bool TryReadWord(IKernelMemory memory, ulong address, int size, out ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        b.Clear();
        value = 0;
        if (!memory.TryReadVirtual(address, b[..size], out _))
            return false;
        value = BinaryPrimitives.ReadUInt64LittleEndian(b);
        return true;
    }

    private static ulong Wrap(IKernelMemory memory, ulong address) => memory.DataModel == DataModel.ILP32 ? address & uint.MaxValue : address;

    /// <summary>A read that may find the kernel's types lack a struct, or its memory unreadable: null then.</summary>
    private static ulong? Guard(Func<ulong> read)
    {
        try
        {
            return read();
        }
        catch (KvmException)
        {
            return null;
        }
    }
}
