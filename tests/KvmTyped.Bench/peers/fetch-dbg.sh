#!/bin/bash
# fetch-dbg.sh — the DWARF vmlinux of Debian's 6.1.0-56-amd64 (the fixtures' kernel), which drgn needs.
# Fetched once with `apt-get download` at a pinned version, checked against a pinned SHA-256; only
# ./usr/lib/debug/boot/vmlinux-6.1.0-56-amd64 is kept, in $KVMTYPED_DBG_CACHE (default
# ${XDG_CACHE_HOME:-~/.cache}/kvmtyped-dbg), outside the repository; the .deb (~820 MiB) is deleted.
# Prints the vmlinux path. Other scripts that fetch into the same folder find it there and skip the download.
set -euo pipefail

package=linux-image-6.1.0-56-amd64-dbg
version=6.1.192-2
sha256=e481662ac62dbecc5fa23cc8eff199d140aea356e411ee80f8d9e34c455da7ce
vmlinux=vmlinux-6.1.0-56-amd64

cache=${KVMTYPED_DBG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvmtyped-dbg}
target=$cache/$vmlinux
if [ -s "$target" ]; then
  echo "$target"
  exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "$package=$version" >&2)
deb=$(ls "$work"/*.deb)
echo "$sha256  $deb" | sha256sum -c - >&2
(cd "$work" && dpkg-deb --fsys-tarfile "$deb" | tar -x "./usr/lib/debug/boot/$vmlinux")
mv "$work/usr/lib/debug/boot/$vmlinux" "$target.tmp.$$"
mv "$target.tmp.$$" "$target"
echo "$target"
