# The drgn side of the ps job:  drgn -q -c DUMP -s VMLINUX drgn_ps.py
# Every task, threads included, with the idle task of each CPU (drgn's for_each_task walks the pid IDR,
# which holds no pid 0): "PID PPID STATE COMM", PPID the real parent's thread-group id, STATE the letter
# /proc prints. drgn injects `prog`.
from drgn.helpers.linux.cpumask import for_each_possible_cpu
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import idle_task, task_state_to_char

tasks = [idle_task(prog, cpu) for cpu in for_each_possible_cpu(prog)]
tasks = [t for t in tasks if t] + list(for_each_task(prog))
for t in tasks:
    print("%d %d %s %s" % (t.pid.value_(), t.real_parent.tgid.value_(), task_state_to_char(t),
                           t.comm.string_().decode(errors="replace")))
