namespace KvmTyped.Linux.Unwind;

/// <summary>Registers as the unwinders know them: by the kernel's pt_regs member names, in order. Full sets come from a
/// dump's notes or a struct pt_regs on a stack; partial ones from an iret frame or a switched-out task's frame.</summary>
internal sealed class Registers
{
    private readonly List<KeyValuePair<string, ulong>> _values;

    /// <summary>A register set.</summary>
    /// <param name="values">Name and value, in the order a trace shows them.</param>
    /// <param name="full">Every register of pt_regs is there.</param>
    /// <param name="address">Where the set lies on a stack, or null (a dump note).</param>
    public Registers(IEnumerable<KeyValuePair<string, ulong>> values, bool full, ulong? address = null)
    {
        _values = [.. values];
        Full = full;
        Address = address;
    }

    /// <summary>Every register of pt_regs is there.</summary>
    public bool Full { get; }

    /// <summary>Where the set lies on a stack, or null.</summary>
    public ulong? Address { get; }

    /// <summary>The registers, in order.</summary>
    public IReadOnlyList<KeyValuePair<string, ulong>> Values => _values;

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

    /// <summary>Whether the set is user mode: the privilege level in cs is 3 (or, on i386, the vm86 flag is set); on
    /// arm64 pstate's mode is EL0.</summary>
    public bool IsUserMode => (TryGet("cs", out var cs) && (cs & 3) == 3) || (TryGet("flags", out var flags) && Vm86 && (flags & 0x20000) != 0)
        || (TryGet("pstate", out var pstate) && (pstate & Arm64FramePointerUnwinder.PstateModeMask) == 0);

    /// <summary>i386: eflags.VM marks a vm86 (user) frame.</summary>
    public bool Vm86 { get; init; }
}

/// <summary>One frame an unwinder found.</summary>
/// <param name="Ip">The code address: where the CPU was (exact) or a return address.</param>
/// <param name="Sp">The stack pointer in that frame.</param>
/// <param name="Exact">The ip is where execution was interrupted (from registers), not a return address.</param>
/// <param name="Reliable">The unwind rules found it; false for a stack scan's guess.</param>
/// <param name="Registers">Registers known in this frame (the start set, an exception frame's pt_regs), or null.</param>
/// <param name="Stack">The stack the frame is on ("task", "IRQ", …), or null when unknown.</param>
internal readonly record struct UnwoundFrame(ulong Ip, ulong Sp, bool Exact, bool Reliable, Registers? Registers, string? Stack);

/// <summary>How an unwind ended.</summary>
internal enum UnwindEnd
{
    /// <summary>At the bottom of the stack (a kernel thread's start, the boot code).</summary>
    EndOfStack,

    /// <summary>At the registers saved when the task entered the kernel from user mode.</summary>
    UserMode,

    /// <summary>The rules could not go on; <see cref="UnwindResult.Reason"/> says why.</summary>
    Error,
}

/// <summary>What an unwinder found: the frames, how it ended, and the user-mode registers where it reached them.</summary>
/// <param name="Frames">The frames, innermost first; after an error, a stack scan's unreliable frames follow.</param>
/// <param name="End">How it ended.</param>
/// <param name="Reason">Why it stopped, in words ("end of stack", "user mode", "frame 12: return address 0x… is not
/// kernel text").</param>
/// <param name="UserRegisters">The user-mode registers it stopped at, or null.</param>
internal sealed record UnwindResult(IReadOnlyList<UnwoundFrame> Frames, UnwindEnd End, string Reason, Registers? UserRegisters);
