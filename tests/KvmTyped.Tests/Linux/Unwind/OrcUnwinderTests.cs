using KvmTyped.Arch.X86;
using KvmTyped.Linux.Kernel.X86_64;
using KvmTyped.Linux.Unwind;
using KvmTyped.Types;

namespace KvmTyped.Tests.Linux.Unwind;

/// <summary>The ORC unwinder's rules on stacks built in code: each entry type, each stack base, interrupt frames and
/// stack switches, and every way a damaged stack ends a trace — with a reason, never a loop or an exception. Struct
/// layouts (pt_regs, inactive_task_frame) are the real 6.1 amd64 kernel's.</summary>
public class OrcUnwinderTests
{
    internal const ulong Code = 0xffffffff81000000;
    internal const ulong TaskStack = 0xffffc90000010000;
    internal const ulong IrqStack = 0xffffc90000020000;
    internal const ulong StackSize = 0x4000;

    /// <summary>Function n's first byte.</summary>
    internal static ulong F(int n) => Code + (ulong)n * 0x100;

    /// <summary>ORC entries by address, the last at or below an ip applying (null: no entry there).</summary>
    internal sealed class TestOrc : IOrcLookup
    {
        private readonly SortedList<ulong, OrcEntry?> _entries = [];

        public List<ulong> Asked { get; } = [];

        public TestOrc Add(ulong ip, OrcEntry? entry)
        {
            _entries[ip] = entry;
            return this;
        }

        public OrcEntry? Find(ulong ip, out string? why)
        {
            Asked.Add(ip);
            why = null;
            var keys = _entries.Keys;
            var i = keys.Count - 1;
            while (i >= 0 && keys[i] > ip)
                i--;
            if (i < 0 || _entries.Values[i] is not { } e)
            {
                why = "test: no entry";
                return null;
            }
            return e;
        }
    }

    internal static OrcEntry Call(short sp, OrcRegister spReg = OrcRegister.Sp, OrcRegister bpReg = OrcRegister.Undefined, short bp = 0) =>
        new(sp, bp, spReg, bpReg, OrcType.Call, false, 2);

    internal static OrcEntry Regs(short sp = 0, OrcRegister spReg = OrcRegister.Sp) => new(sp, 0, spReg, OrcRegister.Undefined, OrcType.Regs, true, 3);

    internal static OrcEntry Partial(short sp = 0, OrcRegister spReg = OrcRegister.Sp) => new(sp, 0, spReg, OrcRegister.Undefined, OrcType.RegsPartial, true, 4);

    internal static readonly OrcEntry End = new(0, 0, OrcRegister.Undefined, OrcRegister.Undefined, OrcType.EndOfStack, false, 1);

    internal static readonly OrcEntry Undefined = new(0, 0, OrcRegister.Undefined, OrcRegister.Undefined, OrcType.Undefined, false, 0);

    internal sealed class Kernel
    {
        public SparseKernelMemory Raw { get; } = new SparseKernelMemory(DataModel.LP64).Map(TaskStack, (int)StackSize).Map(IrqStack, (int)StackSize).Map(Code, 0x10000);

        public ViewMemory Memory { get; }

        public TestOrc Orc { get; } = new();

        public Kernel() => Memory = FixtureTypes.Placed(Raw, FixtureTypes.Amd64);

        public OrcUnwinder Unwinder(ulong retFromFork = 0) =>
            new(Memory, Orc, a => a >= Code && a < Code + 0x10000, retFromFork, ip => ip >= Code && ip < Code + 0x10000 ? ip - (ip - Code) % 0x100 : null);

        public static StackSet Stacks(bool irq = false) =>
            new(irq
                ? [new StackRange(StackKind.Task, "task", TaskStack, TaskStack + StackSize), new StackRange(StackKind.HardIrq, "IRQ", IrqStack, IrqStack + StackSize)]
                : [new StackRange(StackKind.Task, "task", TaskStack, TaskStack + StackSize)]);

