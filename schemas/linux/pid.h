/* Process ids in namespaces (include/linux/pid.h): subsets, relocated against the kernel's BTF. */
#pragma once

struct pid_namespace;

struct upid {
    int nr;
    struct pid_namespace *ns;
} __attribute__((preserve_access_index));

struct pid {
    unsigned int level;
    struct upid numbers[];
} __attribute__((preserve_access_index));
