/* The library's own complete layouts for the kernel log (not shipped with the schemas). VMCOREINFO places text_len and
 * caller_id but not the level byte between them, so the log reads the level through the first two, at text_len, only
 * where VMCOREINFO's offsets show this layout; and it has no entries for a text block, whose layout every kernel shares. */
#pragma once

/* struct printk_info (5.10+) from text_len to caller_id. */
struct printk_info_level_bytes {
    u16 text_len;
    u8 facility;
    u8 flags : 5;
    u8 level : 3;
    u32 caller_id;
};

/* struct printk_log (3.5-5.9) from text_len on. */
struct printk_log_level_bytes {
    u16 text_len;
    u16 dict_len;
    u8 facility;
    u8 flags : 5;
    u8 level : 3;
};

/* A data block of the printk text ring (kernel/printk/printk_ringbuffer.c): its descriptor's id, then the text. */
struct prb_data_block {
    unsigned long id;
    char data[];
};
