#!/usr/bin/env python3
"""Cut the bundled mini sample out of a real QEMU dump of a Debian kernel.

Usage: make-sample.py DUMP.elf SYSTEM.MAP OUTDIR

Keeps the dump's notes (CPU state, VMCOREINFO) and the physical pages that hold linux_banner and
init_uts_ns, as one ELF64 core; and the System.map lines needed to find them. The input is
../shared/fixtures/amd64/nokaslr/dump.elf (QEMU dump-guest-memory, Debian 6.1.0-56-amd64, no KASLR).
"""
import struct
import sys

KEEP_SYMBOLS = ("_text", "_stext", "linux_banner", "init_uts_ns", "_etext")
START_KERNEL_MAP = 0xFFFFFFFF80000000


def main(dump, sysmap, outdir):
    with open(sysmap) as f:
        lines = [l for l in f if l.split()[2] in KEEP_SYMBOLS]
    addrs = {l.split()[2]: int(l.split()[0], 16) for l in lines}
    data = open(dump, "rb").read()
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    notes = b""
    loads = []
    for i in range(phnum):
        p_type, _, off, vaddr, paddr, filesz, memsz = struct.unpack_from("<IIQQQQQ", data, phoff + i * phentsize)
        if p_type == 4:
            notes = data[off:off + filesz]
        elif p_type == 1:
            loads.append((paddr, off, filesz))
    pages = sorted({(addrs[n] - START_KERNEL_MAP) & ~0xFFF for n in ("linux_banner", "init_uts_ns")})
    chunks = []
    for page in pages:
        for paddr, off, filesz in loads:
            if paddr <= page < paddr + filesz:
                chunks.append((page, data[off + page - paddr: off + page - paddr + 0x2000]))
                break
    ehsize, phsize = 64, 56
    count = 1 + len(chunks)
    cursor = ehsize + phsize * count
    out = bytearray(struct.pack("<4sBBBB8xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 4, 62, 1, 0, ehsize, 0, 0,
                                ehsize, phsize, count, 0, 0, 0))
    body = bytearray()
    note_off = cursor
    body += notes
    cursor += len(notes)
    headers = [struct.pack("<IIQQQQQQ", 4, 0, note_off, 0, 0, len(notes), 0, 0)]
    for page, blob in chunks:
        pad = (-cursor) % 4096
        body += b"\0" * pad
        cursor += pad
        headers.append(struct.pack("<IIQQQQQQ", 1, 7, cursor, page, page, len(blob), len(blob), 4096))
        body += blob
        cursor += len(blob)
    out += b"".join(headers) + body
    open(f"{outdir}/vmcore.elf", "wb").write(out)
    open(f"{outdir}/System.map", "w").writelines(lines)


if __name__ == "__main__":
    main(*sys.argv[1:4])
