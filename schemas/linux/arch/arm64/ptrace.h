/* 64-bit Arm registers and stack frames (arch/arm64/include/asm/ptrace.h, asm/processor.h): subsets relocated against
 * the kernel's BTF. Views of these are in the Arm64 child namespace; code picks them by the image's machine
 * (KernelMachine.Arm64). */
#pragma once

/* The registers saved on kernel entry (exceptions, interrupts, system calls). regs, sp, pc and pstate are members of an
 * anonymous struct in an anonymous union with struct user_pt_regs. stackframe is the frame record entry code builds in
 * it: {x29, elr} for an exception taken from EL1, so the frame-pointer chain runs through the interrupted code; zeros
 * for one taken from EL0, at the top of the task's stack, which ends every chain (the "final frame"). */
struct pt_regs {
    u64 regs[31];
    u64 sp;
    u64 pc;
    u64 pstate;
    u64 stackframe[2];
} __attribute__((preserve_access_index));

/* What cpu_switch_to saves of a task that is switched out: the callee-saved registers, its frame pointer, stack pointer
 * and the address it resumes at. */
struct cpu_context {
    unsigned long x19;
    unsigned long x20;
    unsigned long x21;
    unsigned long x22;
    unsigned long x23;
    unsigned long x24;
    unsigned long x25;
    unsigned long x26;
    unsigned long x27;
    unsigned long x28;
    unsigned long fp;
    unsigned long sp;
    unsigned long pc;
} __attribute__((preserve_access_index));

/* The architecture part of a task. */
struct thread_struct {
    struct cpu_context cpu_context;
} __attribute__((preserve_access_index));

/* task_struct's member of the architecture's own type. */
struct task_struct___arm64 {
    struct thread_struct thread;
} __attribute__((preserve_access_index));
