/* An entry of the ORC unwinder's tables (arch/x86/include/asm/orc_types.h): how to find the caller's stack pointer,
 * frame pointer and return address at a code address. Packed, 6 bytes; relocated, because its bitfields changed:
 * up to 6.2 sp_reg:4 bp_reg:4 type:2 end:1 (types CALL 0, REGS 1, REGS_PARTIAL 2; sp_reg UNDEFINED with end set marks
 * the end of a stack); 6.3 added signal:1 before end; 6.4 dropped end and widened type to 3 bits (UNDEFINED 0,
 * END_OF_STACK 1, CALL 2, REGS 3, REGS_PARTIAL 4). Has_end and Has_signal tell them apart. */
#pragma once

struct orc_entry {
    s16 sp_offset;
    s16 bp_offset;
    unsigned int sp_reg : 4;
    unsigned int bp_reg : 4;
    unsigned int type : 3;
    unsigned int signal : 1 __kvmt_optional;
    unsigned int end : 1 __kvmt_optional;
} __attribute__((preserve_access_index));
