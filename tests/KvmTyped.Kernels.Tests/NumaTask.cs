using KvmTyped.Types;

namespace KvmTyped.Kernels.Tests;

/// <summary>The same member declared from C#: a flavor of task_struct whose NUMA members only some kernels have.</summary>
[KernelStruct(PreserveAccessIndex = true)]
public partial struct task_struct___numa
{
    /// <summary>The task's pid.</summary>
    public partial int pid { get; }

    /// <summary>How many NUMA scans the task's memory has had (CONFIG_NUMA_BALANCING).</summary>
    [KernelOptional]
    public partial int numa_scan_seq { get; }

    /// <summary>When the next NUMA scan is due, in jiffies (CONFIG_NUMA_BALANCING).</summary>
    [KernelOptional]
    [KernelType("unsigned long")]
    public partial ulong node_stamp { get; }
}
