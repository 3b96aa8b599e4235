using System.Globalization;
using KvmTyped.Types;

namespace KvmTyped.Linux.Unwind;

/// <summary>The x86 frame-pointer unwinder (arch/x86/kernel/unwind_frame.c), for i386 kernels and x86-64 kernels built
/// without ORC: each frame starts with the caller's saved bp and the return address above it. Entry code marks a
/// frame pointer that points at a struct pt_regs (an interrupt or exception frame) instead: on i386 by clearing its
/// top bit, on x86-64 by setting its lowest; the walk crosses such frames and goes on with the interrupted context's
/// bp. The frame right below the task's user-mode registers (task_pt_regs) is the last one: the registers above it
/// end the trace in user mode. Every frame must lie above the previous one on its stack or on a stack not visited
/// before, so every walk ends; at most <see cref="MaxFrames"/> frames are taken.</summary>
internal sealed class FramePointerUnwinder
{
    /// <summary>The most frames a trace takes.</summary>
    public const int MaxFrames = 1024;

    private readonly IKernelMemory _memory;
    private readonly Func<ulong, bool> _isText;
    private readonly int _word;
    private readonly bool _lp64;

    /// <summary>An unwinder over <paramref name="memory"/>, which places struct pt_regs and inactive_task_frame of the
    /// kernel's architecture (i386 under ILP32, x86-64 under LP64).</summary>
    public FramePointerUnwinder(IKernelMemory memory, Func<ulong, bool> isText)
    {
        _memory = memory;
        _isText = isText;
        _lp64 = memory.DataModel == DataModel.LP64;
        _word = _lp64 ? 8 : 4;
    }

    /// <summary>Unwinds from a CPU's registers (a dump's NT_PRSTATUS).</summary>
    /// <param name="regs">The registers.</param>
    /// <param name="stacks">The stacks the trace may use.</param>
    /// <param name="taskPtRegs">Where the task's user-mode registers are (task_pt_regs), or null.</param>
    public UnwindResult FromRegisters(Registers regs, StackSet stacks, ulong? taskPtRegs)
    {
        ArgumentNullException.ThrowIfNull(regs);
        if (regs.IsUserMode)
            return new UnwindResult([], UnwindEnd.UserMode, "user mode", regs);
        if (!regs.TryGet("ip", out var ip) || !regs.TryGet("bp", out var bp))
            return new UnwindResult([], UnwindEnd.Error, "the registers have no ip or bp", null);
        regs.TryGet("sp", out var sp);
        stacks.Access(sp, (ulong)_word);
        var frames = new List<UnwoundFrame> { new(ip, sp, true, true, regs, stacks.Locate(sp)?.Name) };
        return Walk(frames, stacks, bp, taskPtRegs, sp);
    }

    /// <summary>Unwinds a task that is not running from the frame __switch_to_asm left at its thread.sp.</summary>
    public UnwindResult FromSwitchedOut(ulong threadSp, StackSet stacks, ulong? taskPtRegs)
    {
        ulong ip, bp, size;
        Registers saved;
        try
        {
            if (_lp64)
            {
                size = Kernel.X86_64.inactive_task_frame.SizeOf(_memory);
                if (!stacks.Access(threadSp, size))
                    return new UnwindResult([], UnwindEnd.Error, $"thread.sp 0x{Hex(threadSp)}: {stacks.Failure}", null);
                var f = Kernel.X86_64.inactive_task_frame.At(_memory, threadSp);
                (ip, bp) = (f.ret_addr, f.bp);
                saved = new Registers([new("r15", f.r15), new("r14", f.r14), new("r13", f.r13), new("r12", f.r12), new("bx", f.bx), new("bp", bp), new("ip", ip), new("sp", threadSp + size)], false, threadSp);
            }
            else
            {
                size = Kernel.I386.inactive_task_frame.SizeOf(_memory);
                if (!stacks.Access(threadSp, size))
                    return new UnwindResult([], UnwindEnd.Error, $"thread.sp 0x{Hex(threadSp)}: {stacks.Failure}", null);
                var f = Kernel.I386.inactive_task_frame.At(_memory, threadSp);
                (ip, bp) = (f.ret_addr, f.bp);
                saved = new Registers([new("flags", f.flags), new("si", f.si), new("di", f.di), new("bx", f.bx), new("bp", bp), new("ip", ip), new("sp", threadSp + size)], false, threadSp);
            }
        }
        catch (KvmReadException e)
        {
            return new UnwindResult([], UnwindEnd.Error, $"the switch frame at thread.sp 0x{Hex(threadSp)} cannot be read: {e.Message}", null);
        }
        if (!_isText(ip))
            return new UnwindResult([], UnwindEnd.Error, $"frame 0: return address 0x{Hex(ip)} is not kernel text", null);
        var frames = new List<UnwoundFrame> { new(ip, threadSp + size, false, true, saved, stacks.Current?.Name) };
        return Walk(frames, stacks, bp, taskPtRegs, threadSp + size);
    }

