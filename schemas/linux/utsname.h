/* uname(2) strings (include/uapi/linux/utsname.h, include/linux/utsname.h). */
#pragma once

enum {
    __NEW_UTS_LEN = 64,
};

/* Complete: a user-space ABI, six strings of 65 bytes. */
struct new_utsname {
    char sysname[__NEW_UTS_LEN + 1];
    char nodename[__NEW_UTS_LEN + 1];
    char release[__NEW_UTS_LEN + 1];
    char version[__NEW_UTS_LEN + 1];
    char machine[__NEW_UTS_LEN + 1];
    char domainname[__NEW_UTS_LEN + 1];
};

/* A subset, relocated against the kernel's BTF: init_uts_ns is one of these. */
struct uts_namespace {
    struct new_utsname name;
} __attribute__((preserve_access_index));
