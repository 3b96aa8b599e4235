#!/usr/bin/env bash
# Rebuilds tagged.btf from tagged.c: clang writes the tags into DWARF, pahole -J encodes DWARF as BTF
# (TYPE_TAG, DECL_TAG and ENUM64 included), llvm-objcopy cuts the raw .BTF section out.
# Needs Debian's clang-14, llvm-14 (llvm-objcopy) and dwarves (pahole 1.24).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
clang-14 -g -O0 -c -target x86_64-linux-gnu "$here/tagged.c" -o "$work/tagged.o"
pahole -J "$work/tagged.o"
llvm-objcopy --dump-section .BTF="$here/tagged.btf" "$work/tagged.o"
