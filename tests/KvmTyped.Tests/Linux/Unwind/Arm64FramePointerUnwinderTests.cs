using KvmTyped.Linux.Unwind;
using KvmTyped.Types;
using Arm64 = KvmTyped.Linux.Kernel.Arm64;

namespace KvmTyped.Tests.Linux.Unwind;

/// <summary>The arm64 frame-record unwinder on stacks built in code, with the real 6.1.0-50-arm64 layouts of pt_regs
/// and cpu_context: record chains with signed return addresses, the final frame at the top of the task's stack, EL1
/// exception frames, the link register of a function that has not pushed its record, stack switches, and damaged
/// chains ending with a reason.</summary>
public class Arm64FramePointerUnwinderTests
{
    private const ulong Code = 0xffff800008010000;
    private const ulong Entry = Code + 0x8000;       // the exception vectors' entry code: [Entry, Entry + 0x1000)
    private const ulong Task = 0xffff800008200000;
    private const ulong Irq = 0xffff800008300000;
    private const ulong Size = 0x4000;
    private const ulong TaskStruct = 0xffff000002000000;
    private const ulong PacMask = 0xffff_0000_0000_0000;
    private const ulong El1h = 0x3c5;                 // pstate: EL1 with SP_EL1, interrupts masked

    private static ulong F(int n) => Code + (ulong)n * 0x100;

    /// <summary>A return address as a function built with pointer authentication saves it: a code in bits 63..56 and
    /// 54..48, bit 55 kept.</summary>
    private static ulong Signed(ulong address) => (address & ~PacMask) | 0x5a80_0000_0000_0000UL | 0x0013_0000_0000_0000UL;

    private sealed class Kernel
    {
        public SparseKernelMemory Raw { get; } = new SparseKernelMemory(DataModel.LP64).Map(Task, (int)Size).Map(Irq, (int)Size).Map(Code, 0x10000).Map(TaskStruct, 0x2000);

        public ViewMemory Memory { get; }

        public Kernel() => Memory = FixtureTypes.Placed(Raw, FixtureTypes.Arm64);

        public ulong RegsSize => Arm64.pt_regs.SizeOf(Memory);

        public ulong StackframeOffset => Arm64.pt_regs.OffsetOf(Memory, "stackframe");

        /// <summary>task_pt_regs: the top of the task stack.</summary>
        public ulong UserRegs => Task + Size - RegsSize;

        /// <summary>task_pt_regs(task)->stackframe.</summary>
        public ulong FinalFrame => UserRegs + StackframeOffset;

        public Arm64FramePointerUnwinder Unwinder() =>
            new(Memory, a => a >= Code && a < Code + 0x10000, a => a >= Entry && a < Entry + 0x1000, a => a >= Code && a < Code + 0x10000 ? a & ~0xffUL : null, PacMask);

        public static StackSet Stacks(bool irq = false) =>
            new(irq
                ? [new StackRange(StackKind.Task, "task", Task, Task + Size), new StackRange(StackKind.HardIrq, "IRQ", Irq, Irq + Size)]
                : [new StackRange(StackKind.Task, "task", Task, Task + Size)]);

        /// <summary>A frame record at <paramref name="fp"/>: the caller's record, then the (signed) return address.</summary>
        public void Record(ulong fp, ulong next, ulong ret, bool sign = true)
        {
            Raw.U64(fp, next);
            Raw.U64(fp + 8, sign ? Signed(ret) : ret);
        }

