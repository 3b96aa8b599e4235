/* Credentials (include/linux/cred.h, include/linux/uidgid.h). */
#pragma once

/* Complete: a wrapper the kernel uses so uids and gids cannot be mixed up. */
typedef struct {
    uid_t val;
} kuid_t;

typedef struct {
    gid_t val;
} kgid_t;

/* A subset, relocated against the kernel's BTF. */
struct cred {
    kuid_t uid;
    kgid_t gid;
    kuid_t suid;
    kgid_t sgid;
    kuid_t euid;
    kgid_t egid;
    kuid_t fsuid;
    kgid_t fsgid;
} __attribute__((preserve_access_index));
