/* A struct declared in C; its peer (struct gadget) is declared in C# (Gadget.cs). */
#include "list.h"

struct gadget;

struct widget {
    u32 id;
    long size;
    char label[12];
    struct list_head link;
    struct gadget *peer;
    unsigned int on : 1, level : 4;
};