    private UnwindResult Walk(List<UnwoundFrame> frames, StackSet stacks, ulong nextBp, ulong? taskPtRegs, ulong lastSp)
    {
        ulong bp = 0;            // the current frame (0: the current frame is a register set)
        Registers? regs = null;  // the register set the walk stands on, if any
        ulong prevEnd = 0;       // where the previous frame ends (0: no frame yet)
        StackRange? prevStack = null;
        var first = true;        // nextBp is the starting frame pointer
        var word = (ulong)_word;
        var regsSize = _lp64 ? Kernel.X86_64.pt_regs.SizeOf(_memory) : Kernel.I386.pt_regs.SizeOf(_memory);
        try
        {
            while (true)
            {
                if (frames.Count >= MaxFrames)
                    return Fail(frames, stacks, lastSp, $"more than {MaxFrames} frames");
                // is_last_task_frame: the frame right below the user-mode registers (or a copy the prologue of a
                // function that realigned the stack pushed one word lower).
                if (bp != 0 && taskPtRegs is { } top && (bp == top - 2 * word || (bp == top - 3 * word && Word(bp + word) == Word(top - word))))
                {
                    if (!stacks.Access(top, regsSize))
                        return new UnwindResult(frames, UnwindEnd.EndOfStack, "end of stack", null);
                    var user = ReadRegs(top);
                    return user.IsUserMode
                        ? new UnwindResult(frames, UnwindEnd.UserMode, "user mode", user)
                        : new UnwindResult(frames, UnwindEnd.EndOfStack, "end of stack", null);
                }
                if (!first)
                    nextBp = regs is not null ? (regs.TryGet("bp", out var rbp) ? rbp : 0) : Word(bp);
                first = false;
                if (nextBp == 0)
                    return new UnwindResult(frames, UnwindEnd.EndOfStack, "end of stack", null);
                var regsAt = Decode(nextBp);
                var frame = regsAt ?? nextBp;
                var length = regsAt is null ? 2 * word : regsSize;
                if (!stacks.Access(frame, length))
                    return Fail(frames, stacks, lastSp, $"frame {frames.Count}: frame pointer 0x{Hex(nextBp)}: {stacks.Failure}");
                if (prevEnd != 0 && stacks.Current == prevStack && frame < prevEnd)
                    return Fail(frames, stacks, lastSp, $"frame {frames.Count}: frame pointer 0x{Hex(nextBp)} goes down the stack (the previous frame ends at 0x{Hex(prevEnd)})");
                prevStack = stacks.Current;
                ulong ip;
                if (regsAt is { } at)
                {
                    regs = ReadRegs(at);
                    bp = 0;
                    prevEnd = at + regsSize;
                    if (regs.IsUserMode)
                        return new UnwindResult(frames, UnwindEnd.UserMode, "user mode", regs);
                    if (taskPtRegs is { } ptRegs && at == ptRegs)
                        return new UnwindResult(frames, UnwindEnd.EndOfStack, "end of stack", null);
                    regs.TryGet("ip", out ip);
                    lastSp = regs.TryGet("sp", out var rsp) ? rsp : at;
                }
                else
                {
                    bp = nextBp;
                    regs = null;
                    prevEnd = bp + 2 * word;
                    ip = Word(bp + word);
                    lastSp = bp + 2 * word;
                }
                if (!_isText(ip))
                    return Fail(frames, stacks, lastSp, $"frame {frames.Count}: return address 0x{Hex(ip)} is not kernel text");
                frames.Add(new UnwoundFrame(ip, lastSp, regs is not null, true, regs, stacks.Current?.Name));
            }
        }
        catch (KvmReadException e)
        {
            return Fail(frames, stacks, lastSp, $"frame {frames.Count}: stack memory cannot be read: {e.Message}");
        }
    }

    /// <summary>decode_frame_pointer: the pt_regs an entry frame's bp points at, or null for a plain frame.</summary>
    private ulong? Decode(ulong bp)
    {
        if (_lp64)
            return (bp & 1) != 0 ? bp & ~1UL : null;
        return (bp & 0x8000_0000) == 0 ? bp | 0x8000_0000 : null;
    }

    private Registers ReadRegs(ulong at)
    {
        if (_lp64)
            return PtRegsSegments.ReadRegisters(_memory, at);
        var p = Kernel.I386.pt_regs.At(_memory, at);
        return new Registers(
        [
            new("ip", p.ip), new("sp", p.sp), new("flags", p.flags), new("ax", p.ax), new("bx", p.bx), new("cx", p.cx), new("dx", p.dx),
            new("si", p.si), new("di", p.di), new("bp", p.bp), new("orig_ax", p.orig_ax), new("cs", p.cs), new("ss", p.ss), new("ds", p.ds),
            new("es", p.es), new("fs", p.fs), new("gs", p.gs),
        ], full: true, at) { Vm86 = true };
    }

    private ulong Word(ulong address) =>
        PerCpu.TryReadWord(_memory, address, _word, out var value) ? value : throw new KvmReadException(address, $"stack word at 0x{Hex(address)} cannot be read");

    private UnwindResult Fail(List<UnwoundFrame> frames, StackSet stacks, ulong from, string reason)
    {
        StackScan.Append(frames, _memory, stacks, from, _word, _isText, OrcUnwinder.MaxScannedFrames);
        return new UnwindResult(frames, UnwindEnd.Error, reason, null);
    }

    private static string Hex(ulong v) => v.ToString("x", CultureInfo.InvariantCulture);
}
