using System.Globalization;
using KvmTyped.Arch.X86;
using KvmTyped.Linux.Kernel.X86_64;
using KvmTyped.Types;

namespace KvmTyped.Linux.Unwind;

/// <summary>The x86-64 ORC unwinder, as the kernel's arch/x86/kernel/unwind_orc.c walks a stack: at each code address
/// the ORC entry says where the caller's stack pointer is (sp, bp, a register of an interrupted context, or the word
/// a stack switch left at the top of an IRQ stack), whether the frame is a call (the return address below it) or an
/// entry frame (a full struct pt_regs, or the hardware's iret frame), and where bp was saved. Stack memory is read only
/// on the stacks the trace may use (<see cref="StackSet"/>); the walk ends at the bottom of a stack, at user-mode
/// registers, or with the reason it cannot go on — never in a loop: every frame moves up its stack or onto a stack
/// not visited before, and at most <see cref="MaxFrames"/> frames are taken.</summary>
/// <remarks>Where no ORC entry covers an address the kernel guesses a frame-pointer frame and marks the unwind
/// unreliable; here the trace ends there with the reason, followed by a scan of the rest of the stack for words that
/// are kernel text, shown as unreliable frames (the oops's "?" lines).</remarks>
internal sealed class OrcUnwinder
{
    /// <summary>The most frames a trace takes.</summary>
    public const int MaxFrames = 1024;

    /// <summary>The most unreliable frames a stack scan adds after a failed unwind.</summary>
    public const int MaxScannedFrames = 64;

    private readonly IKernelMemory _memory;
    private readonly IOrcLookup _orc;
    private readonly Func<ulong, bool> _isText;
    private readonly ulong _retFromFork;
    private readonly Func<ulong, ulong?> _functionStart;

    /// <summary>The most stack words searched for the return address of a function without ORC data.</summary>
    public const int MaxResyncWords = 512;

    /// <summary>An unwinder over <paramref name="memory"/> (which places struct pt_regs and inactive_task_frame).</summary>
    /// <param name="memory">Kernel memory.</param>
    /// <param name="orc">The ORC tables.</param>
    /// <param name="isText">Whether an address is kernel or module code.</param>
    /// <param name="retFromFork">ret_from_fork: where a task that never ran resumes (its ip is then exact), or 0.</param>
    /// <param name="functionStart">The start of the function holding a code address (its symbol), or null.</param>
    public OrcUnwinder(IKernelMemory memory, IOrcLookup orc, Func<ulong, bool> isText, ulong retFromFork, Func<ulong, ulong?> functionStart)
    {
        _memory = memory;
        _orc = orc;
        _isText = isText;
        _retFromFork = retFromFork;
        _functionStart = functionStart;
    }

    /// <summary>Unwinds from a CPU's registers (a dump's NT_PRSTATUS).</summary>
    public UnwindResult FromRegisters(Registers regs, StackSet stacks)
    {
        ArgumentNullException.ThrowIfNull(regs);
        if (regs.IsUserMode)
            return new UnwindResult([], UnwindEnd.UserMode, "user mode", regs);
        if (!regs.TryGet("ip", out var ip) || !regs.TryGet("sp", out var sp))
            return new UnwindResult([], UnwindEnd.Error, "the registers have no ip or sp", null);
        regs.TryGet("bp", out var bp);
        stacks.Access(sp, 8); // unwind_start's get_stack_info: the stack the registers are on is the first one visited
        var state = new State { Ip = ip, Sp = sp, Bp = bp, Signal = true, Regs = regs, Stacks = stacks };
        return Walk(state, new UnwoundFrame(ip, sp, true, true, regs, Place(stacks, sp)));
    }

