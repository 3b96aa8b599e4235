/*
 * The members of task_struct this tool reads beyond the shipped schema (schemas/linux/sched.h in the package).
 * A flavor (the kernel's name, "___", a suffix of your own) is relocated against the kernel's task_struct: declare
 * only the members you read, in any order; their offsets come from the kernel's BTF when the dump is opened.
 */
struct task_struct___analyzer {
    int prio;
    unsigned int flags;
} __attribute__((preserve_access_index));
