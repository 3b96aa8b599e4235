using KvmTyped.Linux.Kernel.X86_64;
using KvmTyped.Types;

namespace KvmTyped.Linux.Unwind;

/// <summary>The code and stack segment selectors of an x86-64 struct pt_regs, whichever layout the kernel has: whole
/// unsigned longs before 6.9, the low 16 bits of a union with FRED's fields since (schemas/linux/arch/x86_64/ptrace.h).</summary>
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
}
