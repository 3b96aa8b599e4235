# The drgn side of the bt job:  drgn -q -c DUMP -s VMLINUX drgn_bt.py
# Every task's kernel stack, for the tasks drgn_ps.py lists (each CPU's idle task, then for_each_task): a line
# "TASK ADDRESS PID COMM", then one line per frame: "PC SYMBOL SYMBOL_ADDRESS", SYMBOL the ELF symbol the pc is in
# (kvmtyped names frames from System.map; DWARF's names differ for .cold/.isra/.constprop parts), or "PC ? 0" when
# no symbol holds it.
# Inlined frames (drgn expands them from DWARF) share the pc of the frame they are inlined into and are printed
# as "inline NAME". The walk stops at the first pc in user space (where the kernel was entered). drgn injects `prog`.
from drgn.helpers.linux.cpumask import for_each_possible_cpu
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import idle_task

tasks = [idle_task(prog, cpu) for cpu in for_each_possible_cpu(prog)]
tasks = [t for t in tasks if t] + list(for_each_task(prog))
out = []
for t in tasks:
    out.append("TASK %x %d %s" % (t.value_(), t.pid.value_(), t.comm.string_().decode(errors="replace")))
    try:
        trace = prog.stack_trace(t)
    except Exception as e:  # a task whose stack drgn cannot start on
        out.append("error %s" % e)
        continue
    for frame in trace:
        if frame.pc < 1 << 63:
            break
        if frame.is_inline:
            out.append("inline %s" % frame.name)
            continue
        try:
            sym = frame.symbol()
            out.append("%x %s %x" % (frame.pc, sym.name, sym.address))
        except LookupError:
            out.append("%x ? 0" % frame.pc)
print("\n".join(out))
