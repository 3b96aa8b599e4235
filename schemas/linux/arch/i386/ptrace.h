/* 32-bit x86 registers and stack frames (arch/x86/include/asm/ptrace.h, asm/switch_to.h, asm/processor.h): subsets
 * relocated against the kernel's BTF. Views of these are in the I386 child namespace; code picks them by the image's
 * machine (KernelMachine.X86). */
#pragma once

/* The registers saved on kernel entry. */
struct pt_regs {
    unsigned long bx;
    unsigned long cx;
    unsigned long dx;
    unsigned long si;
    unsigned long di;
    unsigned long bp;
    unsigned long ax;
    unsigned short ds;
    unsigned short es;
    unsigned short fs;
    unsigned short gs;
    unsigned long orig_ax;
    unsigned long ip;
    unsigned short cs;
    unsigned long flags;
    unsigned long sp;
    unsigned short ss;
} __attribute__((preserve_access_index));

/* What __switch_to_asm pushes on a task's kernel stack when it is switched out; thread.sp points at it. */
struct inactive_task_frame {
    unsigned long flags;
    unsigned long si;
    unsigned long di;
    unsigned long bx;
    unsigned long bp;
    unsigned long ret_addr;
} __attribute__((preserve_access_index));

/* The architecture part of a task: its saved kernel stack pointer, and (i386) sp0, the top of its kernel stack,
 * right above the user-mode registers saved on entry (task_pt_regs). */
struct thread_struct {
    unsigned long sp;
    unsigned long sp0 __kvmt_optional;
} __attribute__((preserve_access_index));

/* task_struct's member of the architecture's own type. */
struct task_struct___i386 {
    struct thread_struct thread;
} __attribute__((preserve_access_index));
