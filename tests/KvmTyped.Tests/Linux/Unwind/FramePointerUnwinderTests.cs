using KvmTyped.Linux.Unwind;
using KvmTyped.Types;
using I386 = KvmTyped.Linux.Kernel.I386;
using X86_64 = KvmTyped.Linux.Kernel.X86_64;

namespace KvmTyped.Tests.Linux.Unwind;

/// <summary>The frame-pointer unwinder on stacks built in code, with the real i386 6.1-686-pae layouts (and the amd64
/// ones for x86-64 kernels without ORC): bp chains, entry frames marked in bp, the last frame below the user-mode
/// registers, stack switches, and damaged chains ending with a reason.</summary>
public class FramePointerUnwinderTests
{
    private const ulong Code = 0xc7000000;
    private const ulong Task = 0xc1100000;
    private const ulong Irq = 0xc1200000;
    private const ulong Size = 0x2000;

    private static ulong F(int n) => Code + (ulong)n * 0x100;

    private sealed class Kernel
    {
        public SparseKernelMemory Raw { get; } = new SparseKernelMemory(DataModel.ILP32).Map(Task, (int)Size).Map(Irq, (int)Size).Map(Code, 0x10000);

        public ViewMemory Memory { get; }

        public Kernel() => Memory = FixtureTypes.Placed(Raw, FixtureTypes.I386);

        public ulong RegsSize => I386.pt_regs.SizeOf(Memory);

        /// <summary>task_pt_regs: below thread.sp0, 8 bytes under the stack's top.</summary>
        public ulong UserRegs => Task + Size - 8 - RegsSize;

        public FramePointerUnwinder Unwinder() => new(Memory, a => a >= Code && a < Code + 0x10000);

        public static StackSet Stacks(bool irq = false) =>
            new(irq
                ? [new StackRange(StackKind.Task, "task", Task, Task + Size), new StackRange(StackKind.HardIrq, "IRQ", Irq, Irq + Size)]
                : [new StackRange(StackKind.Task, "task", Task, Task + Size)]);

        /// <summary>A frame at <paramref name="bp"/>: the caller's bp, then the return address.</summary>
        public void Frame(ulong bp, ulong next, ulong ret)
        {
            Raw.U32(bp, (uint)next);
            Raw.U32(bp + 4, (uint)ret);
        }

        public void PtRegs(ulong at, params (string Name, ulong Value)[] values)
        {
            foreach (var (name, value) in values)
            {
                var offset = I386.pt_regs.OffsetOf(Memory, name);
                if (name is "cs" or "ss" or "ds" or "es" or "fs" or "gs")
                    Raw.U16(at + offset, (ushort)value);
                else
                    Raw.U32(at + offset, (uint)value);
            }
        }
    }

    private static Registers NoteRegs(ulong ip, ulong sp, ulong bp) =>
        new([new("ip", ip), new("sp", sp), new("bp", bp), new("cs", 0x60), new("flags", 0x246)], full: true) { Vm86 = true };

    [Fact]
    public void A_bp_chain_ends_at_the_frame_below_the_user_mode_registers()
    {
        var k = new Kernel();
        var b1 = Task + 0x1000;
        var b2 = Task + 0x1100;
        var last = k.UserRegs - 8;
        k.Frame(b1, b2, F(1) + 5);
        k.Frame(b2, last, F(2) + 5);
        k.Frame(last, 0xbff92a10, F(3) + 0x98); // the user's bp: not a kernel stack address
        k.PtRegs(k.UserRegs, ("ip", 0xb7fae559), ("sp", 0xbff92a10), ("cs", 0x73), ("ss", 0x7b), ("ax", 0xffffffda));
        var r = k.Unwinder().FromRegisters(NoteRegs(F(0) + 1, Task + 0xf00, b1), Kernel.Stacks(), k.UserRegs);
        Assert.Equal(UnwindEnd.UserMode, r.End);
        Assert.Equal([(F(0) + 1, true), (F(1) + 5, false), (F(2) + 5, false), (F(3) + 0x98, false)], r.Frames.Select(f => (f.Ip, f.Exact)));
        Assert.Equal([Task + 0xf00, b1 + 8, b2 + 8, last + 8], r.Frames.Select(f => f.Sp));
        Assert.True(r.UserRegisters!.TryGet("ip", out var ip) && ip == 0xb7fae559);
        Assert.True(r.UserRegisters.IsUserMode);
        // The same last frame found one word lower (a prologue that realigned the stack pushed the return address
        // twice) is recognised too.
        var aligned = k.UserRegs - 12;
        k.Frame(b2, aligned, F(2) + 5);
        k.Frame(aligned, 0xbff92a10, F(3) + 0x98);
        k.Raw.U32(k.UserRegs - 4, (uint)(F(3) + 0x98));
        Assert.Equal(UnwindEnd.UserMode, k.Unwinder().FromRegisters(NoteRegs(F(0) + 1, Task + 0xf00, b1), Kernel.Stacks(), k.UserRegs).End);
    }

