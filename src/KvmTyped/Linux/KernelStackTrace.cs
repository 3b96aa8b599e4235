using System.Collections;
using System.Globalization;
using KvmTyped.Symbols;

namespace KvmTyped.Linux;

/// <summary>Registers known at some point of a trace, by the kernel's struct pt_regs member names ("ip", "sp", "bp",
/// "ax", …, "cs", "ss"; on arm64 "x0" … "x30", "sp", "pc", "pstate"), in the order a trace shows them.</summary>
public sealed class RegisterSet : IReadOnlyList<KeyValuePair<string, ulong>>
{
    private readonly KeyValuePair<string, ulong>[] _values;

    internal RegisterSet(IEnumerable<KeyValuePair<string, ulong>> values) => _values = [.. values];

    /// <inheritdoc/>
    public int Count => _values.Length;

    /// <inheritdoc/>
    public KeyValuePair<string, ulong> this[int index] => _values[index];

    /// <summary>A register's value, or null when the set does not hold it.</summary>
    public ulong? this[string name] => TryGet(name, out var v) ? v : null;

    /// <summary>A register's value.</summary>
    public bool TryGet(string name, out ulong value)
    {
        foreach (var (k, v) in _values)
        {
            if (k == name)
            {
                value = v;
                return true;
            }
        }
        value = 0;
        return false;
    }

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, ulong>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, ulong>>)_values).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>"ip=0x… sp=0x… …".</summary>
    public override string ToString() => string.Join(' ', _values.Select(v => v.Key + "=0x" + v.Value.ToString("x", CultureInfo.InvariantCulture)));
}

/// <summary>The registers a dump recorded for one CPU (an NT_PRSTATUS note).</summary>
/// <param name="Cpu">The CPU, or -1 when the note cannot be matched to one.</param>
/// <param name="NotePid">The note's pr_pid (in a kdump the pid of the task the CPU ran; QEMU writes the vCPU index + 1).</param>
/// <param name="Task">The task_struct the CPU was running, or 0 when unknown.</param>
/// <param name="Registers">The registers.</param>
public sealed record CpuRegisters(int Cpu, int NotePid, ulong Task, RegisterSet Registers);

/// <summary>One frame of a kernel stack trace.</summary>
/// <param name="Index">Its position, from 0 (innermost).</param>
/// <param name="Address">The code address: where the CPU was for the first frame and at an interrupt or exception
/// (<see cref="IsExact"/>), else the return address into the function.</param>
/// <param name="StackPointer">The stack pointer in this frame (on arm64, for a frame found through a frame record,
/// the record's address).</param>
/// <param name="Symbol">The function, offset and length (a return address looked up at address − 1, as the kernel's
/// <c>%pB</c> does), and the module.</param>
/// <param name="IsReliable">Found by the unwind rules; false for the "?" frames a stack scan adds after an unwind failed.</param>
/// <param name="IsExact">The address is where execution was, not a return address.</param>
/// <param name="Stack">The stack the frame is on ("task", "IRQ", "NMI exception", …), or null.</param>
/// <param name="Registers">Registers known in this frame (the CPU's registers, a switched-out task's saved ones, an
/// exception or interrupt frame's pt_regs), or null.</param>
public sealed record StackFrame(int Index, ulong Address, ulong StackPointer, SymbolizedAddress Symbol, bool IsReliable, bool IsExact, string? Stack,
    RegisterSet? Registers)
{
    /// <summary>The frame as an oops line: "func+0x1c/0x40 [mod]", with "? " in front of an unreliable one.</summary>
    public override string ToString() => (IsReliable ? "" : "? ") + Symbol;
}

/// <summary>How a stack trace ended.</summary>
public enum StackTraceEnd
{
    /// <summary>At the bottom of the stack: a kernel thread's start, or the boot code.</summary>
    EndOfStack,

    /// <summary>At the registers saved when the task entered the kernel from user mode (<see cref="KernelStackTrace.UserRegisters"/>).</summary>
    UserMode,

    /// <summary>The unwind could not go on; <see cref="KernelStackTrace.Reason"/> says why.</summary>
    Error,
}

/// <summary>A task's (or a CPU's) kernel stack, innermost frame first.</summary>
/// <param name="Task">The task, or null when it could not be read.</param>
/// <param name="Cpu">The CPU it runs on, or last ran on; -1 when unknown.</param>
/// <param name="IsActive">It was running on <see cref="Cpu"/> when the dump was taken.</param>
/// <param name="Unwinder">"ORC" or "frame pointers".</param>
/// <param name="Start">Where the trace started: "CPU 1's registers (NT_PRSTATUS)", "its saved thread.sp" or (arm64) "its
/// saved thread.cpu_context".</param>
/// <param name="Frames">The frames.</param>
/// <param name="End">How it ended.</param>
/// <param name="Reason">Why it ended, in words ("end of stack", "user mode", "frame 12: return address 0x… is not
/// kernel text").</param>
/// <param name="UserRegisters">The user-mode registers it ended at, or null.</param>
public sealed record KernelStackTrace(KernelTask? Task, int Cpu, bool IsActive, string Unwinder, string Start, IReadOnlyList<StackFrame> Frames,
    StackTraceEnd End, string Reason, RegisterSet? UserRegisters);
