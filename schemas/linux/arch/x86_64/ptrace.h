/* x86-64 registers and stack frames (arch/x86/include/asm/ptrace.h, asm/switch_to.h, asm/processor.h, asm/module.h):
 * subsets relocated against the kernel's BTF. Views of these are in the X86_64 child namespace; code picks them by
 * the image's machine (KernelMachine.X86_64). */
#pragma once

/* The registers saved on kernel entry (interrupts, exceptions, system calls). cs and ss changed type in 6.9 (FRED),
 * so they are read through the flavors below, one per layout. */
struct pt_regs {
    unsigned long r15;
    unsigned long r14;
    unsigned long r13;
    unsigned long r12;
    unsigned long bp;
    unsigned long bx;
    unsigned long r11;
    unsigned long r10;
    unsigned long r9;
    unsigned long r8;
    unsigned long ax;
    unsigned long cx;
    unsigned long dx;
    unsigned long si;
    unsigned long di;
    unsigned long orig_ax;
    unsigned long ip;
    unsigned long flags;
    unsigned long sp;
} __attribute__((preserve_access_index));

/* cs and ss before 6.9: whole unsigned longs. On a newer kernel the names are 16-bit, so these read as absent
 * (Has_cs is false). */
struct pt_regs___pre_6_9 {
    unsigned long cs __kvmt_optional;
    unsigned long ss __kvmt_optional;
} __attribute__((preserve_access_index));

/* cs and ss since 6.9 (FRED): the low 16 bits of a union with csx/ssx and FRED's frame fields. */
struct pt_regs___fred {
    u16 cs __kvmt_optional;
    u16 ss __kvmt_optional;
} __attribute__((preserve_access_index));

/* What __switch_to_asm pushes on a task's kernel stack when it is switched out; thread.sp points at it. */
struct inactive_task_frame {
    unsigned long r15;
    unsigned long r14;
    unsigned long r13;
    unsigned long r12;
    unsigned long bx;
    unsigned long bp;
    unsigned long ret_addr;
} __attribute__((preserve_access_index));

/* The architecture part of a task. */
struct thread_struct {
    unsigned long sp;
} __attribute__((preserve_access_index));

/* task_struct's member of the architecture's own type. */
struct task_struct___x86_64 {
    struct thread_struct thread;
} __attribute__((preserve_access_index));

/* A module's ORC unwind tables. */
struct mod_arch_specific {
    unsigned int num_orcs;
    int *orc_unwind_ip;
    void *orc_unwind;
} __attribute__((preserve_access_index));
