/* Loadable modules (include/linux/module.h, include/linux/kallsyms.h): subsets relocated against the kernel's BTF.
 * Where a module's memory is described moved in 6.4 (core_layout and init_layout before, mem[] since): the flavors
 * module___pre_6_4 and module___6_4 read whichever this kernel has (Has_core_layout, Has_mem). */
#pragma once
#include "list.h"

enum module_state {
    MODULE_STATE_LIVE,
    MODULE_STATE_COMING,
    MODULE_STATE_GOING,
    MODULE_STATE_UNFORMED,
};

/* The index of each part of a module's memory in module___6_4.mem (enum mod_mem_type, 6.4+). */
enum mod_mem_type {
    MOD_TEXT,
    MOD_DATA,
    MOD_RODATA,
    MOD_RO_AFTER_INIT,
    MOD_INIT_TEXT,
    MOD_INIT_DATA,
    MOD_INIT_RODATA,
};

/* A module's symbol table as kallsyms reads it: num_symtab Elf32_Sym or Elf64_Sym entries (by the data model) whose
 * st_value is the running address, their names in strtab, their nm type letters in typetab (5.2+). */
struct mod_kallsyms {
    void *symtab;
    unsigned int num_symtab;
    char *strtab;
    char *typetab __kvmt_optional;      /* 5.2+ */
} __attribute__((preserve_access_index));

/* One part of a module's memory before 6.4 (core or init): text first, then read-only data, then the rest. */
struct module_layout {
    void *base;
    unsigned int size;
    unsigned int text_size;
    unsigned int ro_size;
} __attribute__((preserve_access_index)) __kvmt_optional;

/* One part of a module's memory since 6.4. */
struct module_memory {
    void *base;
    unsigned int size;
} __attribute__((preserve_access_index)) __kvmt_optional;

/* A module on the list whose head is the symbol `modules`. kallsyms points at core_kallsyms once the module is
 * live (at its full table while it loads). name is MODULE_NAME_LEN (64 - sizeof(unsigned long)) bytes. */
struct module {
    enum module_state state;
    struct list_head list;
    struct mod_kallsyms *kallsyms;
    struct mod_kallsyms core_kallsyms;
    char name[];
} __attribute__((preserve_access_index));

/* A module's memory before 6.4. */
struct module___pre_6_4 {
    struct module_layout core_layout __kvmt_optional;
    struct module_layout init_layout __kvmt_optional;
} __attribute__((preserve_access_index));

/* A module's memory since 6.4, indexed by enum mod_mem_type (state is there only because C wants a named member
 * before a flexible array). */
struct module___6_4 {
    enum module_state state;
    struct module_memory mem[] __kvmt_optional;
} __attribute__((preserve_access_index));
