#!/bin/bash
# run.sh — kvmtyped (native build) beside the lean libkdumpfile script and drgn, on the fixture dumps.
#   tests/KvmTyped.Bench/peers/run.sh [--rounds N] [--dump NAME]... [--job ps|log]... [--native BIN] [--no-build]
#                                     [--allow-differences]
# Builds the native CLI into artifacts/native (unless --native BIN or --no-build), then runs bench.py:
# outputs checked against each other first, then ROUNDS alternating whole-process runs, then the table.
# Needs what install.sh installs. Cache: $KVMTYPED_PEERS_CACHE (default ~/.cache/kvmtyped-peers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cache=${KVMTYPED_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvmtyped-peers}
vmlinux=${KVMTYPED_DBG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvmtyped-dbg}/vmlinux-6.1.0-56-amd64

native= build=1 args=()
while [ $# -gt 0 ]; do
  case $1 in
    --native) native=$(readlink -f "$2"); build=0; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done

missing=()
/usr/bin/python3 -c 'import kdumpfile' 2>/dev/null || missing+=(python3-libkdumpfile)
command -v drgn >/dev/null || missing+=(python3-drgn)
command -v makedumpfile >/dev/null || missing+=(makedumpfile)
[ -s "$vmlinux" ] || missing+=("$vmlinux (fetch-dbg.sh)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "run.sh: missing ${missing[*]}: run $here/install.sh" >&2
  exit 2
fi

if [ -z "$native" ]; then
  native=$repo/artifacts/native/KvmTyped.Cli
  [ "$build" = 0 ] || native=$("$here/build-native.sh")
fi
[ -x "$native" ] || { echo "run.sh: no native kvmtyped at $native (drop --no-build)" >&2; exit 2; }

echo "machine: $(nproc) CPUs, $(free -h | awk '/^Mem:/ {print $2 " memory, " $7 " available"}'); $(uname -r)"
echo "kvmtyped: $native ($(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD -- src || echo ', with changes'))"
echo "peers: libkdumpfile $(dpkg-query -W -f '${Version}' python3-libkdumpfile), drgn $(dpkg-query -W -f '${Version}' python3-drgn), $(/usr/bin/python3 --version)"
exec /usr/bin/python3 "$here/bench.py" --native "$native" --vmlinux "$vmlinux" --cache "$cache" "${args[@]}"