    /// <summary>Unwinds a task that is not running from the frame __switch_to_asm left at its thread.sp (struct
    /// inactive_task_frame): its return address, its bp, and the stack above it.</summary>
    public UnwindResult FromSwitchedOut(ulong threadSp, StackSet stacks)
    {
        inactive_task_frame frame;
        ulong ip, bp, size;
        try
        {
            size = inactive_task_frame.SizeOf(_memory);
            if (!stacks.Access(threadSp, size))
                return new UnwindResult([], UnwindEnd.Error, $"thread.sp 0x{Hex(threadSp)}: {stacks.Failure}", null);
            frame = inactive_task_frame.At(_memory, threadSp);
            ip = frame.ret_addr;
            bp = frame.bp;
        }
        catch (KvmReadException e)
        {
            return new UnwindResult([], UnwindEnd.Error, $"the switch frame at thread.sp 0x{Hex(threadSp)} cannot be read: {e.Message}", null);
        }
        var sp = threadSp + size;
        var signal = _retFromFork != 0 && ip == _retFromFork;
        var saved = new Registers(
        [
            new("r15", frame.r15), new("r14", frame.r14), new("r13", frame.r13), new("r12", frame.r12), new("bx", frame.bx), new("bp", bp),
            new("ip", ip), new("sp", sp),
        ], full: false, threadSp);
        var state = new State { Ip = ip, Sp = sp, Bp = bp, Signal = signal, Stacks = stacks };
        if (!_isText(ip))
            return new UnwindResult([], UnwindEnd.Error, $"frame 0: return address 0x{Hex(ip)} is not kernel text", null);
        return Walk(state, new UnwoundFrame(ip, sp, signal, true, saved, Place(stacks, sp)));
    }

    private sealed class State
    {
        public ulong Ip, Sp, Bp;
        public bool Signal, FullRegs;
        public Registers? Regs, PrevRegs;
        public required StackSet Stacks;
    }

    private UnwindResult Walk(State s, UnwoundFrame first)
    {
        var frames = new List<UnwoundFrame> { first };
        s.FullRegs = s.Regs is { Full: true };
        while (true)
        {
            if (frames.Count >= MaxFrames)
                return Fail(frames, s, $"more than {MaxFrames} frames");
            string? error;
            Registers? entered;
            bool end;
            try
            {
                (end, entered, error) = Step(s);
            }
            catch (KvmReadException e)
            {
                (end, entered, error) = (false, null, "stack memory cannot be read: " + e.Message);
            }
            if (error is not null)
                return Fail(frames, s, $"frame {frames.Count}: {error}");
            if (end)
                return new UnwindResult(frames, UnwindEnd.EndOfStack, "end of stack", null);
            if (s.Regs is { IsUserMode: true } user)
                return new UnwindResult(frames, UnwindEnd.UserMode, "user mode", user);
            if (!_isText(s.Ip))
                return Fail(frames, s, $"frame {frames.Count}: return address 0x{Hex(s.Ip)} is not kernel text");
            frames.Add(new UnwoundFrame(s.Ip, s.Sp, entered is not null, true, entered, Place(s.Stacks, s.Sp)));
        }
    }

