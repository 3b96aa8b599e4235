using System.Globalization;
using KvmTyped.Linux.Kernel.Arm64;
using KvmTyped.Types;

namespace KvmTyped.Linux.Unwind;

/// <summary>The arm64 frame-pointer unwinder (arch/arm64/kernel/stacktrace.c as of Linux 6.1). Every function's
/// prologue pushes a frame record {x29, x30} and points x29 at it, so the records form a chain: each holds the
/// caller's record and the return address into the caller. Return addresses saved by functions built with pointer
/// authentication carry a PAC in their top bits, which <see cref="StripPac"/> removes as the kernel's
/// ptrauth_strip_insn_pac does (with VMCOREINFO's <c>KERNELPACMASK</c>).</summary>
/// <remarks>
/// <para>Exception entry (kernel_entry in entry.S) saves a struct pt_regs and builds a frame record in it,
/// <c>pt_regs.stackframe</c>: {x29, elr} for an exception taken from EL1, so the chain runs on through the interrupted
/// function; zeros for one taken from EL0 at the top of the task's stack (task_pt_regs), the "final frame" every
/// task's chain ends at, whose registers are the user-mode ones. The kernel of 6.1 does not mark exception frames;
/// here a record reached from a return address into the exception vectors' entry code (<c>.entry.text</c>) that
/// lies in a pt_regs whose pc and x29 it repeats is one: its frame is the interrupted pc, exact, with the registers
/// saved there.</para>
/// <para>A record is 8-byte aligned and lies on a stack the trace may use; each lies above the one before on the same
/// stack, and a stack left is never returned to (the kernel's unwind_consume_stack), so every walk ends; at most
/// <see cref="MaxFrames"/> frames are taken. After a failure the rest of the stack is scanned for kernel text, as on
/// x86.</para>
/// <para>From registers (a dump's NT_PRSTATUS), the first frame is the pc. The link register then names the caller
/// when the function at pc has not pushed its record (a leaf function, a prologue or an epilogue, or a CPU stopped at
/// an exception vector before the entry code saved anything): when x30 is kernel text outside pc's function and is
/// not the return address the record at x29 holds, it is a frame of its own. The kernel's own unwinder leaves it
/// out; a trace here shows it, so a function interrupted there is named.</para>
/// </remarks>
internal sealed class Arm64FramePointerUnwinder
{
    /// <summary>The most frames a trace takes.</summary>
    public const int MaxFrames = 1024;

    /// <summary>PSR_MODE_MASK: pstate's exception level and stack pointer selection; 0 is EL0 (user mode), for AArch64
    /// and AArch32 tasks alike.</summary>
    public const ulong PstateModeMask = 0xf;

    private const ulong RecordSize = 16;

    private readonly IKernelMemory _memory;
    private readonly Func<ulong, bool> _isText;
    private readonly Func<ulong, bool> _isEntryText;
    private readonly Func<ulong, ulong?> _functionStart;
    private readonly ulong _pacMask;

    /// <summary>An unwinder over <paramref name="memory"/>, which places the arm64 struct pt_regs and task_struct.</summary>
    /// <param name="memory">Kernel memory.</param>
    /// <param name="isText">Whether an address is kernel or module code.</param>
    /// <param name="isEntryText">Whether an address is in the exception entry code (<c>__entry_text_start</c> ..
    /// <c>__entry_text_end</c>), whose calls are made with a pt_regs frame record in x29.</param>
    /// <param name="functionStart">The start of the function holding an address, or null when unknown.</param>
    /// <param name="pacMask">The bits a pointer authentication code may occupy in a kernel address (VMCOREINFO
    /// <c>NUMBER(KERNELPACMASK)</c>; GENMASK(63, VA_BITS) where that is absent).</param>
    public Arm64FramePointerUnwinder(IKernelMemory memory, Func<ulong, bool> isText, Func<ulong, bool> isEntryText, Func<ulong, ulong?> functionStart, ulong pacMask)
    {
        _memory = memory;
        _isText = isText;
        _isEntryText = isEntryText;
        _functionStart = functionStart;
        _pacMask = pacMask;
    }

    /// <summary>ptrauth_strip_insn_pac: a kernel address (bit 55 set) gets the PAC bits set, a user address cleared.</summary>
    public ulong StripPac(ulong address) => (address & (1UL << 55)) != 0 ? address | _pacMask : address & ~_pacMask;

