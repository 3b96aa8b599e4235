/* ELF symbols (include/uapi/linux/elf.h), complete: the ABI fixes their layout. A module's in-memory kallsyms table
 * (struct mod_kallsyms) is an array of one or the other, by the kernel's data model. */
#pragma once

struct elf32_sym {
    u32 st_name;
    u32 st_value;
    u32 st_size;
    unsigned char st_info;
    unsigned char st_other;
    u16 st_shndx;
};

struct elf64_sym {
    u32 st_name;
    unsigned char st_info;
    unsigned char st_other;
    u16 st_shndx;
    u64 st_value;
    u64 st_size;
};
