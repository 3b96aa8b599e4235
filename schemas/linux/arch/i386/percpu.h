/* 32-bit x86 per-CPU data (arch/x86/include/asm/current.h): a subset relocated against the kernel's BTF. */
#pragma once

struct task_struct;

/* 6.2+ keeps the hottest per-CPU variables together in the per-CPU variable pcpu_hot (before, current_task and
 * hardirq_stack_ptr were per-CPU variables of their own). On i386 hardirq_stack_ptr points at the bottom of the
 * CPU's hard-IRQ stack (struct irq_stack), whose first word holds the interrupted stack pointer. */
struct pcpu_hot {
    struct task_struct *current_task;
    void *hardirq_stack_ptr;
} __attribute__((preserve_access_index)) __kvmt_optional;
