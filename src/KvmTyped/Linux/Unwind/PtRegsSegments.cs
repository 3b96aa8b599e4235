using KvmTyped.Linux.Kernel.X86_64;
using KvmTyped.Types;

namespace KvmTyped.Linux.Unwind;

/// <summary>An x86-64 struct pt_regs read as a register set, and its code and stack segment selectors whichever layout
/// the kernel has: whole unsigned longs before 6.9, the low 16 bits of a union with FRED's fields since
/// (schemas/linux/arch/x86_64/ptrace.h).</summary>
internal static class PtRegsSegments
{
    /// <summary>cs and ss of the pt_regs at <paramref name="at"/>; zero where the kernel's layout has neither form.</summary>
    public static (ulong Cs, ulong Ss) Read(IKernelMemory memory, ulong at)
    {
        var old = pt_regs___pre_6_9.At(memory, at);
        if (old.Has_cs && old.Has_ss)
            return (old.cs, old.ss);
        var fred = pt_regs___fred.At(memory, at);
        return (fred.Has_cs ? fred.cs : 0UL, fred.Has_ss ? fred.ss : 0UL);
    }

    /// <summary>Every register of the x86-64 pt_regs at <paramref name="at"/>, in pt_regs order, cs and ss by
    /// <see cref="Read"/>: the register set an unwinder crosses at an interrupt or exception frame.</summary>
    public static Registers ReadRegisters(IKernelMemory memory, ulong at)
    {
        var r = pt_regs.At(memory, at);
        var (cs, ss) = Read(memory, at);
        return new Registers(
        [
            new("ip", r.ip), new("sp", r.sp), new("flags", r.flags), new("ax", r.ax), new("bx", r.bx), new("cx", r.cx), new("dx", r.dx),
            new("si", r.si), new("di", r.di), new("bp", r.bp), new("r8", r.r8), new("r9", r.r9), new("r10", r.r10), new("r11", r.r11),
            new("r12", r.r12), new("r13", r.r13), new("r14", r.r14), new("r15", r.r15), new("orig_ax", r.orig_ax), new("cs", cs), new("ss", ss),
        ], full: true, at);
    }
}
