#!/bin/sh
# Fetches the DWARF vmlinux of the two Debian kernels in ../shared/fixtures from their -dbg packages, for the
# opt-in tests of category DebugPackage (tests/KvmTyped.Tests/Dwarf) and the DWARF benchmark.
#
#   tests/Shared/fetch-dbg.sh [amd64|i386]...      (default: both)
#
# Each package (~800 MB) is fetched with `apt-get download` at a pinned version, checked against a pinned
# SHA-256, and only ./usr/lib/debug/boot/vmlinux-* is kept, in $KVMTYPED_DBG_CACHE (default
# ${XDG_CACHE_HOME:-~/.cache}/kvmtyped-dbg), outside the repository. The .deb is deleted afterwards.
#
# The i386 package needs the i386 architecture in apt's lists:  dpkg --add-architecture i386 && apt-get update
# When a version has left the archive, snapshot.debian.org still serves it (add it as an apt source).
set -eu

cache=${KVMTYPED_DBG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvmtyped-dbg}
mkdir -p "$cache"

fetch() {
	arch=$1 package=$2 version=$3 sha256=$4 vmlinux=$5
	target="$cache/$vmlinux"
	if [ -s "$target" ]; then
		echo "$target: present"
		return 0
	fi
	if [ "$arch" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
		echo "$package: apt does not list $arch packages here; run (as root): dpkg --add-architecture $arch && apt-get update" >&2
		return 1
	fi
	work=$(mktemp -d "$cache/fetch.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	(cd "$work" && apt-get download "$package:$arch=$version")
	deb=$(ls "$work"/*.deb)
	echo "$sha256  $deb" | sha256sum -c -
	(cd "$work" && dpkg-deb --fsys-tarfile "$deb" | tar -x "./usr/lib/debug/boot/$vmlinux")
	mv "$work/usr/lib/debug/boot/$vmlinux" "$target.tmp"
	mv "$target.tmp" "$target"
	rm -rf "$work"
	trap - EXIT
	echo "$target: $(stat -c %s "$target") bytes"
}

[ $# -gt 0 ] || set -- amd64 i386
status=0
for which in "$@"; do
	case $which in
	amd64) fetch amd64 linux-image-6.1.0-56-amd64-dbg 6.1.192-2 \
		e481662ac62dbecc5fa23cc8eff199d140aea356e411ee80f8d9e34c455da7ce vmlinux-6.1.0-56-amd64 || status=1 ;;
	i386) fetch i386 linux-image-6.1.0-50-686-pae-dbg 6.1.176-1 \
		3531205ddd329e56d53b044fede0249d766500797e8fd66cb2adddb1a1d914fa vmlinux-6.1.0-50-686-pae || status=1 ;;
	*) echo "unknown kernel '$which' (amd64 or i386)" >&2; status=2 ;;
	esac
done
exit $status
