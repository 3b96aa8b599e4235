#!/bin/bash
# Regenerates samples/linux-amd64: a real kdump of a Debian x86-64 kernel, booted under QEMU (TCG),
# made the way a distribution's kdump makes one:
#   the guest boots with crashkernel=..., its busybox initramfs loads a capture kernel with `kexec -p`,
#   records the ground truth on the serial console, and panics through sysrq; the capture kernel's
#   initramfs runs `makedumpfile -c -d 31` (kdump-compressed, zlib, kernel pages only) on /proc/vmcore
#   and writes the result to a raw virtio disk, which this script reads back.
#
# Everything comes from Debian's archive (apt-get); nothing else is downloaded.
# Needs: root on Debian 12 (bookworm) amd64 with apt-get, about 1.5 GB in the work folder.
#
# Usage: make-sample.sh [OUTDIR]      (default: the folder this script is in)
# Environment: KVER (Debian kernel ABI name, default 6.1.0-56-amd64), WORK (build folder, default a
#              new folder under /tmp), MEM (guest MiB, default 320), CRASHKERNEL (default 128M),
#              SMP (vCPUs, default 2), QEMU_TIMEOUT (seconds, default 3000).
set -euo pipefail

KVER=${KVER:-6.1.0-56-amd64}
MEM=${MEM:-320}
CRASHKERNEL=${CRASHKERNEL:-128M}
SMP=${SMP:-2}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-3000}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "${1:-$HERE}" && cd "${1:-$HERE}" && pwd)
WORK=${WORK:-$(mktemp -d /tmp/kvmsample-build.XXXXXX)}
mkdir -p "$WORK"
cd "$WORK"
log() { printf '[make-sample] %s\n' "$*" >&2; }

# --- 1. Debian packages ------------------------------------------------------------------------------
log "installing host tools from Debian"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    qemu-system-x86 busybox-static kexec-tools makedumpfile crash cpio gzip python3 python3-libkdumpfile >/dev/null

log "downloading linux-image-$KVER and its -dbg package (for System.map)"
mkdir -p debs
(cd debs && apt-get download -q "linux-image-$KVER" "linux-image-$KVER-dbg")
IMG_DEB=$(ls debs/linux-image-"$KVER"_*.deb)
DBG_DEB=$(ls debs/linux-image-"$KVER"-dbg_*.deb)
rm -rf kpkg && mkdir kpkg && dpkg-deb -x "$IMG_DEB" kpkg
VMLINUZ=kpkg/boot/vmlinuz-$KVER
MODDIR=kpkg/lib/modules/$KVER/kernel
# the linux-image package's System.map is a placeholder; the real one is in the -dbg package
dpkg-deb --fsys-tarfile "$DBG_DEB" | tar -xO "./usr/lib/debug/boot/System.map-$KVER" > "System.map-$KVER"
test "$(wc -l < "System.map-$KVER")" -gt 1000

# copies a dynamically linked program and the libraries it needs into an initramfs tree
copy_prog() { # root program
    local root=$1 prog=$2 lib
    install -D -m 0755 "$prog" "$root$prog"
    for lib in $(ldd "$prog" | awk '/=> \//{print $3} /^\t\/lib/{print $1}'); do
        install -D -m 0755 "$lib" "$root$lib"
    done
}

