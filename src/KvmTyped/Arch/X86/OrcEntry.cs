namespace KvmTyped.Arch.X86;

/// <summary>A base register of an ORC entry (arch/x86/include/asm/orc_types.h, ORC_REG_*): where the caller's stack
/// pointer or frame pointer is found. Values above <see cref="SpIndirect"/> are not used by any kernel.</summary>
internal enum OrcRegister : byte
{
    /// <summary>No value: for sp_reg, no caller (see <see cref="OrcType"/>); for bp_reg, bp did not change.</summary>
    Undefined = 0,

    /// <summary>The caller's stack pointer (the call frame address).</summary>
    PrevSp = 1,

    /// <summary>rdx.</summary>
    Dx = 2,

    /// <summary>rdi.</summary>
    Di = 3,

    /// <summary>rbp.</summary>
    Bp = 4,

    /// <summary>rsp.</summary>
    Sp = 5,

    /// <summary>r10.</summary>
    R10 = 6,

    /// <summary>r13.</summary>
    R13 = 7,

    /// <summary>The word at rbp + offset.</summary>
    BpIndirect = 8,

    /// <summary>The word at rsp, plus offset: a stack switch (call_on_stack) left the old stack pointer there.</summary>
    SpIndirect = 9,
}

/// <summary>What kind of frame an ORC entry describes, in the numbering of Linux 6.4+ (older kernels' entries are
/// converted by <see cref="OrcEntry.Decode"/>).</summary>
internal enum OrcType : byte
{
    /// <summary>No unwind information: the unwind fails here.</summary>
    Undefined = 0,

    /// <summary>The bottom of a stack (a kernel thread's entry, the boot code): the unwind ends normally.</summary>
    EndOfStack = 1,

    /// <summary>A call frame: the return address is the word below the caller's stack pointer.</summary>
    Call = 2,

    /// <summary>A full struct pt_regs (an interrupt, exception or system call entry) at the caller's stack pointer.</summary>
    Regs = 3,

    /// <summary>Only the hardware's iret frame (ip, cs, flags, sp, ss) at the caller's stack pointer.</summary>
    RegsPartial = 4,
}

/// <summary>The ORC entry layouts the kernel has used: told apart by which bitfields struct orc_entry has.</summary>
internal enum OrcVersion
{
    /// <summary>Up to 6.2: sp_reg:4 bp_reg:4 type:2 end:1; types CALL 0, REGS 1, REGS_PARTIAL 2; REGS types imply
    /// "signal" (the ip is exact, not a return address).</summary>
    Linux4_14,

    /// <summary>6.3: sp_reg:4 bp_reg:4 type:2 signal:1 end:1.</summary>
    Linux6_3,

    /// <summary>6.4+: sp_reg:4 bp_reg:4 type:3 signal:1; types UNDEFINED 0, END_OF_STACK 1, CALL 2, REGS 3,
    /// REGS_PARTIAL 4.</summary>
    Linux6_4,
}

/// <summary>One entry of the ORC tables, converted to the 6.4 meaning: how to find the caller's sp, bp and ip at a
/// code address.</summary>
/// <param name="SpOffset">Added to the base register's value (or to the word it points at, for indirect ones).</param>
/// <param name="BpOffset">Where bp was saved, relative to <see cref="BpRegister"/>.</param>
/// <param name="SpRegister">The base of the caller's stack pointer.</param>
/// <param name="BpRegister">The base of the saved frame pointer.</param>
/// <param name="Type">The frame's kind.</param>
/// <param name="Signal">The ip reached through this frame is exact (interrupted there), not a return address: look it
/// up as is, not at ip − 1.</param>
/// <param name="RawType">The type field as stored, for messages.</param>
internal readonly record struct OrcEntry(short SpOffset, short BpOffset, OrcRegister SpRegister, OrcRegister BpRegister, OrcType Type, bool Signal, uint RawType)
{
    /// <summary>The entry for ip 0 (null_orc_entry): a call through a NULL pointer, whose return address is at sp.</summary>
    public static OrcEntry NullIp { get; } = new(8, 0, OrcRegister.Sp, OrcRegister.Undefined, OrcType.Call, false, (uint)OrcType.Call);

    /// <summary>Converts the fields of an entry as stored by a kernel of <paramref name="version"/>.</summary>
    /// <param name="spOffset">sp_offset.</param>
    /// <param name="bpOffset">bp_offset.</param>
    /// <param name="spReg">sp_reg.</param>
    /// <param name="bpReg">bp_reg.</param>
    /// <param name="type">type.</param>
    /// <param name="end">end (before 6.4; false otherwise).</param>
    /// <param name="signal">signal (6.3+; false otherwise).</param>
    /// <param name="version">The layout.</param>
    public static OrcEntry Decode(short spOffset, short bpOffset, uint spReg, uint bpReg, uint type, bool end, bool signal, OrcVersion version)
    {
        var sp = (OrcRegister)(byte)spReg;
        var bp = (OrcRegister)(byte)bpReg;
        if (version == OrcVersion.Linux6_4)
            return new(spOffset, bpOffset, sp, bp, type <= (uint)OrcType.RegsPartial ? (OrcType)type : (OrcType)0xff, signal, type);
        OrcType converted;
        if (sp == OrcRegister.Undefined)
            converted = end ? OrcType.EndOfStack : OrcType.Undefined;
        else
            converted = type <= 2 ? (OrcType)(type + (uint)OrcType.Call) : (OrcType)0xff;
        var exact = version == OrcVersion.Linux6_3 ? signal : converted is OrcType.Regs or OrcType.RegsPartial;
        return new(spOffset, bpOffset, sp, bp, converted, exact, type);
    }
}
