/* Types shaped like a recent kernel's, for BTF with the newer kinds: TYPE_TAG (__user, __rcu on pointers),
 * DECL_TAG (on a struct, a member, a function and its argument), ENUM64 (enumerators past 32 bits, signed
 * and unsigned), and const/volatile function-pointer members as in struct kset_uevent_ops since 6.2.
 * make-tagged-btf.sh turns it into tagged.btf. */
#define __user __attribute__((btf_type_tag("user")))
#define __rcu __attribute__((btf_type_tag("rcu")))
#define __tag(x) __attribute__((btf_decl_tag(x)))

struct kobject { const char *name; struct kobject *parent; };

struct kset_uevent_ops {
	int (* const filter)(const struct kobject *kobj);
	const char *(* const name)(const struct kobject *kobj);
	int (* volatile uevent)(const struct kobject *kobj, void *env);
};

enum tag_wide { TAG_WIDE_LOW = 1, TAG_WIDE_HIGH = 0x100000000ULL, TAG_WIDE_TOP = 0xffffffffffffffffULL };
enum tag_signed { TAG_NEG = -0x100000000LL, TAG_POS = 7 };

struct tag_task {
	int pid __tag("pid");
	unsigned int state : 3 __tag("bits");
	unsigned int flags : 5;
	char __user *ubuf;
	struct tag_task __rcu *parent;
	const struct kset_uevent_ops *ops;
	enum tag_wide wide;
	enum tag_signed sign;
	int (* const cb)(int __user *arg);
	const volatile long *const vc;
	union {
		unsigned long long u;
		char bytes[8];
	};
	char comm[16];
} __tag("task");

int tag_fn(int a __tag("arg"), char __user *buf) __tag("fn");
int tag_fn(int a, char __user *buf) { return a + buf[0]; }

struct tag_task tag_task_0;
struct kset_uevent_ops tag_ops_0;
enum tag_wide tag_wide_0;
enum tag_signed tag_signed_0;