mkcpio() { # dir out.cpio.gz
    (cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -9n > "$2"
}

# --- 2. capture initramfs: runs makedumpfile on /proc/vmcore, writes the dump to /dev/vda ---------------
log "building the capture initramfs"
rm -rf cap && mkdir -p cap/bin cap/proc cap/sys cap/dev cap/tmp cap/lib/modules
cp /bin/busybox cap/bin/busybox
copy_prog cap /usr/bin/makedumpfile
for m in virtio/virtio_ring virtio/virtio virtio/virtio_pci_legacy_dev virtio/virtio_pci_modern_dev \
         virtio/virtio_pci block/virtio_blk; do
    cp "$MODDIR/drivers/$m.ko" cap/lib/modules/
done
cat > cap/init <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
echo "@K capture kernel: $(uname -a)"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
    insmod /lib/modules/$m.ko || echo "@K insmod $m failed"
done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done
ls -l /proc/vmcore
echo "@K makedumpfile: $(makedumpfile -v 2>&1 | head -n 1)"
if makedumpfile -c -d 31 /proc/vmcore /tmp/vmcore.kdump; then
    size=$(stat -c %s /tmp/vmcore.kdump)
    sum=$(sha256sum /tmp/vmcore.kdump | cut -d' ' -f1)
    dd if=/tmp/vmcore.kdump of=/dev/vda bs=1M conv=fsync 2>/dev/null
    sync
    echo "@K dump-written size=$size sha256=$sum"
else
    echo "@K makedumpfile failed"
fi
reboot -f
EOF
chmod 0755 cap/init
mkcpio cap capture.cpio.gz

# --- 3. main initramfs: loads the capture kernel, starts a few processes, records the truth, panics ----
log "building the main initramfs"
rm -rf main && mkdir -p main/bin main/proc main/sys main/dev main/tmp main/boot
cp /bin/busybox main/bin/busybox
copy_prog main /usr/sbin/kexec
cp "$VMLINUZ" main/boot/vmlinuz
cp capture.cpio.gz main/boot/capture.cpio.gz
cat > main/bin/kvmsample <<'EOF'
#!/bin/sh
# a recognisable process for `ps`: its comm is "kvmsample", its argv names it
while true; do sleep 1000; done
EOF
chmod 0755 main/bin/kvmsample
cat > main/init <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
hostname kvmsample-guest
echo "@M main kernel up"
kexec -p /boot/vmlinuz --initrd=/boot/capture.cpio.gz \
    --append="console=ttyS0,115200 nr_cpus=1 irqpoll reset_devices panic=-1 loglevel=4 kvmsample_capture"
echo "@M kexec_crash_loaded=$(cat /sys/kernel/kexec_crash_loaded)"
[ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ] || { echo "@M no capture kernel loaded"; reboot -f; }
sleep 1000 &
/bin/kvmsample --mode demo --label sample-dump &
sleep 3
dmesg -n 1
t() { printf '@T\t%s\t%s\n' "$1" "$2"; }
t uname_a "$(uname -a)"
t proc_version "$(cat /proc/version)"
t cmdline "$(cat /proc/cmdline)"
t vmcoreinfo "$(cat /sys/kernel/vmcoreinfo)"
for s in _text _stext linux_banner init_task init_uts_ns init_top_pgt vmcoreinfo_data jiffies init_mm; do
    t sym "$(grep -m1 " $s\$" /proc/kallsyms)"
done
t meminfo "$(head -n 3 /proc/meminfo | tr -s ' ' | tr '\n' ';')"
while IFS= read -r l; do t iomem_line "$l"; done < /proc/iomem
t uptime "$(cat /proc/uptime)"
for d in /proc/[0-9]*/task/[0-9]*; do
    [ -r $d/status ] || continue
    tid=${d##*/}; p=${d%/task/*}; tgid=${p##*/}
    ppid=$(awk '/^PPid:/{print $2}' $d/status 2>/dev/null)
    st=$(awk '/^State:/{print $2}' $d/status 2>/dev/null)
    comm=$(cat $d/comm 2>/dev/null)
    cpu=$(sed 's/.*) //' $d/stat 2>/dev/null | awk '{print $37}')
    args=$(tr '\0' ' ' < $p/cmdline 2>/dev/null)
    [ -n "$st" ] && printf '@T\ttask\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tgid" "$tid" "$ppid" "$st" "$cpu" "$comm" "$args"
done
echo "@M truth recorded, crashing"
dmesg -n 7
echo c > /proc/sysrq-trigger
sleep 60
reboot -f
EOF
chmod 0755 main/init
mkcpio main main.cpio.gz

# --- 4. run the guest ---------------------------------------------------------------------------------
log "booting QEMU (TCG, ${MEM} MiB, $SMP vCPUs, crashkernel=$CRASHKERNEL); this takes several minutes"
rm -f disk.img serial.log && truncate -s 64M disk.img
CMDLINE="console=ttyS0,115200 crashkernel=$CRASHKERNEL panic=-1 loglevel=7 kvmsample_main"
echo "$CMDLINE" > cmdline.txt
# KASLR places the kernel at a random physical address, so the crashkernel reservation can fail on
# an unlucky boot: try up to three boots
for attempt in 1 2 3; do
    rm -f serial.log
    timeout --kill-after=30 "$QEMU_TIMEOUT" qemu-system-x86_64 -machine pc -accel tcg -m "$MEM" -smp "$SMP" \
        -display none -monitor none -serial "file:serial.log" -no-reboot -nic none \
        -kernel "$VMLINUZ" -initrd main.cpio.gz -append "$CMDLINE" \
        -drive file=disk.img,format=raw,if=virtio </dev/null || log "QEMU exited with $?"
    line=$(grep -a '@K dump-written' serial.log | tail -n 1 | tr -d '\r') || true
    [ -n "$line" ] && break
    log "boot $attempt wrote no dump"
    grep -a -q '@M no capture kernel loaded' serial.log || break
done
[ -n "$line" ] || { log "no dump was written; see $WORK/serial.log"; exit 1; }
size=$(sed -n 's/.*size=\([0-9]*\).*/\1/p' <<<"$line")
sum=$(sed -n 's/.*sha256=\([0-9a-f]*\).*/\1/p' <<<"$line")
head -c "$size" disk.img > vmcore.kdump
echo "$sum  vmcore.kdump" | sha256sum -c -

# --- 5. outputs -----------------------------------------------------------------------------------------
install -m 0644 vmcore.kdump "$OUT/vmcore.kdump"
install -m 0644 "System.map-$KVER" "$OUT/System.map-$KVER"
python3 - "$WORK/serial.log" "$OUT/truth.json" "System.map-$KVER" "$IMG_DEB" "$MEM" "$SMP" "$CRASHKERNEL" <<'EOF'
import json, re, subprocess, sys
serial, out, sysmap, deb, mem, smp, crash = sys.argv[1:]
lines = open(serial, 'rb').read().decode('utf-8', 'replace').replace('\r', '').split('\n')
truth = {"tasks_from_proc": [], "kernel_symbols_runtime": {}}
for l in lines:
    if not l.startswith('@T\t'):
        continue
    f = l.split('\t')
    if f[1] == 'task':
        tgid, tid, ppid, st, cpu, comm, args = (f[2:] + [''] * 7)[:7]
        truth["tasks_from_proc"].append({"pid": int(tid), "tgid": int(tgid), "ppid": int(ppid), "state": st,
                                         "cpu": int(cpu) if cpu.isdigit() else None,
                                         "comm": comm, "args": args.rstrip()})
    elif f[1].endswith('_line'):
        key = f[1][:-5]
        truth[key] = (truth[key] + '\n' if key in truth else '') + f[2]
    elif f[1] == 'sym':
        parts = f[2].split()
        if len(parts) >= 3:
            truth["kernel_symbols_runtime"][parts[2]] = "0x" + parts[0]
    else:
        truth[f[1]] = f[2]
link = {}
for l in open(sysmap):
    a, t, n = l.split()[:3]
    if n in truth["kernel_symbols_runtime"] and n not in link:
        link[n] = int(a, 16)
truth["tasks_from_proc"].sort(key=lambda t: t["pid"])
rt_text = int(truth["kernel_symbols_runtime"]["_text"], 16)
truth["kaslr_offset"] = hex(rt_text - link["_text"])
truth["kaslr_offset_note"] = "runtime _text (/proc/kallsyms) - link-time _text (System.map)"
truth["kernel_symbols_linktime"] = {k: hex(v) for k, v in sorted(link.items())}
truth["linux_banner"] = truth["proc_version"]
truth["linux_banner_note"] = ("/proc/version prints the same text as linux_banner (without its final newline); "
                              "linux_banner is at System.map's address + kaslr_offset")
truth["tasks_note"] = ("every thread from /proc/<pid>/task/<tid>, a few seconds before the sysrq crash; pid is the "
                       "thread id, tgid the process, cpu the CPU it last ran on (field 39 of stat); /proc's comm of a kworker carries its workqueue suffix (task->comm is at "
                       "most 15 chars); init (pid 1) itself wrote to /proc/sysrq-trigger, so at the panic it is the running task of its CPU; "
                       "a short-lived child of the shell loop that read /proc (awk, cat, sed, tr) may be listed")
pkgs = subprocess.run(["dpkg-query", "-W", "-f", "${Package}=${Version}\\n", "qemu-system-x86", "busybox-static",
                       "kexec-tools", "makedumpfile"], capture_output=True, text=True).stdout.split()
truth["guest"] = {"memory_mib": int(mem), "vcpus": int(smp), "crashkernel": crash, "kernel_deb": deb.split('/')[-1],
                  "host_packages": pkgs}
def after(prefix):
    return next((l[len(prefix):].strip() for l in lines if l.startswith(prefix)), None)
panic = [l for l in lines if 'Kernel panic' in l]
truth["kdump"] = {"capture_kernel": after('@K capture kernel:'),
                  "makedumpfile": after('@K makedumpfile: makedumpfile:'),
                  "makedumpfile_command": "makedumpfile -c -d 31 /proc/vmcore vmcore.kdump",
                  "dump_written": after('@K dump-written'),
                  "panic": panic[0].strip() if panic else None}
order = ["uname_a", "proc_version", "linux_banner", "linux_banner_note", "cmdline", "kaslr_offset", "kaslr_offset_note",
         "kernel_symbols_linktime", "kernel_symbols_runtime", "vmcoreinfo", "meminfo", "iomem", "uptime", "guest", "kdump",
         "tasks_note", "tasks_from_proc"]
json.dump({k: truth[k] for k in order if k in truth}, open(out, 'w'), indent=1)
open(out, 'a').write('\n')
EOF

# --- 6. checks: the header, makedumpfile can read it back, libkdumpfile finds linux_banner ------------
log "checking the dump"
file "$OUT/vmcore.kdump"
test "$(head -c 8 "$OUT/vmcore.kdump")" = "KDUMP   "
rm -f dmesg.txt
makedumpfile --dump-dmesg "$OUT/vmcore.kdump" dmesg.txt >/dev/null 2>&1
grep -q 'sysrq triggered crash' dmesg.txt
(cd "$OUT" && /usr/bin/python3 -c '
import json, kdumpfile as K
k = K.kdumpfile("vmcore.kdump"); k.attr["addrxlat.ostype"] = "linux"
off = int(k.attr["linux.vmcoreinfo.lines"]["KERNELOFFSET"], 16)
t = json.load(open("truth.json"))
a = int(t["kernel_symbols_linktime"]["linux_banner"], 16) + off
banner = k.read(K.KDUMP_KVADDR, a, 512).split(b"\0")[0].decode().rstrip("\n")
assert hex(off) == t["kaslr_offset"], (hex(off), t["kaslr_offset"])
assert banner == t["linux_banner"], banner
print("linux_banner at", hex(a), "(KASLR offset", hex(off) + "):", banner)')

# --- 7. an independent reading of the dump: crash with the -dbg package's vmlinux walks the task list -----
log "reading the task list out of the dump with crash (vmlinux with DWARF from the -dbg package)"
[ -s "vmlinux-$KVER" ] || dpkg-deb --fsys-tarfile "$DBG_DEB" | tar -xO "./usr/lib/debug/boot/vmlinux-$KVER" > "vmlinux-$KVER"
printf 'sys\nlist task_struct.tasks -s task_struct.pid,tgid,__state,exit_state,comm,real_parent -h init_task\nquit\n' > crash.cmds
timeout 900 crash -s "vmlinux-$KVER" "$OUT/vmcore.kdump" -i crash.cmds > crash.out 2>&1 || log "crash exited with $?"
python3 - crash.out dmesg.txt "$OUT/truth.json" <<'PYEOF'
import json, re, sys
crash_out, dmesg, out = sys.argv[1:]
tasks, cur = [], None
for l in open(crash_out, errors='replace'):
    l = l.strip()
    if re.fullmatch(r'[0-9a-f]{16}', l):
        cur = {"task": int(l, 16)}; tasks.append(cur)
    elif cur is not None and ' = ' in l:
        k, v = l.rstrip(',').split(' = ', 1); cur[k] = v
by_addr = {t["task"]: int(t["pid"]) for t in tasks}
def state(t):
    if int(t["exit_state"]) & 0x20: return "Z"
    if int(t["exit_state"]) & 0x10: return "X"
    s = int(t["__state"])
    if s == 0: return "R"
    if s == 0x402: return "I"
    return {1: "S", 2: "D", 4: "T", 8: "t"}.get(s & 0xff, hex(s))
rows = [{"pid": int(t["pid"]), "tgid": int(t["tgid"]), "state": state(t),
         "ppid": 0 if int(t["pid"]) == 0 else by_addr.get(int(re.match(r'0x([0-9a-f]+)', t["real_parent"]).group(1), 16)),
         "comm": re.sub(r'(\\000)*"$', '', t["comm"]).lstrip('"'), "task": hex(t["task"])} for t in tasks]
truth = json.load(open(out))
truth["tasks_from_dump_crash"] = rows
truth["tasks_from_dump_note"] = ("crash 8.0.2 on this dump with vmlinux-<release> (DWARF) from the -dbg package, walking "
                                 "init_task.tasks (thread group leaders; there are no other threads here): the state "
                                 "at the panic. crash 8.0.2's own `ps` finds only the active tasks on this 6.1 kernel")
log = [l.rstrip('\n') for l in open(dmesg, errors='replace')]
truth["dmesg_from_dump_lines"] = len(log)
truth["dmesg_from_dump_head"] = log[:3]
truth["dmesg_from_dump_tail"] = log[-40:]
truth["dmesg_note"] = "from `makedumpfile --dump-dmesg vmcore.kdump`: the printk ring buffer at the panic"
json.dump(truth, open(out, 'w'), indent=1)
open(out, 'a').write('\n')
print(len(rows), "tasks in the dump;", len(truth["tasks_from_proc"]), "recorded from /proc before the panic")
PYEOF

log "done:"
ls -la "$OUT"
du -sh "$OUT"
log "build intermediates (debs, vmlinuz, initramfs, disk image, serial log) are in $WORK"
