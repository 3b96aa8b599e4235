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
 * task_struct___pre_5_16 below before that). */
struct thread_info {
    unsigned int cpu;
} __attribute__((preserve_access_index));

struct task_struct {
    struct thread_info thread_info;
    unsigned int __state;
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
    struct list_head thread_group;
    struct list_head thread_node;
    struct signal_struct *signal;
    const struct cred *real_cred;
    const struct cred *cred;
    char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

/* Before 5.14 the state was `volatile long state`: a flavor of task_struct (libbpf's ___ suffix, ignored when
 * relocating) reads it where a kernel has it. */
struct task_struct___pre_5_14 {
    long state;
} __attribute__((preserve_access_index));

/* From 4.9 to 5.15 kernels with THREAD_INFO_IN_TASK kept the CPU in task_struct, not in thread_info. */
struct task_struct___pre_5_16 {
    unsigned int cpu;
} __attribute__((preserve_access_index));

/* The process-wide part of a thread group: its threads are on thread_head (through task_struct.thread_node)
 * since 6.6 and in some stable kernels before; older kernels ring them on task_struct.thread_group. */
struct signal_struct {
    int nr_threads;
    struct list_head thread_head;
} __attribute__((preserve_access_index));

/* A CPU's run queue (kernel/sched/sched.h), the per-CPU variable runqueues: the task it runs and its idle task. */
struct rq {
    struct task_struct *curr;
    struct task_struct *idle;
} __attribute__((preserve_access_index));