        /// <summary>A struct pt_regs at <paramref name="at"/>: regs[i] = x[i], then sp, pc, pstate; stackframe as entry
        /// code builds it (zeros from EL0, {x29, pc} from EL1).</summary>
        public void PtRegs(ulong at, ulong pc, ulong sp, ulong pstate, ulong x29 = 0, ulong x30 = 0)
        {
            var regs = Arm64.pt_regs.OffsetOf(Memory, "regs");
            Raw.U64(at + regs + 29 * 8, x29);
            Raw.U64(at + regs + 30 * 8, x30);
            Raw.U64(at + Arm64.pt_regs.OffsetOf(Memory, "sp"), sp);
            Raw.U64(at + Arm64.pt_regs.OffsetOf(Memory, "pc"), pc);
            Raw.U64(at + Arm64.pt_regs.OffsetOf(Memory, "pstate"), pstate);
            var el0 = (pstate & 0xf) == 0;
            Raw.U64(at + StackframeOffset, el0 ? 0 : x29);
            Raw.U64(at + StackframeOffset + 8, el0 ? 0 : pc);
        }

        /// <summary>thread.cpu_context of the task at <see cref="TaskStruct"/>.</summary>
        public void CpuContext(ulong pc, ulong fp, ulong sp, ulong x19)
        {
            var context = TaskStruct + Arm64.task_struct___arm64.OffsetOf(Memory, "thread") + Arm64.thread_struct.OffsetOf(Memory, "cpu_context");
            Raw.U64(context + Arm64.cpu_context.OffsetOf(Memory, "pc"), pc);
            Raw.U64(context + Arm64.cpu_context.OffsetOf(Memory, "fp"), fp);
            Raw.U64(context + Arm64.cpu_context.OffsetOf(Memory, "sp"), sp);
            Raw.U64(context + Arm64.cpu_context.OffsetOf(Memory, "x19"), x19);
        }
    }

    private static Registers NoteRegs(ulong pc, ulong sp, ulong fp, ulong lr, ulong pstate = El1h) =>
        new([new("x29", fp), new("x30", lr), new("sp", sp), new("pc", pc), new("pstate", pstate)], full: true);

    [Fact]
    public void A_chain_of_signed_return_addresses_ends_at_the_user_mode_registers()
    {
        var k = new Kernel();
        var r1 = Task + 0x3000;
        var r2 = Task + 0x3100;
        k.Record(r1, r2, F(1) + 0x10);
        k.Record(r2, k.FinalFrame, F(2) + 0x20);
        k.PtRegs(k.UserRegs, pc: 0x400123, sp: 0xffffc0de0, pstate: 0x80001000);
        var r = k.Unwinder().FromRegisters(NoteRegs(F(0) + 8, Task + 0x2f00, r1, Signed(F(0) + 4)), Kernel.Stacks(), k.FinalFrame);
        Assert.Equal(UnwindEnd.UserMode, r.End);
        // The PAC is gone from every return address; x30 points into pc's own function, so it is no frame.
        Assert.Equal([(F(0) + 8, true), (F(1) + 0x10, false), (F(2) + 0x20, false)], r.Frames.Select(f => (f.Ip, f.Exact)));
        Assert.Equal([Task + 0x2f00, r1, r2], r.Frames.Select(f => f.Sp));
        Assert.All(r.Frames, f => Assert.Equal("task", f.Stack));
        Assert.True(r.UserRegisters!.TryGet("pc", out var pc) && pc == 0x400123);
        Assert.True(r.UserRegisters.TryGet("sp", out var sp) && sp == 0xffffc0de0);
        Assert.True(r.UserRegisters.IsUserMode);
    }

    [Theory]
    [InlineData(0x5UL, 0x0UL, "a kernel thread (EL1h)")]
    [InlineData(0x0UL, 0x0UL, "an idle task (zeros)")]
    public void A_final_frame_whose_registers_are_not_user_mode_ends_the_stack(ulong pstate, ulong pc, string what)
    {
        var k = new Kernel();
        var r1 = Task + 0x3e00;
        k.Record(r1, k.FinalFrame, F(3) + 0x10);
        k.PtRegs(k.UserRegs, pc, 0, pstate);
        var r = k.Unwinder().FromRegisters(NoteRegs(F(0) + 8, Task + 0x3d00, r1, 0), Kernel.Stacks(), k.FinalFrame);
        Assert.True(r.End == UnwindEnd.EndOfStack, what);
        Assert.Equal([F(0) + 8, F(3) + 0x10], r.Frames.Select(f => f.Ip));
        Assert.Null(r.UserRegisters);
    }

