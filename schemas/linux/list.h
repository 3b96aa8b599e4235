/* Doubly linked lists and hash lists (include/linux/types.h). Complete: their layout is the same in every
 * kernel, so it is computed from these declarations. */
#pragma once

struct list_head {
    struct list_head *next, *prev;
};

struct hlist_head {
    struct hlist_node *first;
};

struct hlist_node {
    struct hlist_node *next, **pprev;
};
