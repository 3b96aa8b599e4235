/* The type names every schema may use without declaring them: <stdint.h>, <stddef.h>, <stdbool.h>,
 * ssize_t/pid_t and the kernel's fixed-width names. KvmTyped knows these names built in; this header only
 * lets gcc compile a schema file too:  gcc -m64 -fsyntax-only -include schemas/kvmtyped-types.h FILE.h */
#pragma once
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <sys/types.h>

typedef uint8_t u8;
typedef int8_t s8;
typedef uint16_t u16;
typedef int16_t s16;
typedef uint32_t u32;
typedef int32_t s32;
typedef uint64_t u64;
typedef int64_t s64;
typedef uint8_t __u8;
typedef int8_t __s8;
typedef uint16_t __u16;
typedef int16_t __s16;
typedef uint32_t __u32;
typedef int32_t __s32;
typedef uint64_t __u64;
typedef int64_t __s64;
typedef uint16_t __le16;
typedef uint16_t __be16;
typedef uint32_t __le32;
typedef uint32_t __be32;
typedef uint64_t __le64;
typedef uint64_t __be64;

/* Marks a member of a preserve_access_index struct that only some kernels have (after the member's name), or such a
 * struct itself (after its closing brace): KvmTyped's build-time kernel check does not report its absence, and the view
 * gets a Has_<member> property. To gcc it is nothing. */
#define __kvmt_optional