    /// <summary>unwind_next_frame: one step. Returns whether the stack ended normally, the registers of an entry
    /// frame just crossed, or why the step failed.</summary>
    private (bool End, Registers? Entered, string? Error) Step(State s)
    {
        var at = s.Signal ? s.Ip : s.Ip - 1;
        var found = _orc.Find(at, out var why);
        if (found is not { } orc || orc.Type == OrcType.Undefined)
        {
            // Functions objtool leaves without ORC data (STACK_FRAME_NON_STANDARD: __crash_kexec, whose
            // crash_setup_regs() records a kdump's panic registers) are left through the return address of their
            // caller's call, found on the stack.
            if (Resync(s, at))
                return (false, null, null);
            return (false, null, found is null
                ? $"no ORC entry for 0x{Hex(s.Ip)} ({why})"
                : $"the ORC entry for 0x{Hex(s.Ip)} says the stack cannot be unwound there, and no return address to it was found on the stack");
        }
        if (orc.Type == OrcType.EndOfStack)
            return (true, null, null);
        var prevSp = s.Sp;
        var prevStack = s.Stacks.Current;
        s.Signal = orc.Signal;
        ulong sp;
        var indirect = false;
        switch (orc.SpRegister)
        {
            case OrcRegister.Sp:
                sp = s.Sp + (ulong)(long)orc.SpOffset;
                break;
            case OrcRegister.Bp:
                sp = s.Bp + (ulong)(long)orc.SpOffset;
                break;
            case OrcRegister.SpIndirect:
                sp = s.Sp;
                indirect = true;
                break;
            case OrcRegister.BpIndirect:
                sp = s.Bp + (ulong)(long)orc.SpOffset;
                indirect = true;
                break;
            case OrcRegister.R10 or OrcRegister.R13 or OrcRegister.Di or OrcRegister.Dx:
                var name = orc.SpRegister switch { OrcRegister.R10 => "r10", OrcRegister.R13 => "r13", OrcRegister.Di => "di", _ => "dx" };
                if (!GetRegister(s, name, out sp))
                    return (false, null, $"the ORC entry for 0x{Hex(s.Ip)} needs {name}, which this frame does not have");
                break;
            default:
                return (false, null, $"the ORC entry for 0x{Hex(s.Ip)} has unknown stack base register {(int)orc.SpRegister}");
        }
        if (indirect)
        {
            if (!Deref(s, sp, out sp))
                return (false, null, s.Stacks.Failure);
            if (orc.SpRegister == OrcRegister.SpIndirect)
                sp += (ulong)(long)orc.SpOffset;
        }
        Registers? entered = null;
        switch (orc.Type)
        {
            case OrcType.Call:
            {
                if (!Deref(s, sp - 8, out var ip))
                    return (false, null, s.Stacks.Failure);
                s.Ip = ip;
                s.Sp = sp;
                s.Regs = null;
                s.PrevRegs = null;
                break;
            }
            case OrcType.Regs:
            {
                var size = pt_regs.SizeOf(_memory);
                if (!s.Stacks.Access(sp, size))
                    return (false, null, $"the registers at 0x{Hex(sp)}: {s.Stacks.Failure}");
                var regs = ReadPtRegs(sp);
                regs.TryGet("ip", out s.Ip);
                regs.TryGet("sp", out s.Sp);
                s.Regs = regs;
                s.PrevRegs = null;
                s.FullRegs = true;
                entered = regs;
                break;
            }
            case OrcType.RegsPartial:
            {
                var ipOffset = pt_regs.OffsetOf(_memory, "ip");
                var iretSize = pt_regs.SizeOf(_memory) - ipOffset;
                if (!s.Stacks.Access(sp, iretSize))
                    return (false, null, $"the iret frame at 0x{Hex(sp)}: {s.Stacks.Failure}");
                var regs = ReadIretFrame(sp - ipOffset);
                regs.TryGet("ip", out s.Ip);
                regs.TryGet("sp", out s.Sp);
                if (s.FullRegs)
                    s.PrevRegs = s.Regs;
                s.Regs = regs;
                s.FullRegs = false;
                entered = regs;
                break;
            }
            default:
                return (false, null, $"the ORC entry for 0x{Hex(at)} has unknown type {orc.RawType}");
        }
        switch (orc.BpRegister)
        {
            case OrcRegister.Undefined:
                if (GetRegister(s, "bp", out var bp))
                    s.Bp = bp;
                break;
            case OrcRegister.PrevSp:
                if (!Deref(s, sp + (ulong)(long)orc.BpOffset, out s.Bp))
                    return (false, null, s.Stacks.Failure);
                break;
            case OrcRegister.Bp:
                if (!Deref(s, s.Bp + (ulong)(long)orc.BpOffset, out s.Bp))
                    return (false, null, s.Stacks.Failure);
                break;
            default:
                return (false, null, $"the ORC entry for 0x{Hex(at)} has unknown frame base register {(int)orc.BpRegister}");
        }
        if (prevStack is { } before && s.Stacks.Current is { } now && now == before && now.Contains(s.Sp, 8) && s.Sp <= prevSp)
            return (false, null, $"the stack goes the wrong way at 0x{Hex(at)} (sp 0x{Hex(s.Sp)} after 0x{Hex(prevSp)})");
        return (false, entered, null);
    }

