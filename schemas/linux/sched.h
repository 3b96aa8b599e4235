/* The process descriptor (include/linux/sched.h): a subset, relocated against the kernel's BTF. */
#pragma once
#include "list.h"

enum {
    TASK_COMM_LEN = 16,
};

struct mm_struct;
struct cred;
struct pid;
struct signal_struct;

/* The part of thread_info every architecture with THREAD_INFO_IN_TASK has: the CPU the task last ran on (since 5.16;
 * task_struct___pre_5_16 below before that).
 *
 * __kvmt_optional marks what only some kernels have (schemas/README.md, "Members only some kernels have"): the build
 * does not report its absence from a target kernel, and the view tells whether the running kernel has it (Has_cpu). */
struct thread_info {
    unsigned int cpu __kvmt_optional;
} __attribute__((preserve_access_index));

/* task_struct differs between the kernels KvmTyped is tested on (6.1 amd64, its PREEMPT_RT build, i386 PAE, arm64)
 * only in offsets; the members marked optional are the ones older kernels lack: thread_info (architectures without
 * THREAD_INFO_IN_TASK), __state (5.14), thread_node (6.6, and stable kernels that took it, such as Debian's 6.1), and
 * the one newer kernels lack: thread_group (gone in 6.7; its threads are on signal->thread_head). */
struct task_struct {
    struct thread_info thread_info __kvmt_optional;
    unsigned int __state __kvmt_optional;
    void *stack;
    unsigned int flags;
    int prio;
    struct list_head tasks;
    struct mm_struct *mm;
    struct mm_struct *active_mm;
    int exit_state;
    int exit_code;
    pid_t pid;
    pid_t tgid;
    struct task_struct *real_parent;
    struct task_struct *parent;
    struct list_head children;
    struct list_head sibling;
    struct task_struct *group_leader;
    struct list_head thread_group __kvmt_optional;
    struct list_head thread_node __kvmt_optional;
    struct signal_struct *signal;
    const struct cred *real_cred;
    const struct cred *cred;
    char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

/* Before 5.14 the state was `volatile long state`: a flavor of task_struct (libbpf's ___ suffix, ignored when
 * relocating) reads it where a kernel has it. */
struct task_struct___pre_5_14 {
    long state __kvmt_optional;
} __attribute__((preserve_access_index));

/* From 4.9 to 5.15 kernels with THREAD_INFO_IN_TASK kept the CPU in task_struct, not in thread_info. */
struct task_struct___pre_5_16 {
    unsigned int cpu __kvmt_optional;
} __attribute__((preserve_access_index));

/* The process-wide part of a thread group: its threads are on thread_head (through task_struct.thread_node)
 * since 6.6 and in some stable kernels before; older kernels ring them on task_struct.thread_group. */
struct signal_struct {
    int nr_threads;
    struct list_head thread_head __kvmt_optional;
} __attribute__((preserve_access_index));

/* A CPU's run queue (kernel/sched/sched.h), the per-CPU variable runqueues: the task it runs and its idle task. */
struct rq {
    struct task_struct *curr;
    struct task_struct *idle;
} __attribute__((preserve_access_index));