    [Fact]
    public void An_encoded_frame_pointer_crosses_the_pt_regs_it_points_at()
    {
        var k = new Kernel();
        var b1 = Task + 0x800;
        var regs = Task + 0x900;
        var b4 = Task + 0xa00;
        k.Frame(b1, regs & 0x7fff_ffff, F(1) + 5);   // i386 clears the top bit of a bp that points at pt_regs
        k.PtRegs(regs, ("ip", F(5) + 2), ("sp", Task + 0x9a0), ("bp", b4), ("cs", 0x60), ("ax", 7));
        k.Frame(b4, 0, F(6) + 1);
        var r = k.Unwinder().FromRegisters(NoteRegs(F(0) + 1, Task + 0x7f0, b1), Kernel.Stacks(), k.UserRegs);
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal([F(0) + 1, F(1) + 5, F(5) + 2, F(6) + 1], r.Frames.Select(f => f.Ip));
        Assert.True(r.Frames[2].Exact);
        Assert.True(r.Frames[2].Registers!.TryGet("ax", out var ax) && ax == 7);
    }

    [Fact]
    public void A_kernel_thread_ends_at_its_kernel_mode_registers_at_the_stack_top()
    {
        var k = new Kernel();
        var b1 = Task + 0x1f00;
        k.Frame(b1, k.UserRegs & 0x7fff_ffff, F(2) + 3);
        k.PtRegs(k.UserRegs, ("cs", 0));
        var r = k.Unwinder().FromRegisters(NoteRegs(F(0) + 1, Task + 0x1e00, b1), Kernel.Stacks(), k.UserRegs);
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal([F(0) + 1, F(2) + 3], r.Frames.Select(f => f.Ip));
    }

    [Fact]
    public void A_switched_out_task_starts_at_its_inactive_task_frame()
    {
        var k = new Kernel();
        var threadSp = Task + 0x1800;
        var size = I386.inactive_task_frame.SizeOf(k.Memory);
        var bp = Task + 0x1900;
        k.Raw.U32(threadSp + I386.inactive_task_frame.OffsetOf(k.Memory, "ret_addr"), (uint)(F(0) + 0x40));
        k.Raw.U32(threadSp + I386.inactive_task_frame.OffsetOf(k.Memory, "bp"), (uint)bp);
        k.Frame(bp, 0, F(1) + 9);
        var r = k.Unwinder().FromSwitchedOut(threadSp, Kernel.Stacks(), k.UserRegs);
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal([(F(0) + 0x40, threadSp + size), (F(1) + 9, bp + 8)], r.Frames.Select(f => (f.Ip, f.Sp)));
        Assert.False(r.Frames[0].Exact);
    }