    [Fact]
    public void An_el1_exception_frame_is_crossed_through_the_record_in_its_pt_regs()
    {
        var k = new Kernel();
        var handler = Task + 0x2000;           // the handler's record: return into the vector's entry code
        var regs = Task + 0x2100;              // pt_regs saved by kernel_entry 1
        var interrupted = Task + 0x2400;       // the interrupted function's record
        k.Record(handler, regs + k.StackframeOffset, Entry + 0x64);
        // Interrupted at F(5)+0xc, whose x30 holds a return into F(6) that its record (at x29) does not: a function
        // that had not pushed its record, so F(6) is a frame of its own.
        k.PtRegs(regs, pc: F(5) + 0xc, sp: Task + 0x23f0, pstate: 0x60000005, x29: interrupted, x30: Signed(F(6) + 0x18));
        k.Record(interrupted, k.FinalFrame, F(7) + 0x28);
        k.PtRegs(k.UserRegs, pc: 0x400000, sp: 0xfffff000, pstate: 0);
        var r = k.Unwinder().FromRegisters(NoteRegs(F(4) + 4, Task + 0x1ff0, handler, 0), Kernel.Stacks(), k.FinalFrame);
        Assert.Equal(UnwindEnd.UserMode, r.End);
        Assert.Equal([F(4) + 4, Entry + 0x64, F(5) + 0xc, F(6) + 0x18, F(7) + 0x28], r.Frames.Select(f => f.Ip));
        Assert.Equal([true, false, true, false, false], r.Frames.Select(f => f.Exact));
        var saved = r.Frames[2].Registers!;
        Assert.Equal(regs, saved.Address);
        Assert.True(saved.TryGet("pstate", out var pstate) && pstate == 0x60000005);
        Assert.Equal(Task + 0x23f0, r.Frames[2].Sp);
        Assert.False(saved.IsUserMode);
    }

    [Fact]
    public void A_record_after_the_entry_code_that_is_no_pt_regs_is_an_ordinary_record()
    {
        var k = new Kernel();
        var handler = Task + 0x2000;
        var next = Task + 0x2200;
        k.Record(handler, next, Entry + 0x20);
        k.Record(next, 0, F(8) + 4);           // below it, nothing that repeats the record's pc and x29
        var r = k.Unwinder().FromRegisters(NoteRegs(F(4) + 4, Task + 0x1ff0, handler, 0), Kernel.Stacks(), k.FinalFrame);
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal([(F(4) + 4, true), (Entry + 0x20, false), (F(8) + 4, false)], r.Frames.Select(f => (f.Ip, f.Exact)));
    }

    [Fact]
    public void The_link_register_names_the_caller_of_a_function_that_has_not_pushed_its_record()
    {
        var k = new Kernel();
        var r1 = Task + 0x3000;
        k.Record(r1, 0, F(9) + 0x40);
        // A leaf F(3) called from F(4): x29 is F(4)'s record, which holds F(4)'s own return address into F(9).
        var leaf = k.Unwinder().FromRegisters(NoteRegs(F(3) + 8, r1, r1, Signed(F(4) + 0x18)), Kernel.Stacks(), k.FinalFrame);
        Assert.Equal([(F(3) + 8, true), (F(4) + 0x18, false), (F(9) + 0x40, false)], leaf.Frames.Select(f => (f.Ip, f.Exact)));
        // x30 equal to the return address in the record at x29 (a prologue that has already pushed it) is no frame of
        // its own.
        var pushed = k.Unwinder().FromRegisters(NoteRegs(F(3) + 8, r1, r1, Signed(F(9) + 0x40)), Kernel.Stacks(), k.FinalFrame);
        Assert.Equal([F(3) + 8, F(9) + 0x40], pushed.Frames.Select(f => f.Ip));
        // Nor is x30 outside kernel text.
        var stale = k.Unwinder().FromRegisters(NoteRegs(F(3) + 8, r1, r1, 0x4000_1234), Kernel.Stacks(), k.FinalFrame);
        Assert.Equal([F(3) + 8, F(9) + 0x40], stale.Frames.Select(f => f.Ip));
    }