    /// <summary>Unwinds from a CPU's registers (x0..x30, sp, pc, pstate).</summary>
    /// <param name="regs">The registers.</param>
    /// <param name="stacks">The stacks the trace may use.</param>
    /// <param name="finalFrame">The task's final frame record (task_pt_regs(task)->stackframe), or null when the task
    /// is unknown.</param>
    public UnwindResult FromRegisters(Registers regs, StackSet stacks, ulong? finalFrame)
    {
        ArgumentNullException.ThrowIfNull(regs);
        ArgumentNullException.ThrowIfNull(stacks);
        if (!regs.TryGet("pc", out var pc) || !regs.TryGet("x29", out var fp) || !regs.TryGet("sp", out var sp) || !regs.TryGet("pstate", out var pstate))
            return new UnwindResult([], UnwindEnd.Error, "the registers have no pc, sp, x29 or pstate", null);
        if ((pstate & PstateModeMask) == 0)
            return new UnwindResult([], UnwindEnd.UserMode, "user mode", regs);
        stacks.Access(sp, 8);
        var frames = new List<UnwoundFrame> { new(pc, sp, true, true, regs, stacks.Locate(sp)?.Name) };
        try
        {
            if (regs.TryGet("x30", out var lr) && LinkFrame(pc, lr, fp) is { } caller)
                frames.Add(new UnwoundFrame(caller, sp, false, true, null, stacks.Locate(sp)?.Name));
        }
        catch (KvmReadException)
        {
        }
        return Walk(frames, stacks, fp, finalFrame, sp);
    }

    /// <summary>Unwinds a task that is not running from what cpu_switch_to saved in its <c>thread.cpu_context</c>: the
    /// first frame is the address it resumes at (in __switch_to), the chain starts at the saved fp.</summary>
    /// <param name="task">The task_struct.</param>
    /// <param name="stacks">The task's stack.</param>
    /// <param name="finalFrame">Its final frame record (task_pt_regs(task)->stackframe), or null.</param>
    public UnwindResult FromSwitchedOut(ulong task, StackSet stacks, ulong? finalFrame)
    {
        ArgumentNullException.ThrowIfNull(stacks);
        ulong pc, fp, sp;
        Registers saved;
        try
        {
            var c = task_struct___arm64.At(_memory, task).thread.cpu_context;
            (pc, fp, sp) = (StripPac(c.pc), c.fp, c.sp);
            saved = new Registers(
            [
                new("x19", c.x19), new("x20", c.x20), new("x21", c.x21), new("x22", c.x22), new("x23", c.x23), new("x24", c.x24),
                new("x25", c.x25), new("x26", c.x26), new("x27", c.x27), new("x28", c.x28), new("x29", fp), new("sp", sp), new("pc", pc),
            ], false);
        }
        catch (KvmReadException e)
        {
            return new UnwindResult([], UnwindEnd.Error, $"thread.cpu_context cannot be read: {e.Message}", null);
        }
        if (!_isText(pc))
            return new UnwindResult([], UnwindEnd.Error, $"frame 0: return address 0x{Hex(pc)} is not kernel text", null);
        stacks.Access(sp, 8);
        var frames = new List<UnwoundFrame> { new(pc, sp, false, true, saved, stacks.Current?.Name ?? stacks.Locate(sp)?.Name) };
        return Walk(frames, stacks, fp, finalFrame, sp);
    }

    /// <summary>Follows the chain of records from <paramref name="fp"/>, after <paramref name="frames"/> (the last of
    /// which tells whether the next record was pushed by a call from the entry code).</summary>
    private UnwindResult Walk(List<UnwoundFrame> frames, StackSet stacks, ulong fp, ulong? finalFrame, ulong lastSp)
    {
        var regsSize = pt_regs.SizeOf(_memory);
        var stackframeAt = pt_regs.OffsetOf(_memory, "stackframe");
        ulong prevFp = 0;
        StackRange? prevStack = null;
        try
        {
            while (true)
            {
                if (frames.Count >= MaxFrames)
                    return Fail(frames, stacks, lastSp, $"more than {MaxFrames} frames");
                if (fp == 0)
                    return new UnwindResult(frames, UnwindEnd.EndOfStack, "end of stack", null);
                if (finalFrame is { } final && fp == final)
                    return Final(frames, stacks, fp - stackframeAt, regsSize);
                if ((fp & 7) != 0)
                    return Fail(frames, stacks, lastSp, $"frame {frames.Count}: frame pointer 0x{Hex(fp)} is not 8-byte aligned");
                if (!stacks.Access(fp, RecordSize))
                    return Fail(frames, stacks, lastSp, $"frame {frames.Count}: frame pointer 0x{Hex(fp)}: {stacks.Failure}");
                if (prevStack is not null && stacks.Current == prevStack && fp <= prevFp)
                    return Fail(frames, stacks, lastSp, $"frame {frames.Count}: frame pointer 0x{Hex(fp)} goes down the stack (the previous record is at 0x{Hex(prevFp)})");
                prevStack = stacks.Current;
                prevFp = fp;
                var next = Word(fp);
                var lr = Word(fp + 8);
                if (next == 0 && lr == 0)
                    return new UnwindResult(frames, UnwindEnd.EndOfStack, "end of stack", null);
                if (_isEntryText(frames[^1].Ip) && fp >= stackframeAt && ExceptionFrame(fp - stackframeAt, regsSize, next, lr, stacks) is { } regs)
                {
                    regs.TryGet("pstate", out var pstate);
                    if ((pstate & PstateModeMask) == 0)
                        return new UnwindResult(frames, UnwindEnd.UserMode, "user mode", regs);
                    regs.TryGet("pc", out var pc);
                    regs.TryGet("sp", out var interruptedSp);
                    lastSp = fp + RecordSize;
                    if (!_isText(pc))
                        return Fail(frames, stacks, lastSp, $"frame {frames.Count}: the exception frame's pc 0x{Hex(pc)} is not kernel text");
                    frames.Add(new UnwoundFrame(pc, interruptedSp, true, true, regs, stacks.Current?.Name));
                    if (regs.TryGet("x30", out var interruptedLr) && LinkFrame(pc, interruptedLr, next) is { } caller)
                        frames.Add(new UnwoundFrame(caller, interruptedSp, false, true, null, stacks.Current?.Name));
                    fp = next;
                    continue;
                }
                var ret = StripPac(lr);
                lastSp = fp + RecordSize;
                if (!_isText(ret))
                    return Fail(frames, stacks, lastSp, $"frame {frames.Count}: return address 0x{Hex(ret)} is not kernel text");
                frames.Add(new UnwoundFrame(ret, fp, false, true, null, stacks.Current?.Name));
                fp = next;
            }
        }
        catch (KvmReadException e)
        {
            return Fail(frames, stacks, lastSp, $"frame {frames.Count}: stack memory cannot be read: {e.Message}");
        }
    }