        /// <summary>A full struct pt_regs at <paramref name="at"/> (cs and ss where 6.1 has them, whole words).</summary>
        public void PtRegs(ulong at, params (string Name, ulong Value)[] values)
        {
            foreach (var (name, value) in values)
                Raw.U64(at + (name is "cs" or "ss" ? pt_regs___pre_6_9.OffsetOf(Memory, name) : pt_regs.OffsetOf(Memory, name)), value);
        }

        public ulong PtRegsSize => pt_regs.SizeOf(Memory);
    }

    internal static Registers NoteRegs(params (string Name, ulong Value)[] values) =>
        new(values.Select(v => new KeyValuePair<string, ulong>(v.Name, v.Value)).Append(new("cs", 0x10)), full: true);

    [Fact]
    public void Call_frames_take_the_return_address_below_the_caller_s_stack_pointer()
    {
        var k = new Kernel();
        var s0 = TaskStack + 0x3e00;
        k.Orc.Add(F(0), Call(16)).Add(F(1), Call(0x20, bpReg: OrcRegister.PrevSp, bp: -16)).Add(F(2), End);
        k.Raw.U64(s0 + 8, F(1) + 0x20);
        k.Raw.U64(s0 + 0x28, F(2) + 5);
        k.Raw.U64(s0 + 0x20, 0x2222);
        var r = k.Unwinder().FromRegisters(NoteRegs(("ip", F(0) + 0x10), ("sp", s0), ("bp", 0x1111)), Kernel.Stacks());
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal("end of stack", r.Reason);
        Assert.Equal([(F(0) + 0x10, s0, true), (F(1) + 0x20, s0 + 16, false), (F(2) + 5, s0 + 0x30, false)], r.Frames.Select(f => (f.Ip, f.Sp, f.Exact)));
        Assert.All(r.Frames, f => Assert.True(f.Reliable));
        Assert.All(r.Frames, f => Assert.Equal("task", f.Stack));
        Assert.NotNull(r.Frames[0].Registers);
        // Registers are looked up where the CPU was; return addresses one byte before, in the call.
        Assert.Equal([F(0) + 0x10, F(1) + 0x1f, F(2) + 4], k.Orc.Asked);
    }

    [Fact]
    public void An_entry_frame_crosses_its_pt_regs_and_the_trace_ends_at_user_mode()
    {
        var k = new Kernel();
        var s0 = TaskStack + 0x3000;
        var regs = s0 + 16;                    // F0's caller left a full pt_regs here
        var s1 = regs + k.PtRegsSize + 0x40;   // the interrupted kernel context's sp
        k.Orc.Add(F(0), Call(16)).Add(F(1), Regs()).Add(F(2), Call(8)).Add(F(3), Regs());
        k.Raw.U64(s0 + 8, F(1) + 4);
        k.PtRegs(regs, ("ip", F(2) + 7), ("sp", s1), ("cs", 0x10), ("bp", 0x3333), ("ax", 42));
        k.Raw.U64(s1, F(3) + 9);
        // F3 entered the kernel from user mode: its pt_regs (user cs) are right above its caller's sp.
        k.PtRegs(s1 + 8, ("ip", 0x401000), ("sp", 0x7ffc0000), ("cs", 0x33), ("ss", 0x2b), ("ax", 0xffffffffffffffda));
        var r = k.Unwinder().FromRegisters(NoteRegs(("ip", F(0)), ("sp", s0), ("bp", 0)), Kernel.Stacks());
        Assert.Equal(UnwindEnd.UserMode, r.End);
        Assert.Equal([F(0), F(1) + 4, F(2) + 7, F(3) + 9], r.Frames.Select(f => f.Ip));
        var entered = r.Frames[2];
        Assert.True(entered.Exact);
        Assert.True(entered.Registers!.TryGet("ax", out var ax) && ax == 42);
        Assert.True(entered.Registers.Full);
        Assert.Null(r.Frames[1].Registers);
        Assert.True(r.UserRegisters!.TryGet("ip", out var uip) && uip == 0x401000);
        Assert.True(r.UserRegisters.IsUserMode);
    }

