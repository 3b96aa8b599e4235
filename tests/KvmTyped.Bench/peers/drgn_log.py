# The drgn side of the log job:  drgn -q -c DUMP -s VMLINUX drgn_log.py
# The kernel log as dmesg prints it, from drgn's own printk helper. drgn injects `prog`.
import sys

from drgn.helpers.linux.printk import get_dmesg

sys.stdout.buffer.write(get_dmesg(prog))
