using DumpAnalyzer;
using DumpAnalyzer.Kernel;
using KvmTyped;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: DumpAnalyzer NAMELIST COREFILE   (System.map or vmlinux, and a kernel crash dump)");
    return 2;
}

try
{
    using var kvm = Kvm.Open(args[0], args[1], swapfile: null, KvmOpenFlags.ReadOnly, errstr: null);
    Console.WriteLine($"{kvm.Release} ({kvm.Machine}, {kvm.DataModel})");
    Console.WriteLine($"{"PID",6} {"PPID",6} {"PRIO",4} {"VM_PAGES",10} COMM");
    var init = task_struct.At(kvm, kvm.SymbolAddress("init_task"));
    foreach (var task in init.tasks.Entries<task_struct>(t => t.tasks))
    {
        var more = task_struct___analyzer.At(kvm, task.Address);                          // schemas/analyzer.h
        var pages = task.mm.IsNull ? 0 : mm_struct___analyzer.At(kvm, task.mm.Address).total_vm;   // MemoryCounters.cs
        Console.WriteLine($"{task.pid,6} {task.real_parent.Value.tgid,6} {more.prio,4} {pages,10} {task.comm}");
    }
    return 0;
}
catch (KvmException e)
{
    Console.Error.WriteLine($"DumpAnalyzer: {e.Message}");
    return 1;
}