    [Fact]
    public void A_chain_may_leave_the_irq_stack_once_and_never_come_back()
    {
        var k = new Kernel();
        var b1 = Irq + 0x1f00;
        var b2 = Task + 0x1000;
        k.Frame(b1, b2, F(1) + 1);
        k.Frame(b2, Irq + 0x1f80, F(2) + 1); // back onto the IRQ stack
        k.Frame(Irq + 0x1f80, 0, F(3) + 1);
        var r = k.Unwinder().FromRegisters(NoteRegs(F(0) + 1, Irq + 0x1e00, b1), Kernel.Stacks(irq: true), k.UserRegs);
        Assert.Equal([("IRQ", F(0) + 1), ("IRQ", F(1) + 1), ("task", F(2) + 1)], r.Frames.Where(f => f.Reliable).Select(f => (f.Stack!, f.Ip)));
        Assert.Equal(UnwindEnd.Error, r.End);
        Assert.Contains("stack recursion: back on the IRQ stack", r.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("loop")]
    [InlineData("down")]
    [InlineData("off")]
    [InlineData("text")]
    [InlineData("unreadable")]
    public void A_damaged_chain_ends_with_its_reason(string damage)
    {
        var k = new Kernel();
        var b1 = Task + 0x1000;
        var b2 = Task + 0x1100;
        k.Frame(b1, b2, F(1) + 1);
        switch (damage)
        {
            case "loop":
                k.Frame(b2, b2, F(2) + 1);
                break;
            case "down":
                k.Frame(b2, Task + 0x800, F(2) + 1);
                break;
            case "off":
                k.Frame(b2, 0xc8000000, F(2) + 1);
                break;
            case "text":
                k.Frame(b2, Task + 0x1200, 0xdead0000);
                break;
            case "unreadable":
                k.Frame(b2, Task + Size - 4, F(2) + 1); // its return address would be past the stack
                break;
        }
        k.Raw.U32(b2 + 0x40, (uint)(F(7) + 3)); // a stale return address above the damage
        var r = k.Unwinder().FromRegisters(NoteRegs(F(0) + 1, Task + 0xf00, b1), Kernel.Stacks(), k.UserRegs);
        Assert.Equal(UnwindEnd.Error, r.End);
        var expected = damage switch
        {
            "loop" => $"frame 3: frame pointer 0x{b2:x} goes down the stack",
            "down" => "frame 3: frame pointer 0xc1100800 goes down the stack",
            "off" => "frame 3: frame pointer 0xc8000000: 0xc8000000 is not on the task stack",
            "text" => "frame 2: return address 0xdead0000 is not kernel text",
            _ => "frame 3: frame pointer 0xc1101ffc: 8 bytes at 0xc1101ffc run past the end of the task stack",
        };
        Assert.StartsWith(expected, r.Reason, StringComparison.Ordinal);
        Assert.Contains(r.Frames, f => !f.Reliable && f.Ip == F(7) + 3);
    }

    [Fact]
    public void X86_64_marks_entry_frames_with_the_lowest_bit()
    {
        const ulong code = 0xffffffff81000000, task = 0xffffc90000010000;
        var raw = new SparseKernelMemory(DataModel.LP64).Map(task, 0x4000).Map(code, 0x1000);
        var memory = FixtureTypes.Placed(raw, FixtureTypes.Amd64);
        var regs = task + 0x200;
        raw.U64(task + 0x100, regs | 1);
        raw.U64(task + 0x108, code + 0x10);
        foreach (var (name, value) in new[] { ("ip", code + 0x20), ("bp", task + 0x400), ("cs", 0x10UL), ("sp", task + 0x3f0) })
            raw.U64(regs + (name == "cs" ? X86_64.pt_regs___pre_6_9.OffsetOf(memory, name) : X86_64.pt_regs.OffsetOf(memory, name)), value);
        raw.U64(task + 0x400, 0);
        raw.U64(task + 0x408, code + 0x30);
        var unwinder = new FramePointerUnwinder(memory, a => a >= code && a < code + 0x1000);
        var start = new Registers([new("ip", code + 1), new("sp", task + 0xf0), new("bp", task + 0x100), new("cs", 0x10)], full: true);
        var r = unwinder.FromRegisters(start, new StackSet([new StackRange(StackKind.Task, "task", task, task + 0x4000)]), task + 0x4000 - X86_64.pt_regs.SizeOf(memory));
        Assert.Equal(UnwindEnd.EndOfStack, r.End);
        Assert.Equal([code + 1, code + 0x10, code + 0x20, code + 0x30], r.Frames.Select(f => f.Ip));
        Assert.True(r.Frames[2].Exact);
    }
}
