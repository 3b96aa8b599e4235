#!/bin/bash
# make-modules.sh — rebuild the kernel modules in this folder for the fixture kernel (Debian linux-image-6.1.0-56-amd64,
# 6.1.192-2), from Debian's own packages:
#   virtio*.ko   copied from linux-image-6.1.0-56-amd64 (the guest's virtio disk: the LiME file is written there)
#   lime.ko      LiME 1.9.1 (lime-forensics-dkms 1.9.1-5) built against linux-headers-6.1.0-56-amd64, debug info stripped
# The virtio modules are Debian's bytes (SHA256SUMS); lime.ko is rebuilt, not byte-identical across builds.
# Needs: apt-get (root), make, gcc-12 (pulled in by the headers package), binutils.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KVER=6.1.0-56-amd64
WORK=$(mktemp -d /tmp/kvmlive-modules.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
apt-get install -y -qq "linux-headers-$KVER" >/dev/null
apt-get download "linux-image-$KVER" lime-forensics-dkms
dpkg -x linux-image-"$KVER"_*.deb img
dpkg -x lime-forensics-dkms_*.deb lime-src
M=img/lib/modules/$KVER/kernel/drivers
cp "$M"/virtio/{virtio,virtio_ring,virtio_pci_legacy_dev,virtio_pci_modern_dev,virtio_pci}.ko "$M"/block/virtio_blk.ko "$HERE"/
cp -r lime-src/usr/src/lime-forensics-* lime
make -C "/usr/src/linux-headers-$KVER" M="$WORK/lime" modules
strip --strip-debug -o "$HERE/lime.ko" lime/lime.ko
(cd "$HERE" && sha256sum ./*.ko | sed 's| \./| |' > SHA256SUMS)
echo "make-modules: $(ls "$HERE"/*.ko | wc -l) modules in $HERE"
