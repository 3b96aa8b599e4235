/* The kernel log (kernel/printk/printk_ringbuffer.h since 5.10, kernel/printk/printk.c's struct printk_log for
 * 3.5-5.9): subsets relocated against the kernel's BTF, or placed by the OFFSET(...) and SIZE(...) entries that
 * VMCOREINFO carries for exactly these members, so the log of a kernel without BTF can be read too. */
#pragma once

/* atomic_long_t: one long in a struct (include/linux/types.h). Complete: its layout is the same in every kernel. */
typedef struct {
    long counter;
} atomic_long_t;

struct prb_desc;
struct printk_info;

/* The descriptor ring: 2^count_bits descriptors and as many infos, the live ones from tail_id to head_id. */
struct prb_desc_ring {
    unsigned int count_bits;
    struct prb_desc *descs;
    struct printk_info *infos;
    atomic_long_t head_id;
    atomic_long_t tail_id;
} __attribute__((preserve_access_index));

/* The text ring: 2^size_bits bytes of data blocks. */
struct prb_data_ring {
    unsigned int size_bits;
    char *data;
} __attribute__((preserve_access_index));

/* The log buffer itself (the variable prb points to one). */
struct printk_ringbuffer {
    struct prb_desc_ring desc_ring;
    struct prb_data_ring text_data_ring;
} __attribute__((preserve_access_index));

/* Where a record's text block begins and where the next one begins, in logical positions of the text ring. */
struct prb_data_blk_lpos {
    unsigned long begin;
    unsigned long next;
} __attribute__((preserve_access_index));

/* A descriptor: its state and id in one word, and its text block. */
struct prb_desc {
    atomic_long_t state_var;
    struct prb_data_blk_lpos text_blk_lpos;
} __attribute__((preserve_access_index));

/* A record's metadata (the members VMCOREINFO places; facility, flags and level sit between text_len and
 * caller_id). */
struct printk_info {
    u64 seq;
    u64 ts_nsec;
    u16 text_len;
    u32 caller_id;
} __attribute__((preserve_access_index));

/* A record of the 3.5-5.9 log buffer, followed by its text (and dictionary). Newer kernels have no such struct: it is
 * optional, so checking against them does not report it missing. */
struct printk_log {
    u64 ts_nsec;
    u16 len;
    u16 text_len;
} __attribute__((preserve_access_index)) __kvmt_optional;