    [Fact]
    public void An_iret_frame_gives_ip_and_sp_and_bp_comes_from_the_full_registers_below_it()
    {
        var k = new Kernel();
        var s0 = TaskStack + 0x2000;
        var bp = TaskStack + 0x2800;
        var ipOffset = pt_regs.OffsetOf(k.Memory, "ip");
        k.Orc.Add(F(0), Partial()).Add(F(1), Call(16, OrcRegister.Bp, OrcRegister.PrevSp, -16)).Add(F(2), End);
        // The hardware's frame at sp: ip, cs, flags, sp, ss (the tail of a pt_regs).
        k.PtRegs(s0 - ipOffset, ("ip", F(1) + 3), ("cs", 0x10), ("flags", 0x246), ("sp", TaskStack + 0x2400), ("ss", 0x18));
        k.Raw.U64(bp + 8, F(2) + 1);
        k.Raw.U64(bp, 0);
        var r = k.Unwinder().FromRegisters(NoteRegs(("ip", F(0) + 2), ("sp", s0), ("bp", bp)), Kernel.Stacks());
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal([(F(0) + 2, s0), (F(1) + 3, TaskStack + 0x2400), (F(2) + 1, bp + 16)], r.Frames.Select(f => (f.Ip, f.Sp)));
        var partial = r.Frames[1].Registers!;
        Assert.False(partial.Full);
        Assert.Equal(["ip", "sp", "flags", "cs", "ss"], partial.Values.Select(v => v.Key));
    }

    [Fact]
    public void A_stack_switch_follows_the_pointer_left_at_the_top_of_the_irq_stack()
    {
        var k = new Kernel();
        var top = IrqStack + 0x3f00;
        k.Orc.Add(F(0), Call(8)).Add(F(1), Call(8, OrcRegister.SpIndirect)).Add(F(2), End);
        k.Raw.U64(top, F(1) + 2);
        k.Raw.U64(top + 8, TaskStack + 0x3c00); // call_on_stack: the old sp at the new stack's top
        k.Raw.U64(TaskStack + 0x3c00, F(2) + 9);
        var r = k.Unwinder().FromRegisters(NoteRegs(("ip", F(0) + 1), ("sp", top)), Kernel.Stacks(irq: true));
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal([(F(0) + 1, "IRQ"), (F(1) + 2, "IRQ"), (F(2) + 9, "task")], r.Frames.Select(f => (f.Ip, f.Stack)));
        Assert.Equal(TaskStack + 0x3c08, r.Frames[2].Sp);
    }

