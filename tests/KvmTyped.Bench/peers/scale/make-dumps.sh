#!/bin/bash
# make-dumps.sh — the scale dumps: a 2 GiB guest of the fixtures' kernel (6.1.0-56-amd64) under QEMU (TCG),
# dumped at ≈60 (idle), 1,000, 5,000 and 10,000 tasks, as a paging-off ELF and as kdump-zlib, plus the kdump
# reassembled with `makedumpfile -R` for libkdumpfile. Into $KVMTYPED_SCALE_CACHE (default
# ~/.cache/kvmtyped-scale); a stage whose files are all there is not made again (delete them to redo).
#   scale/make-dumps.sh            env: SCALE_MEM (MiB, 2048), SCALE_STAGES (idle,1000,5000,10000), SCALE_TIMEOUT (s, 3600)
# Needs (install.sh): qemu-system-x86, busybox-static, cpio, gcc + libc6-dev, makedumpfile.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
fixtures=$repo/../shared/fixtures/amd64
[ -d "$fixtures" ] || fixtures=/work/shared/fixtures/amd64
kernel=$fixtures/live/vmlinuz-6.1.0-56-amd64
fwcfg=$fixtures/panic-kaslr/qemu_fw_cfg.ko      # the same kernel's module; it hands VMCOREINFO to QEMU
out=${KVMTYPED_SCALE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvmtyped-scale}
export SCALE_STAGES=${SCALE_STAGES:-idle,1000,5000,10000}

missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
command -v cpio >/dev/null || missing+=(cpio)
command -v gcc >/dev/null || missing+=(gcc)
command -v makedumpfile >/dev/null || missing+=(makedumpfile)
[ ${#missing[@]} -eq 0 ] || { echo "make-dumps: missing ${missing[*]}: run $here/../install.sh" >&2; exit 2; }

todo=
for s in ${SCALE_STAGES//,/ }; do
  for f in elf kdump-zlib kdump json; do [ -s "$out/tasks-$s.$f" ] || todo=1; done
done
if [ -z "$todo" ]; then echo "make-dumps: all stages present in $out"; exit 0; fi

mkdir -p "$out"
work=$(mktemp -d /tmp/kvmtyped-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys}
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
gcc -static -O2 -Wall -Wextra -pthread "$here/taskbomb.c" -o "$root/bin/taskbomb"
cp "$fwcfg" "$root/qemu_fw_cfg.ko"
install -m 755 "$here/guest-init.sh" "$root/init"
(cd "$root" && find . -print0 | cpio --null -o -H newc --owner=0:0 2>/dev/null) | gzip -1 > "$work/initrd.gz"

/usr/bin/python3 "$here/drive.py" "$kernel" "$work/initrd.gz" "$out"
cp "$out/run/console.log" "$out/console.log"
for s in ${SCALE_STAGES//,/ }; do
  [ -s "$out/tasks-$s.kdump-zlib" ] || { echo "make-dumps: stage $s was not dumped" >&2; exit 1; }
  rm -f "$out/tasks-$s.kdump"
  makedumpfile -R "$out/tasks-$s.kdump.tmp" < "$out/tasks-$s.kdump-zlib" >/dev/null
  mv "$out/tasks-$s.kdump.tmp" "$out/tasks-$s.kdump"
done
ls -la "$out"