    [Fact]
    public void A_switched_out_task_starts_at_its_cpu_context()
    {
        var k = new Kernel();
        var fp = Task + 0x3c00;
        k.CpuContext(pc: F(10) + 0xe8, fp: fp, sp: fp, x19: 0x1919);
        k.Record(fp, Task + 0x3c40, F(11) + 0x340);
        k.Record(Task + 0x3c40, k.FinalFrame, F(12) + 0x58);
        k.PtRegs(k.UserRegs, pc: 0, sp: 0, pstate: 0x5);
        var r = k.Unwinder().FromSwitchedOut(TaskStruct, Kernel.Stacks(), k.FinalFrame);
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal([F(10) + 0xe8, F(11) + 0x340, F(12) + 0x58], r.Frames.Select(f => f.Ip));
        Assert.False(r.Frames[0].Exact);
        Assert.True(r.Frames[0].Registers!.TryGet("x19", out var x19) && x19 == 0x1919);

        k.CpuContext(pc: 0xdead0000, fp: fp, sp: fp, x19: 0);
        var bad = k.Unwinder().FromSwitchedOut(TaskStruct, Kernel.Stacks(), k.FinalFrame);
        Assert.Equal(UnwindEnd.Error, bad.End);
        Assert.Equal("frame 0: return address 0xdead0000 is not kernel text", bad.Reason);
        var gone = k.Unwinder().FromSwitchedOut(0xffff000009000000, Kernel.Stacks(), k.FinalFrame);
        Assert.Equal(UnwindEnd.Error, gone.End);
        Assert.StartsWith("thread.cpu_context cannot be read", gone.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_chain_may_leave_the_irq_stack_once_and_never_come_back()
    {
        var k = new Kernel();
        var i1 = Irq + 0x3f00;
        var t1 = Task + 0x3000;
        k.Record(i1, t1, F(1) + 4);            // call_on_irq_stack's record on the task stack
        k.Record(t1, Irq + 0x3f80, F(2) + 4);  // back onto the IRQ stack
        k.Record(Irq + 0x3f80, 0, F(3) + 4);
        var r = k.Unwinder().FromRegisters(NoteRegs(F(0) + 4, Irq + 0x3e00, i1, 0), Kernel.Stacks(irq: true), k.FinalFrame);
        Assert.Equal([("IRQ", F(0) + 4), ("IRQ", F(1) + 4), ("task", F(2) + 4)], r.Frames.Where(f => f.Reliable).Select(f => (f.Stack!, f.Ip)));
        Assert.Equal(UnwindEnd.Error, r.End);
        Assert.Contains("stack recursion: back on the IRQ stack", r.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("loop")]
    [InlineData("down")]
    [InlineData("misaligned")]
    [InlineData("off")]
    [InlineData("text")]
    [InlineData("unreadable")]
    public void A_damaged_chain_ends_with_its_reason_then_a_scan_of_the_stack(string damage)
    {
        var k = new Kernel();
        var r1 = Task + 0x1000;
        var r2 = Task + 0x1100;
        k.Record(r1, r2, F(1) + 4);
        switch (damage)
        {
            case "loop":
                k.Record(r2, r2, F(2) + 4);
                break;
            case "down":
                k.Record(r2, Task + 0x800, F(2) + 4);
                break;
            case "misaligned":
                k.Record(r2, Task + 0x1204, F(2) + 4);
                break;
            case "off":
                k.Record(r2, 0xffff800009000000, F(2) + 4);
                break;
            case "text":
                k.Record(r2, Task + 0x1200, 0xffff80000a000000);
                break;
            case "unreadable":
                k.Record(r2, Task + Size - 8, F(2) + 4); // a record running past the stack's end
                break;
        }
        k.Raw.U64(r2 + 0x40, Signed(F(7) + 0x30)); // a stale signed return address above the damage
        var r = k.Unwinder().FromRegisters(NoteRegs(F(0) + 4, Task + 0xf00, r1, 0), Kernel.Stacks(), k.FinalFrame);
        Assert.Equal(UnwindEnd.Error, r.End);
        var expected = damage switch
        {
            "loop" => $"frame 3: frame pointer 0x{r2:x} goes down the stack",
            "down" => $"frame 3: frame pointer 0x{Task + 0x800:x} goes down the stack",
            "misaligned" => $"frame 3: frame pointer 0x{Task + 0x1204:x} is not 8-byte aligned",
            "off" => "frame 3: frame pointer 0xffff800009000000: 0xffff800009000000 is not on the task stack",
            "text" => "frame 2: return address 0xffff80000a000000 is not kernel text",
            _ => $"frame 3: frame pointer 0x{Task + Size - 8:x}: 16 bytes at 0x{Task + Size - 8:x} run past the end of the task stack",
        };
        Assert.StartsWith(expected, r.Reason, StringComparison.Ordinal);
        // The scan strips the code from what it finds, as the chain does.
        Assert.Contains(r.Frames, f => !f.Reliable && f.Ip == F(7) + 0x30);
    }

    [Fact]
    public void A_chain_longer_than_the_limit_is_cut_with_that_said()
    {
        const ulong big = 0xffff800008400000;
        var raw = new SparseKernelMemory(DataModel.LP64).Map(big, 0x10000).Map(Code, 0x10000);
        var memory = FixtureTypes.Placed(raw, FixtureTypes.Arm64);
        for (ulong i = 0; i < 0x1000; i++)
        {
            raw.U64(big + i * 16, big + (i + 1) * 16);
            raw.U64(big + i * 16 + 8, Signed(F(1) + 4));
        }
        var unwinder = new Arm64FramePointerUnwinder(memory, a => a >= Code && a < Code + 0x10000, _ => false, a => a & ~0xffUL, PacMask);
        var r = unwinder.FromRegisters(NoteRegs(F(0) + 4, big, big, 0), new StackSet([new StackRange(StackKind.Task, "task", big, big + 0x10000)]), null);
        Assert.Equal(UnwindEnd.Error, r.End);
        Assert.Equal($"more than {Arm64FramePointerUnwinder.MaxFrames} frames", r.Reason);
        Assert.Equal(Arm64FramePointerUnwinder.MaxFrames, r.Frames.Count(f => f.Reliable));
    }

    [Fact]
    public void User_mode_registers_have_no_kernel_frames_and_pac_bits_are_stripped_by_half()
    {
        var k = new Kernel();
        var r = k.Unwinder().FromRegisters(NoteRegs(0x400000, 0xfffff000, 0xfffff010, 0x400100, pstate: 0x80001000), Kernel.Stacks(), k.FinalFrame);
        Assert.Equal(UnwindEnd.UserMode, r.End);
        Assert.Empty(r.Frames);
        var missing = k.Unwinder().FromRegisters(new Registers([new("pc", F(0))], full: false), Kernel.Stacks(), k.FinalFrame);
        Assert.Equal(UnwindEnd.Error, missing.End);
        // ptrauth_strip_insn_pac: bit 55 picks the half; a kernel address gets the code's bits set, a user one cleared.
        Assert.Equal(F(2), k.Unwinder().StripPac(Signed(F(2))));
        Assert.Equal(0x0000_7fff_1234_5678UL, k.Unwinder().StripPac(0x1a2b_7fff_1234_5678UL));
    }
}
