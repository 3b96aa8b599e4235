/* The process descriptor (include/linux/sched.h): a subset, relocated against the kernel's BTF. */
#pragma once
#include "list.h"

enum {
    TASK_COMM_LEN = 16,
};

struct mm_struct;
struct cred;
struct pid;

struct task_struct {
    unsigned int __state;
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
    const struct cred *real_cred;
    const struct cred *cred;
    char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));
