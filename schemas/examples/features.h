/* Every feature of the schema language in one file (compiles with gcc, checked against gcc by the tests). */
#include <stdint.h>

typedef unsigned long my_ulong;           /* typedef of a scalar */
typedef struct example_point *point_ptr;  /* typedef of a pointer to a struct declared later */

struct opaque;                             /* incomplete: usable only through pointers */

enum example_state {
    EXAMPLE_IDLE,
    EXAMPLE_BUSY = 4,
    EXAMPLE_DONE = EXAMPLE_BUSY << 1,      /* constant expressions: + - * / % << >> & | ^ ~ ( ) */
};

enum {
    EXAMPLE_NAME_LEN = 16,                 /* anonymous enums name array sizes */
};

struct example_point {
    int x, y;
};

typedef struct {                           /* an anonymous struct named by its typedef */
    uint32_t val;
} example_id_t;

union example_value {
    long long as_int;
    double as_double;
    unsigned char bytes[8];
};

struct example_all {
    char c;
    signed char sc;
    unsigned char uc;
    short s;
    unsigned short us;
    int i;
    unsigned int ui;
    long l;
    unsigned long ul;
    long long ll;
    unsigned long long ull;
    _Bool b;
    float f;
    double d;
    u8 k8; s16 k16; __u32 k32; s64 k64;    /* kernel fixed-width names */
    uint16_t w16; int64_t w64;             /* <stdint.h> names */
    size_t size; ssize_t ssize; uintptr_t uptr; my_ulong mine;
    enum example_state state;
    struct opaque *hidden;                 /* pointer to an incomplete type */
    int (*callback)(void *, int);          /* pointer to a function */
    point_ptr link;
    char name[EXAMPLE_NAME_LEN];           /* a char array reads as a string */
    short grid[2][3];                      /* multi-dimensional array */
    struct example_point corner;           /* nested struct by value */
    example_id_t id;
    union example_value value;
    unsigned int ready : 1, mode : 3;      /* bitfields */
    unsigned int : 0;                      /* zero-width: next bitfield starts a new unit */
    int level : 5;
    unsigned int : 2;                      /* unnamed padding bits */
    union {                                /* anonymous union: its members are reached directly */
        int as_signed;
        unsigned int as_unsigned;
    };
    struct {                               /* anonymous struct */
        short lo, hi;
    };
    struct example_point samples[];        /* flexible array member, last */
};

struct example_packed {
    char tag;
    int value;
    short aligned_member __attribute__((aligned(8)));
} __attribute__((packed));

struct __attribute__((aligned(16))) example_aligned {
    char c;
};

/* A subset of a kernel struct: offsets come from the kernel's BTF at run time. */
struct example_relocated {
    int pid;
    char comm[16];
} __attribute__((preserve_access_index));
