using KvmTyped.Types;

namespace KvmTyped.Linux;

/// <summary>Per-CPU variables: the copy of a variable (a DEFINE_PER_CPU symbol such as <c>runqueues</c> or
/// <c>current_task</c>) that belongs to one CPU lies at the symbol's address plus <c>__per_cpu_offset[cpu]</c>.</summary>
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
            if (memory.TryReadVirtual(nrCpuIds, b, out _) && System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b) is var n and > 0)
                return (int)Math.Min(n, MaxCpus);
        }
        return fallback;
    }

    /// <summary>The address of <paramref name="cpu"/>'s copy of the per-CPU variable at <paramref name="variable"/>;
    /// false when <c>__per_cpu_offset</c> is unknown or unreadable.</summary>
    public static bool TryAddress(IKernelMemory memory, Func<string, ulong?> symbol, ulong variable, int cpu, out ulong address)
    {
        address = 0;
        if (cpu < 0 || symbol("__per_cpu_offset") is not { } offsets)
            return false;
        var size = memory.DataModel.PointerSize();
        Span<byte> b = stackalloc byte[8];
        b.Clear();
        if (!memory.TryReadVirtual(offsets + (ulong)cpu * (ulong)size, b[..size], out _))
            return false;
        address = unchecked(variable + System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b));
        return true;
    }
}