    [Fact]
    public void Coming_back_to_a_stack_already_left_is_recursion_and_ends_the_trace()
    {
        var k = new Kernel();
        var top = IrqStack + 0x3f00;
        k.Orc.Add(F(0), Call(8, OrcRegister.SpIndirect)).Add(F(1), Call(8, OrcRegister.SpIndirect));
        k.Raw.U64(top, TaskStack + 0x100);
        k.Raw.U64(TaskStack + 0x100, F(1) + 1);
        k.Raw.U64(TaskStack + 0x108, IrqStack + 0x3f80); // back to the IRQ stack
        var r = k.Unwinder().FromRegisters(NoteRegs(("ip", F(0) + 1), ("sp", top)), Kernel.Stacks(irq: true));
        Assert.Equal(UnwindEnd.Error, r.End);
        Assert.Contains("stack recursion: back on the IRQ stack", r.Reason, StringComparison.Ordinal);
        Assert.StartsWith("frame 2: ", r.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Register_based_stack_pointers_need_the_full_registers_of_the_frame()
    {
        var k = new Kernel();
        var s0 = TaskStack + 0x1000;
        var r10 = TaskStack + 0x1200;
        k.Orc.Add(F(0), Call(0, OrcRegister.R10)).Add(F(1), Call(0, OrcRegister.Di));
        k.Raw.U64(r10 - 8, F(1) + 6);
        var r = k.Unwinder().FromRegisters(NoteRegs(("ip", F(0) + 1), ("sp", s0), ("r10", r10), ("di", 0)), Kernel.Stacks());
        Assert.Equal([F(0) + 1, F(1) + 6], r.Frames.Where(f => f.Reliable).Select(f => f.Ip));
        Assert.Equal(UnwindEnd.Error, r.End);
        Assert.Contains("needs di, which this frame does not have", r.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Frame_pointer_based_and_indirect_stack_pointers()
    {
        var k = new Kernel();
        var s0 = TaskStack + 0x800;
        var bp = TaskStack + 0x900;
        k.Orc.Add(F(0), Call(16, OrcRegister.Bp, OrcRegister.PrevSp, -16)).Add(F(1), Call(8, OrcRegister.BpIndirect)).Add(F(2), End);
        k.Raw.U64(bp + 8, F(1) + 1);
        k.Raw.U64(bp, TaskStack + 0xa00);                // saved bp: F1's frame base
        k.Raw.U64(TaskStack + 0xa08, TaskStack + 0xb00); // the word at bp + 8 is F1's caller's sp
        k.Raw.U64(TaskStack + 0xaf8, F(2) + 2);
        var r = k.Unwinder().FromRegisters(NoteRegs(("ip", F(0) + 1), ("sp", s0), ("bp", bp)), Kernel.Stacks());
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal([(F(0) + 1, s0), (F(1) + 1, bp + 16), (F(2) + 2, TaskStack + 0xb00)], r.Frames.Select(f => (f.Ip, f.Sp)));
    }

    [Fact]
    public void Where_orc_has_no_rule_the_trace_ends_then_a_stack_scan_adds_unreliable_frames()
    {
        var k = new Kernel();
        var s0 = TaskStack + 0x3f00;
        k.Orc.Add(F(0), Call(8)).Add(F(1), Undefined).Add(F(3), null);
        k.Raw.U64(s0, F(1) + 1);
        k.Raw.U64(s0 + 0x10, 0xffff888012345678);  // not text: skipped by the scan
        k.Raw.U64(s0 + 0x18, F(4) + 0x11);
        var r = k.Unwinder().FromRegisters(NoteRegs(("ip", F(0) + 1), ("sp", s0)), Kernel.Stacks());
        Assert.Equal(UnwindEnd.Error, r.End);
        Assert.Equal($"frame 2: the ORC entry for 0x{F(1) + 1:x} says the stack cannot be unwound there, and no return address to it was found on the stack", r.Reason);
        Assert.Equal([true, true, false], r.Frames.Select(f => f.Reliable));
        Assert.Equal(F(4) + 0x11, r.Frames[2].Ip);
        var none = k.Unwinder().FromRegisters(NoteRegs(("ip", F(3) + 1), ("sp", s0)), Kernel.Stacks());
        Assert.Equal($"frame 1: no ORC entry for 0x{F(3) + 1:x} (test: no entry)", none.Reason);
    }

    [Fact]
    public void A_function_without_orc_data_is_left_through_a_verified_call_to_it()
    {
        // As __crash_kexec (STACK_FRAME_NON_STANDARD), where a kdump's panic registers are taken.
        var k = new Kernel();
        var s0 = TaskStack + 0x3d00;
        k.Orc.Add(F(0), Undefined).Add(F(1), Call(16)).Add(F(2), End).Add(F(3), Call(8));
        // A stale return address first: F3+5 follows a call, but to F3 itself, not to F0.
        k.Raw.U64(s0 + 8, F(3) + 5);
        k.Raw.Bytes(F(3), [0xe8, .. BitConverter.GetBytes(-5)]);
        // Then F1's call to F0 and the return address behind it.
        var call = F(1) + 0x10;
        k.Raw.Bytes(call, [0xe8, .. BitConverter.GetBytes((int)(F(0) - (call + 5)))]);
        k.Raw.U64(s0 + 0x30, call + 5);
        k.Raw.U64(s0 + 0x38 + 8, F(2) + 4);
        var r = k.Unwinder().FromRegisters(NoteRegs(("ip", F(0) + 0x40), ("sp", s0)), Kernel.Stacks());
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal([(F(0) + 0x40, s0), (call + 5, s0 + 0x38), (F(2) + 4, s0 + 0x48)], r.Frames.Select(f => (f.Ip, f.Sp)));
        Assert.All(r.Frames, f => Assert.True(f.Reliable));
    }

    [Fact]
    public void A_return_address_that_is_not_kernel_text_names_its_frame()
    {
        var k = new Kernel();
        var s0 = TaskStack + 0x100;
        k.Orc.Add(F(0), Call(8)).Add(F(1), Call(8));
        k.Raw.U64(s0, F(1) + 1);
        k.Raw.U64(s0 + 8, 0xdeadbeef);
        var r = k.Unwinder().FromRegisters(NoteRegs(("ip", F(0) + 1), ("sp", s0)), Kernel.Stacks());
        Assert.Equal("frame 2: return address 0xdeadbeef is not kernel text", r.Reason);
        Assert.Equal(2, r.Frames.Count(f => f.Reliable));
    }

    [Fact]
    public void A_stack_pointer_going_down_its_stack_is_refused()
    {
        var k = new Kernel();
        var s0 = TaskStack + 0x1000;
        k.Orc.Add(F(0), Call(-8));
        k.Raw.U64(s0 - 16, F(0) + 1);
        var r = k.Unwinder().FromRegisters(NoteRegs(("ip", F(0) + 1), ("sp", s0)), Kernel.Stacks());
        Assert.Equal(UnwindEnd.Error, r.End);
        Assert.Contains("the stack goes the wrong way", r.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_stack_pointer_off_every_stack_ends_the_trace()
    {
        var k = new Kernel();
        k.Orc.Add(F(0), Call(8));
        var r = k.Unwinder().FromRegisters(NoteRegs(("ip", F(0) + 1), ("sp", 0xffff888000001000)), Kernel.Stacks());
        Assert.Equal(UnwindEnd.Error, r.End);
        Assert.Contains("0xffff888000001000 is not on the task stack (0xffffc90000010000-0xffffc90000014000)", r.Reason, StringComparison.Ordinal);
        Assert.Single(r.Frames);
    }

    [Fact]
    public void A_stack_of_endless_frames_stops_at_the_frame_limit()
    {
        var k = new Kernel();
        k.Orc.Add(F(1), Call(8));
        for (ulong a = TaskStack; a < TaskStack + StackSize; a += 8)
            k.Raw.U64(a, F(1) + 1);
        var r = k.Unwinder().FromRegisters(NoteRegs(("ip", F(1) + 1), ("sp", TaskStack)), Kernel.Stacks());
        Assert.Equal(UnwindEnd.Error, r.End);
        Assert.Equal($"more than {OrcUnwinder.MaxFrames} frames", r.Reason);
        Assert.True(r.Frames.Count >= OrcUnwinder.MaxFrames);
        Assert.True(r.Frames.Count <= OrcUnwinder.MaxFrames + OrcUnwinder.MaxScannedFrames);
    }

    [Fact]
    public void User_mode_registers_end_the_trace_before_any_frame()
    {
        var k = new Kernel();
        var user = new Registers([new("ip", 0x401000), new("sp", 0x7ffc0000), new("cs", 0x33)], full: true);
        var r = k.Unwinder().FromRegisters(user, Kernel.Stacks());
        Assert.Equal(UnwindEnd.UserMode, r.End);
        Assert.Empty(r.Frames);
        Assert.Same(user, r.UserRegisters);
    }

    [Fact]
    public void A_switched_out_task_starts_at_its_inactive_task_frame()
    {
        var k = new Kernel();
        var threadSp = TaskStack + 0x3e00;
        var size = inactive_task_frame.SizeOf(k.Memory);
        k.Raw.U64(threadSp + inactive_task_frame.OffsetOf(k.Memory, "ret_addr"), F(0) + 0x30);
        k.Raw.U64(threadSp + inactive_task_frame.OffsetOf(k.Memory, "bp"), 0x5555);
        k.Raw.U64(threadSp + inactive_task_frame.OffsetOf(k.Memory, "r12"), 0x1212);
        k.Orc.Add(F(0), Call(16)).Add(F(1), End);
        k.Raw.U64(threadSp + size + 8, F(1) + 2);
        var r = k.Unwinder().FromSwitchedOut(threadSp, Kernel.Stacks());
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal([(F(0) + 0x30, threadSp + size, false), (F(1) + 2, threadSp + size + 16, false)], r.Frames.Select(f => (f.Ip, f.Sp, f.Exact)));
        Assert.True(r.Frames[0].Registers!.TryGet("r12", out var r12) && r12 == 0x1212);
        Assert.Equal(F(0) + 0x2f, k.Orc.Asked[0]);
        // A task that never ran resumes at ret_from_fork itself: an exact address.
        k.Raw.U64(threadSp + inactive_task_frame.OffsetOf(k.Memory, "ret_addr"), F(5));
        k.Orc.Add(F(5), End);
        var fork = k.Unwinder(retFromFork: F(5)).FromSwitchedOut(threadSp, Kernel.Stacks());
        Assert.True(fork.Frames[0].Exact);
        var off = k.Unwinder().FromSwitchedOut(TaskStack - 0x100, Kernel.Stacks());
        Assert.Equal(UnwindEnd.Error, off.End);
        Assert.StartsWith("thread.sp 0xffffc9000000ff00: ", off.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Exception_stacks_are_the_mapped_runs_between_guard_pages()
    {
        const ulong area = 0xfffffe0000010000;
        var raw = new SparseKernelMemory(DataModel.LP64).Map(TaskStack, (int)StackSize).Map(Code, 0x10000)
            .Map(area + 0x1000, 0x2000).Map(area + 0x4000, 0x2000).Map(area + 0x7000, 0x2000);
        var memory = FixtureTypes.Placed(raw, FixtureTypes.Amd64);
        var stacks = new StackSet([new StackRange(StackKind.Task, "task", TaskStack, TaskStack + StackSize)], memory, area, 4096);
        Assert.Equal(new StackRange(StackKind.Exception, "DF exception", area + 0x1000, area + 0x3000), stacks.Locate(area + 0x2ff8));
        Assert.Equal(new StackRange(StackKind.Exception, "NMI exception", area + 0x4000, area + 0x6000), stacks.Locate(area + 0x4000));
        Assert.Equal("DB exception", stacks.Locate(area + 0x7010)?.Name);
        Assert.Null(stacks.Locate(area + 0x3000)); // a guard page
        Assert.Null(stacks.Locate(area - 8));
        // An NMI's pt_regs at the top of the NMI stack lead back to the task stack.
        var orc = new TestOrc().Add(F(0), Regs()).Add(F(1), End);
        var regsAt = area + 0x6000 - pt_regs.SizeOf(memory);
        foreach (var (name, value) in new[] { ("ip", F(1) + 3), ("sp", TaskStack + 0x2000), ("cs", 0x10UL) })
            raw.U64(regsAt + (name == "cs" ? pt_regs___pre_6_9.OffsetOf(memory, name) : pt_regs.OffsetOf(memory, name)), value);
        var unwinder = new OrcUnwinder(memory, orc, a => a >= Code && a < Code + 0x10000, 0, _ => null);
        var r = unwinder.FromRegisters(NoteRegs(("ip", F(0) + 1), ("sp", regsAt)), stacks);
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal([("NMI exception", F(0) + 1), ("task", F(1) + 3)], r.Frames.Select(f => (f.Stack!, f.Ip)));
    }
}
