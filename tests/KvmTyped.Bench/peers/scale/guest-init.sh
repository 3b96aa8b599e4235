#!/bin/busybox sh
# /init of the scale guest (busybox ash, PID 1), put in its initramfs by make-dumps.sh with /bin/taskbomb
# and /qemu_fw_cfg.ko. For each stage it grows the task count, counts the tasks itself (builtins only: no
# process of its own is alive while it counts or while the host dumps), says so on ttyS1 and waits there
# for the host's "go" (the host dumps the stopped guest meanwhile):
#   guest: @@SCALE READY STAGE TASKS MEMFREE_KB@@      host: go
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
insmod /qemu_fw_cfg.ko             # writes VMCOREINFO into QEMU's vmcoreinfo device, so the dumps carry it
echo 200000 > /proc/sys/kernel/threads-max
stty -F /dev/ttyS1 raw -echo 115200
hostname scale-guest

for stage in $(cat /proc/cmdline); do
  case $stage in scale_stages=*) stages=${stage#scale_stages=} ;; esac
done
for stage in $(echo "${stages:-idle,1000,5000,10000}" | tr , ' '); do
  [ "$stage" = idle ] || /bin/taskbomb "$stage" || echo "scale: taskbomb $stage failed"
  n=0
  for t in /proc/[0-9]*/task/[0-9]*; do n=$((n + 1)); done
  while read -r key value unit; do [ "$key" = MemFree: ] && free=$value; done < /proc/meminfo
  echo "scale: stage $stage: $n tasks, MemFree $free kB"
  echo "@@SCALE READY $stage $n $free@@" > /dev/ttyS1
  read -r reply < /dev/ttyS1
done
echo "scale: done"
poweroff -f
