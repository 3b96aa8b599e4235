/* The memory descriptor (include/linux/mm_types.h): a subset, relocated against the kernel's BTF. */
#pragma once

struct mm_struct {
    void *pgd;
    int map_count;
    unsigned long total_vm;
    unsigned long start_code, end_code, start_data, end_data;
    unsigned long start_brk, brk, start_stack;
    unsigned long arg_start, arg_end, env_start, env_end;
} __attribute__((preserve_access_index));
