#!/bin/bash
# run-guest.sh KVMTYPED FACADE DATA_LOG [LIME_DISK] — boot the fixture kernel (../shared/fixtures/amd64/live) under
# QEMU with the native kvmtyped tool, the native libkvm facade program (tests/KvmTyped.LiveFacade) and strace inside,
# run guest-init.sh there, and leave the guest's data channel in DATA_LOG (blocks @@KVMLIVE BEGIN name@@ … END).
# With LIME_DISK, the guest also gets that file as a virtio disk and LiME (modules/) writes its memory there: the
# file then starts with a LiME image of the guest (followed by the disk's unused zeros).
# The initramfs follows live-check.sh's: busybox (static), each binary with every library ldd names, at the same paths.
# Env: LIVE_TIMEOUT (s, whole guest, default 600), LIVE_ACCEL (kvm|tcg), LIVE_KEEP=DIR (keep the work folder).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
KERNEL=${LIVE_KERNEL:-$REPO/../shared/fixtures/amd64/live/vmlinuz-6.1.0-56-amd64}
if [ $# -ne 3 ] && [ $# -ne 4 ]; then echo "usage: $0 KVMTYPED FACADE DATA_LOG [LIME_DISK]" >&2; exit 2; fi
TOOL=$(readlink -f "$1"); FACADE=$(readlink -f "$2"); DATA=$3; DISK=${4:-}
MEM=256
for f in "$TOOL" "$FACADE"; do [ -x "$f" ] || { echo "run-guest: $f: not an executable file" >&2; exit 2; }; done
[ -f "$KERNEL" ] || { echo "run-guest: $KERNEL missing" >&2; exit 2; }
missing=()
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
command -v cpio >/dev/null || missing+=(cpio)
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v strace >/dev/null || missing+=(strace)
if [ ${#missing[@]} -gt 0 ]; then echo "run-guest: missing ${missing[*]}: apt-get install ${missing[*]}" >&2; exit 2; fi

WORK=$(mktemp -d /tmp/kvmlive-guest.XXXXXX)
cleanup() { [ -n "${QPID:-}" ] && kill "$QPID" 2>/dev/null; if [ -n "${LIVE_KEEP:-}" ]; then mkdir -p "$LIVE_KEEP" && cp -r "$WORK"/. "$LIVE_KEEP"/; fi; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,usr/bin,dev,proc,sys,tmp,kvmlive/bin}
cp /bin/busybox "$ROOT/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$ROOT/bin/$a"; done
cp "$TOOL" "$ROOT/kvmlive/bin/kvmtyped"
cp "$FACADE" "$ROOT/kvmlive/bin/facade"
STRACE=$(command -v strace)
cp "$STRACE" "$ROOT/usr/bin/strace"
# Debian's strace is dynamically linked (libunwind, liblzma): its libraries go in too, at the paths ldd gives.
for bin in "$TOOL" "$FACADE" "$STRACE"; do
  for lib in $(ldd "$bin" 2>/dev/null | grep -oE '(^|[[:space:]])/[^[:space:]]+'); do
    [ -e "$lib" ] || continue
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
  done
done
DRIVE=()
if [ -n "$DISK" ]; then
  # The guest's memory (MEM MiB) and LiME's headers fit with room to spare.
  rm -f "$DISK"; truncate -s $((MEM + 64))M "$DISK"
  mkdir -p "$ROOT/kvmlive/modules"
  cp "$HERE"/modules/*.ko "$ROOT/kvmlive/modules/"
  DRIVE=(-drive "file=$DISK,format=raw,if=virtio")
fi
install -m 755 "$HERE/guest-init.sh" "$ROOT/init"
(cd "$ROOT" && find . -print0 | cpio --null -o -H newc --owner=0:0 2>/dev/null) | gzip -1 > "$WORK/initrd.gz"

ACCEL=${LIVE_ACCEL:-}
if [ -z "$ACCEL" ]; then if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then ACCEL=kvm; else ACCEL=tcg; fi; fi
T=${LIVE_TIMEOUT:-600}
: > "$WORK/console.log"; : > "$DATA"
START=$(date +%s)
timeout --foreground -k 5 "$T" qemu-system-x86_64 -accel "$ACCEL" -cpu max,la57=off -smp 2 -m $MEM \
  -kernel "$KERNEL" -initrd "$WORK/initrd.gz" "${DRIVE[@]}" \
  -append "console=ttyS0 kaslr panic=-1 loglevel=4 kvmlive_timeout=120" \
  -nographic -no-reboot -monitor none \
  -serial "file:$WORK/console.log" -serial "file:$DATA" </dev/null >"$WORK/qemu.out" 2>&1 &
QPID=$!
wait "$QPID"; QRC=$?; QPID=
echo "run-guest: guest ran $(( $(date +%s) - START ))s (qemu exit $QRC, accel $ACCEL)"
if ! grep -q '@@KVMLIVE DONE@@' "$DATA"; then
  echo "run-guest: the guest did not finish; console tail:"; tail -n 15 "$WORK/console.log" | sed 's/^/  | /'
  exit 1
fi
exit 0
