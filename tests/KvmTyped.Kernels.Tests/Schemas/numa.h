/* What a small NUMA-balancing analyzer reads of each task. numa_scan_seq exists only in kernels built with
 * CONFIG_NUMA_BALANCING: the PREEMPT_RT build among the fixture kernels has none, so it is optional. */
#pragma once

struct list_head {
    struct list_head *next, *prev;
};

struct task_struct {
    pid_t pid;
    char comm[16];
    struct list_head tasks;
    int numa_scan_seq __kvmt_optional;
} __attribute__((preserve_access_index));
