#!/usr/bin/python3
"""drive.py KERNEL INITRD OUTDIR — boots the scale guest under QEMU and dumps it at each stage.

The guest (guest-init.sh) says `@@SCALE READY STAGE TASKS MEMFREE@@` on its second serial port; the host
then stops it over QMP, writes `dump-guest-memory` twice from the same stopped state — a paging-off ELF
(QEMU's paging-on ELF would need more than 65,535 program headers) and kdump-zlib (the flattened stream
QEMU writes) — resumes it and answers `go`. Per stage: OUTDIR/tasks-STAGE.elf, .kdump-zlib, .json.
Env: SCALE_MEM (MiB, default 2048), SCALE_STAGES (default idle,1000,5000,10000), SCALE_TIMEOUT (s, default 3600).
"""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


class Qmp:
    def __init__(self, sock):
        self.file = sock.makefile("rwb")
        self.reply()                                  # the greeting
        self.call("qmp_capabilities")

    def reply(self):
        while True:
            line = self.file.readline()
            if not line:
                raise SystemExit("QMP: QEMU closed the connection")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def call(self, command, **arguments):
        self.file.write(json.dumps({"execute": command, "arguments": arguments}).encode() + b"\n")
        self.file.flush()
        msg = self.reply()
        if "error" in msg:
            raise SystemExit(f"QMP {command}: {msg['error'].get('desc', msg['error'])}")
        return msg["return"]


def connect(path, qemu, deadline):
    while time.monotonic() < deadline:
        if qemu.poll() is not None:
            raise SystemExit(f"QEMU exited early (status {qemu.returncode})")
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(path))
            return s
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"no socket {path}")


def main():
    kernel, initrd, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    mem = int(os.environ.get("SCALE_MEM", "2048"))
    stages = os.environ.get("SCALE_STAGES", "idle,1000,5000,10000")
    deadline = time.monotonic() + int(os.environ.get("SCALE_TIMEOUT", "3600"))
    run = out / "run"
    run.mkdir(parents=True, exist_ok=True)
    qmp_path, ctl_path = run / "qmp.sock", run / "ctl.sock"
    for p in (qmp_path, ctl_path):
        p.unlink(missing_ok=True)
    cmd = ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-cpu", "max,la57=off", "-smp", "2",
           "-m", str(mem), "-kernel", kernel, "-initrd", initrd,
           "-append", f"console=ttyS0,115200 loglevel=4 init_on_free=1 panic=-1 scale_stages={stages}",
           "-nographic", "-no-reboot", "-monitor", "none", "-device", "vmcoreinfo",
           "-serial", f"file:{run / 'console.log'}", "-serial", f"unix:{ctl_path},server=on,wait=off",
           "-qmp", f"unix:{qmp_path},server=on,wait=off"]
    print("scale: " + " ".join(cmd), flush=True)
    qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(run / "qemu.out", "wb"),
                            stderr=subprocess.STDOUT)
    try:
        ctl = connect(ctl_path, qemu, deadline)
        qmp = Qmp(connect(qmp_path, qemu, deadline))
        lines = ctl.makefile("rwb")
        started = time.monotonic()
        while True:
            ctl.settimeout(max(1, deadline - time.monotonic()))
            line = lines.readline().decode(errors="replace").strip()
            if not line:
                break                                 # the guest powered off
            if not line.startswith("@@SCALE READY"):
                continue
            _, _, stage, tasks, memfree = line.strip("@").split()
            print(f"scale: stage {stage}: {tasks} tasks in the guest's /proc, MemFree {memfree} kB "
                  f"({time.monotonic() - started:.0f} s after boot)", flush=True)
            qmp.call("stop")
            record = {"stage": stage, "guest_tasks": int(tasks), "guest_memfree_kb": int(memfree),
                      "guest_mem_mib": mem, "files": {}}
            for fmt, ext in (("elf", "elf"), ("kdump-zlib", "kdump-zlib")):
                path = out / f"tasks-{stage}.{ext}"
                t0 = time.monotonic()
                qmp.call("dump-guest-memory", paging=False, protocol=f"file:{path}", format=fmt)
                secs = time.monotonic() - t0
                record["files"][fmt] = {"file": path.name, "bytes": path.stat().st_size, "seconds": round(secs, 1)}
                print(f"scale:   {fmt:<10} {path} {path.stat().st_size / 2**20:.0f} MiB in {secs:.1f} s", flush=True)
            (out / f"tasks-{stage}.json").write_text(json.dumps(record, indent=1) + "\n")
            qmp.call("cont")
            lines.write(b"go\n")
            lines.flush()
        qemu.wait(timeout=max(1, deadline - time.monotonic()))
    except (OSError, socket.timeout) as e:
        raise SystemExit(f"scale: {e}; console tail:\n" + tail(run / "console.log"))
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()
    print(f"scale: guest done; console log {run / 'console.log'}")


def tail(path, n=15):
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(none)"


if __name__ == "__main__":
    main()