    /// <summary>Where ORC has no rule for <paramref name="at"/>: the first word above sp on the current stack that
    /// returns right behind a direct call (<c>call rel32</c>) of the function holding <paramref name="at"/> is that
    /// function's return address; the walk goes on from there with the caller's ORC data. A stale return address of
    /// another call cannot pass: the call must name this function.</summary>
    private bool Resync(State s, ulong at)
    {
        if (_functionStart(at) is not { } start || s.Stacks.Current is not { } stack || !stack.Contains(s.Sp, 8))
            return false;
        Span<byte> call = stackalloc byte[5];
        for (var i = 0; i < MaxResyncWords; i++)
        {
            var slot = s.Sp + (ulong)i * 8;
            if (!stack.Contains(slot, 8) || !PerCpu.TryReadWord(_memory, slot, 8, out var word))
                return false;
            if (word < 5 || !_isText(word) || !_memory.TryReadVirtual(word - 5, call, out _) || call[0] != 0xe8)
                continue;
            var target = unchecked(word + (ulong)(long)System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(call[1..]));
            if (target != start)
                continue;
            s.Ip = word;
            s.Sp = slot + 8;
            s.Signal = false;
            s.Regs = null;
            s.PrevRegs = null;
            return true;
        }
        return false;
    }

    /// <summary>get_reg: a register of the frame's full registers, or of the full set an iret frame was found above.</summary>
    private static bool GetRegister(State s, string name, out ulong value)
    {
        value = 0;
        if (s.Regs is null)
            return false;
        if (s.FullRegs)
            return s.Regs.TryGet(name, out value);
        return s.PrevRegs is not null && s.PrevRegs.TryGet(name, out value);
    }

    private bool Deref(State s, ulong address, out ulong value)
    {
        value = 0;
        if (!s.Stacks.Access(address, 8))
            return false;
        if (!PerCpu.TryReadWord(_memory, address, 8, out value))
            throw new KvmReadException(address, $"stack word at 0x{Hex(address)} cannot be read");
        return true;
    }

    private Registers ReadPtRegs(ulong at) => PtRegsSegments.ReadRegisters(_memory, at);

    /// <summary>The hardware's iret frame: the members of the pt_regs at <paramref name="regsAt"/> from ip on.</summary>
    private Registers ReadIretFrame(ulong regsAt)
    {
        var r = pt_regs.At(_memory, regsAt);
        var (cs, ss) = PtRegsSegments.Read(_memory, regsAt);
        return new Registers([new("ip", r.ip), new("sp", r.sp), new("flags", r.flags), new("cs", cs), new("ss", ss)], full: false, regsAt);
    }

    /// <summary>After an unwind fails: the frames so far, then the kernel text addresses left on the stack above the
    /// last good stack pointer, as unreliable frames.</summary>
    private UnwindResult Fail(List<UnwoundFrame> frames, State s, string reason)
    {
        StackScan.Append(frames, _memory, s.Stacks, s.Sp, 8, _isText, MaxScannedFrames);
        return new UnwindResult(frames, UnwindEnd.Error, reason, null);
    }

    private static string? Place(StackSet stacks, ulong sp) => (stacks.Current is { } c && c.Contains(sp, 1) ? c : stacks.Locate(sp))?.Name;

    private static string Hex(ulong v) => v.ToString("x", CultureInfo.InvariantCulture);
}

/// <summary>The oops's fallback: every word on a stack that is a kernel text address, as an unreliable frame.</summary>
internal static class StackScan
{
    /// <summary>Adds, after <paramref name="frames"/>, the words from <paramref name="from"/> to the end of its stack that
    /// are kernel text, at most <paramref name="max"/> of them; each word first passed through <paramref name="strip"/>
    /// when given (arm64 removes the pointer authentication code of a saved return address).</summary>
    public static void Append(List<UnwoundFrame> frames, IKernelMemory memory, StackSet stacks, ulong from, int word, Func<ulong, bool> isText, int max,
        Func<ulong, ulong>? strip = null)
    {
        if (stacks.Locate(from) is not { } stack)
            return;
        var added = 0;
        var at = from - (from - stack.Begin) % (ulong)word;
        for (; at + (ulong)word <= stack.End && added < max; at += (ulong)word)
        {
            if (!PerCpu.TryReadWord(memory, at, word, out var value))
                break;
            if (strip is not null)
                value = strip(value);
            if (value != 0 && isText(value))
            {
                frames.Add(new UnwoundFrame(value, at + (ulong)word, false, false, null, stack.Name));
                added++;
            }
        }
    }
}
