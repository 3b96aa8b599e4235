using KvmTyped.EndToEnd.Tests.Kernel;
using KvmTyped.Types;

namespace KvmTyped.EndToEnd.Tests.Relocation;

/// <summary>One process as the generated views read it.</summary>
internal sealed record GeneratedTask(int Pid, int Tgid, int Ppid, string Comm, bool HasMm);

/// <summary>A consumer of the generated schemas/linux views: the same code reads the task list of any kernel whose
/// BTF the image supplies, 32-bit or 64-bit, because task_struct is relocated against that kernel.</summary>
internal static class GeneratedTaskList
{
    /// <summary>Every thread on init_task's tasks ring (each process's leader) and its thread_group ring, init_task
    /// (pid 0) first.</summary>
    public static List<GeneratedTask> Read<TMemory>(TMemory memory, ulong initTask) where TMemory : IKernelMemory
    {
        var init = task_struct.At(memory, initTask);
        var result = new List<GeneratedTask> { Describe(init) };
        foreach (var leader in init.tasks.Entries<task_struct>(t => t.tasks))
        {
            result.Add(Describe(leader));
            foreach (var thread in leader.thread_group.Entries<task_struct>(t => t.thread_group))
                result.Add(Describe(thread));
        }
        return result;
    }

    private static GeneratedTask Describe(task_struct t) =>
        new(t.pid, t.tgid, t.real_parent.Value.tgid, t.comm, t.mm.Address != 0);
}
