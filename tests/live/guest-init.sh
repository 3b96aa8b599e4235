#!/bin/busybox sh
# /init of the repository's live-kernel guest (busybox ash, PID 1), put in an initramfs by run-guest.sh with
# /kvmlive/bin/kvmtyped, /kvmlive/bin/facade, strace and their shared libraries, and /kvmlive/modules (virtio disk,
# LiME). Runs, against the running kernel: the libkvm facade program, `strace -c -f kvmtyped info`, and LiME onto the
# virtio disk (after printing what the test compares the LiME file with). Every result goes to the data channel (ttyS1) as
#   @@KVMLIVE BEGIN name@@\n<content>\n@@KVMLIVE END name rc=N@@
# then the guest powers off.
export PATH=/bin:/usr/bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /tmp && mount -t tmpfs tmpfs /tmp
echo 0 > /proc/sys/kernel/kptr_restrict
echo 0 > /proc/sys/kernel/dmesg_restrict
hostname kvmlive-facade
T=${kvmlive_timeout:-120}
OUT=/dev/ttyS1
if [ -c $OUT ] && stty -F $OUT raw -echo 115200 2>/dev/null; then :; else OUT=/dev/console; fi

# long-lived processes, so the task list has user processes that stay for the whole run
sleep 100001 &
sh -c 'sleep 100002; exit 0' &
sleep 1

block() {  # block NAME FILE RC
  { echo "@@KVMLIVE BEGIN $1@@"; cat "$2"; printf '\n@@KVMLIVE END %s rc=%s@@\n' "$1" "$3"; } >> $OUT
}
run() {    # run NAME COMMAND...   stdout and stderr together, under a timeout
  n=$1; shift
  echo "kvmlive: running $*"
  timeout -s KILL $T "$@" > /tmp/r.out 2>&1 < /dev/null; rc=$?
  echo "kvmlive: $n exit $rc"
  block "$n" /tmp/r.out $rc
}

echo "@@KVMLIVE START@@" >> $OUT
run facade /kvmlive/bin/facade
timeout -s KILL $T strace -c -f -o /tmp/strace.txt /kvmlive/bin/kvmtyped info > /tmp/info.out 2>&1 < /dev/null; rc=$?
block info /tmp/info.out $rc
block strace /tmp/strace.txt $rc
# A real LiME file of this guest, on the virtio disk run-guest.sh attached (when it did): the guest's own view first.
if [ -f /kvmlive/modules/lime.ko ]; then
  for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
    insmod /kvmlive/modules/$m.ko || echo "kvmlive: insmod $m failed"
  done
  n=0; while [ ! -b /dev/vda ] && [ $n -lt 50 ]; do sleep 0.2; n=$((n + 1)); done
  cat /proc/version > /tmp/t.out; block lime-version /tmp/t.out 0
  uname -n > /tmp/t.out; uname -r >> /tmp/t.out; uname -v >> /tmp/t.out; uname -m >> /tmp/t.out; block lime-uname /tmp/t.out 0
  grep -E ' (_stext|linux_banner|init_task)$' /proc/kallsyms > /tmp/t.out; block lime-kallsyms /tmp/t.out 0
  for d in /proc/[0-9]*; do read -r comm < $d/comm 2>/dev/null && echo "${d#/proc/} $comm"; done > /tmp/t.out
  block lime-pids /tmp/t.out 0
  timeout -s KILL $T insmod /kvmlive/modules/lime.ko "path=/dev/vda format=lime" > /tmp/r.out 2>&1; rc=$?
  sync
  block lime /tmp/r.out $rc
  echo "kvmlive: lime exit $rc"
fi
echo "@@KVMLIVE DONE@@" >> $OUT
sync
poweroff -f
while :; do sleep 3600; done
