#!/bin/bash
# install.sh — everything the peers benchmark (run.sh) and the scale dumps (scale/) need, as root on Debian 12:
#   the peers:           python3-libkdumpfile (the lean script's library), python3-drgn, makedumpfile (-R)
#   NativeAOT:           clang (the compiler driver and linker the ILCompiler calls) and zlib1g-dev (-lz)
#   timing cross-check:  hyperfine, time (run.sh itself times with wait4(2))
#   the scale guest:     qemu-system-x86 (TCG is enough), busybox-static, cpio, gcc + libc6-dev (gcc -static)
#   drgn's types:        the DWARF vmlinux of the -dbg package (fetch-dbg.sh, ~820 MiB download, cached)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

packages=(python3-libkdumpfile python3-drgn makedumpfile clang zlib1g-dev hyperfine time
          qemu-system-x86 busybox-static cpio gcc libc6-dev)
need=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true        # a mirror mid-sync for one architecture must not stop the rest
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
"$here/fetch-dbg.sh"
