# The drgn side of the mod job:  drgn -q -c DUMP -s VMLINUX drgn_mod.py
# The loaded modules in list order (the kernel's `modules` list, newest first, as /proc/modules lists them):
# "NAME BASE SIZE", BASE the core text's address and SIZE the core size, from core_layout (before 6.4) or the
# core parts of mem[] (6.4 and later). drgn injects `prog`.
from drgn.helpers.linux.list import list_for_each_entry

for m in list_for_each_entry("struct module", prog["modules"].address_of_(), "list"):
    name = m.name.string_().decode(errors="replace")
    if hasattr(m, "core_layout"):
        base, size = m.core_layout.base.value_(), m.core_layout.size.value_()
    else:  # 6.4+: MOD_TEXT, MOD_DATA, MOD_RODATA, MOD_RO_AFTER_INIT are the core parts
        base = m.mem[0].base.value_()
        size = sum(m.mem[i].size.value_() for i in range(4))
    print("%s %x %d" % (name, base, size))