    /// <summary>The chain reached the task's final record: the registers around it are the user-mode ones (a task that
    /// entered from user mode), a kernel thread's (pstate EL1h, set by copy_thread) or an idle task's (zeros: the boot
    /// code built only the record), whose stacks end here.</summary>
    private UnwindResult Final(List<UnwoundFrame> frames, StackSet stacks, ulong regsAt, ulong regsSize)
    {
        if (!stacks.Access(regsAt, regsSize))
            return new UnwindResult(frames, UnwindEnd.EndOfStack, "end of stack", null);
        var regs = ReadRegs(regsAt);
        regs.TryGet("pstate", out var pstate);
        regs.TryGet("pc", out var pc);
        regs.TryGet("sp", out var sp);
        return (pstate & PstateModeMask) == 0 && (pc | sp | pstate) != 0
            ? new UnwindResult(frames, UnwindEnd.UserMode, "user mode", regs)
            : new UnwindResult(frames, UnwindEnd.EndOfStack, "end of stack", null);
    }

    /// <summary>The pt_regs at <paramref name="regsAt"/> when the record {<paramref name="next"/>, <paramref name="lr"/>}
    /// is its stackframe: it lies on the stack, and its pc and x29 are the record's (kernel_entry writes {x29, elr});
    /// else null.</summary>
    private Registers? ExceptionFrame(ulong regsAt, ulong regsSize, ulong next, ulong lr, StackSet stacks)
    {
        if (stacks.Current is not { } current || !current.Contains(regsAt, regsSize))
            return null;
        var regs = ReadRegs(regsAt);
        return regs.TryGet("pc", out var pc) && pc == lr && regs.TryGet("x29", out var x29) && x29 == next ? regs : null;
    }

    /// <summary>The caller x30 names, when the function at <paramref name="pc"/> has not (or no longer) recorded it: x30
    /// is kernel text outside pc's function and not the return address in the record at <paramref name="fp"/>.</summary>
    private ulong? LinkFrame(ulong pc, ulong lr, ulong fp)
    {
        var caller = StripPac(lr);
        if (caller == 0 || !_isText(caller))
            return null;
        var start = _functionStart(pc);
        if (start is null || _functionStart(caller - 1) == start)
            return null;
        if (fp != 0 && (fp & 7) == 0 && PerCpu.TryReadWord(_memory, fp + 8, 8, out var recorded) && StripPac(recorded) == caller)
            return null;
        return caller;
    }

    private Registers ReadRegs(ulong at)
    {
        var r = pt_regs.At(_memory, at);
        var values = new List<KeyValuePair<string, ulong>>(34);
        var x = r.regs;
        for (var i = 0; i < 31; i++)
            values.Add(new("x" + i.ToString(CultureInfo.InvariantCulture), x[i]));
        values.Add(new("sp", r.sp));
        values.Add(new("pc", r.pc));
        values.Add(new("pstate", r.pstate));
        return new Registers(values, full: true, at);
    }

    private ulong Word(ulong address) =>
        PerCpu.TryReadWord(_memory, address, 8, out var value) ? value : throw new KvmReadException(address, $"stack word at 0x{Hex(address)} cannot be read");

    private UnwindResult Fail(List<UnwoundFrame> frames, StackSet stacks, ulong from, string reason)
    {
        StackScan.Append(frames, _memory, stacks, from, 8, _isText, OrcUnwinder.MaxScannedFrames, StripPac);
        return new UnwindResult(frames, UnwindEnd.Error, reason, null);
    }

    private static string Hex(ulong v) => v.ToString("x", CultureInfo.InvariantCulture);
}
