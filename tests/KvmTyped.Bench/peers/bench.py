#!/usr/bin/python3
"""The peers benchmark: kvmtyped beside libkdumpfile and drgn, same job, same dump, whole processes.

usage: bench.py --native BIN --vmlinux VMLINUX --cache DIR [--rounds N] [--dump NAME]... [--job JOB]...
                [--allow-differences]
(run.sh builds BIN and finds the rest; see README.md.)

For each dump and job: every tool runs once untimed (warm-up and check), its output is normalised and
compared with kvmtyped's; a difference is shown, and either explained (a known limit of that peer, named)
or it stops the benchmark. Then the tools run alternately, a b c a b c ..., ROUNDS times; each run's
wall time, CPU time and peak RSS come from wait4(2). Every timed run must print what its check run printed.
"""
import argparse
import difflib
import gzip
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures"
if not FIXTURES.is_dir():
    FIXTURES = Path("/work/shared/fixtures")
ANCHORS = FIXTURES.parent / "anchors"
LEAN = ANCHORS / "kdumpfile_ps_lean.py"
MAP = FIXTURES / "amd64" / "System.map-6.1.0-56-amd64"
PYTHON = "/usr/bin/python3"     # Debian's, with python3-libkdumpfile and python3-drgn


KK = FIXTURES / "amd64" / "kdump-kaslr"
PANIC = FIXTURES / "amd64" / "panic-kaslr" / "dump.kdump-zlib"
SAMPLE = REPO / "samples" / "linux-amd64"
# name -> (the dump file, made ready in the cache on first use; its System.map; what it is)
DUMPS = {
    "sample": (lambda c: SAMPLE / "vmcore.kdump", SAMPLE / "System.map-6.1.0-56-amd64", "README sample, kdump zlib"),
    "kdump-elf": (lambda c: unpacked(KK / "vmcore.mdf-d31.elf.gz", c), MAP, "makedumpfile -E -d 31, unpacked"),
    "kdump-lzo": (lambda c: KK / "vmcore.mdf-lzo-d31.kdump", MAP, "makedumpfile -l -d 31"),
    "panic-zlib": (lambda c: reassembled(PANIC, c), MAP, "QEMU kdump-zlib, reassembled with makedumpfile -R"),
    "panic-flat": (lambda c: PANIC, MAP, "QEMU kdump-zlib as QEMU wrote it: flattened"),
}
DEFAULT_DUMPS = ["sample", "kdump-elf", "kdump-lzo", "panic-zlib"]


def unpacked(gz, cache):
    out = cache / gz.name[:-3]
    if not out.exists():
        with gzip.open(gz) as src, open(f"{out}.tmp", "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(f"{out}.tmp", out)
    return out


def reassembled(flat, cache):
    out = cache / f"{flat.parent.name}.{flat.name}"
    if not out.exists():
        with open(flat, "rb") as src:
            subprocess.run(["makedumpfile", "-R", f"{out}.tmp"], stdin=src, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.replace(f"{out}.tmp", out)
    return out


# ---- normalising each tool's output to rows "pid ppid state comm" (ps) or dmesg lines (log) ----

KVM_PS = re.compile(r"^[ >]\s*(-?\d+)\s+(-?\d+)\s+(\S+)\s+([0-9a-f]+)\s(\S)\s\s(.*)$")
LEAN_PS = re.compile(r"^\s*(-?\d+)\s+(-?\d+)\s+([0-9a-f]+) (.*)$")
DRGN_PS = re.compile(r"^(-?\d+) (-?\d+) (\S) (.*)$")


def state_letter(state, exit_state=0):
    """The kernel's __task_state_index() (6.1) as a /proc letter."""
    report = (state | exit_state) & 0x7F
    if state & 0x402 == 0x402:
        report = 0x80                  # TASK_IDLE: I
    if state & 0x9000:
        report = 0x2                   # rt-lock wait or frozen: D
    return "RSDTtXZPI"[report.bit_length()]


def ps_rows(tool, text):
    """[(pid, ppid, state, comm, raw line)]; a line that does not parse is an error, not skipped."""
    rows = []
    lines = text.splitlines()
    if tool == "kvmtyped":
        lines = lines[1:]              # the header
    for line in lines:
        if tool == "kvmtyped":
            m = KVM_PS.match(line)
            comm = m and m.group(6)
            if comm and comm.startswith("[") and comm.endswith("]"):
                comm = comm[1:-1]      # kvmtyped brackets kernel threads, as crash does
            row = m and (int(m.group(1)), int(m.group(2)), m.group(5), comm)
        elif tool == "libkdumpfile":
            m = LEAN_PS.match(line)
            row = m and (int(m.group(1)), int(m.group(2)), state_letter(int(m.group(3), 16)), m.group(4))
        else:
            m = DRGN_PS.match(line)
            row = m and (int(m.group(1)), int(m.group(2)), m.group(3), m.group(4))
        if not row:
            raise SystemExit(f"{tool}: unexpected ps line: {line!r}")
        rows.append(row + (line,))
    return sorted(rows)


TS = re.compile(r"^\[\s*\d+\.\d{6}\] ")


def log_lines(tool, text):
    """dmesg lines, each with its record's [seconds.micros] prefix. drgn's get_dmesg() prefixes only the
    first line of a multi-line record; kvmtyped prefixes every line, as dmesg does: the prefix is carried."""
    out, prefix = [], ""
    for line in text.splitlines():
        m = TS.match(line)
        if m:
            prefix = m.group(0)
        elif tool == "drgn":
            line = prefix + line
        out.append(line)
    return out


# ---- comparing, with each known limit of a peer named ----

IDLE_ELSEWHERE = ("idle task of another CPU: it is on no task list; the lean script walks init_task.tasks only "
                  "(kvmtyped reads it from the run queue)")
EXITED = ("exited task: the lean script prints __state alone (TASK_DEAD, 0x80); zombie or dead is in exit_state, "
          "which it does not read")


def compare_ps(peer, ours, theirs):
    """(explained, unexplained): lists of (reason, text). Rows are matched by (pid, comm); only the lean
    script's two known limits are ever explained, and only where its own output shows them."""
    explained, unexplained = [], []
    keyed = []
    for side, rows in (("kvmtyped", ours), (peer, theirs)):
        by_key = {}
        for r in rows:
            if (r[0], r[3]) in by_key:
                unexplained.append((f"listed twice by {side}", r[4]))
            by_key[(r[0], r[3])] = r
        keyed.append(by_key)
    mine, other = keyed
    lean = peer == "libkdumpfile"
    for key, r in mine.items():
        o = other.get(key)
        if o is None:
            if lean and r[0] == 0 and r[3].startswith("swapper/") and r[3] != "swapper/0":
                explained.append((IDLE_ELSEWHERE, r[4]))
            else:
                unexplained.append(("only in kvmtyped's output", r[4]))
        elif r[:4] != o[:4]:
            text = f"kvmtyped: {r[4].strip()}\n       {peer}: {o[4].strip()}"
            exited = lean and r[1] == o[1] and r[2] in "ZX" and o[4].split()[2] == "80"
            (explained if exited else unexplained).append((EXITED if exited else "fields differ", text))
    for key, o in other.items():
        if key not in mine:
            unexplained.append((f"only in {peer}'s output", o[4]))
    return explained, unexplained


def compare_log(peer, ours, theirs):
    if ours == theirs:
        return [], []
    diff = "\n".join(difflib.unified_diff(ours, theirs, "kvmtyped", peer, lineterm="", n=1))
    return [], [("log lines differ", diff)]


# ---- the jobs: how each tool is run ----

def jobs(native, vmlinux):
    drgn = ["drgn", "-q", "-s", str(vmlinux), "-c"]
    return {
        "ps": {
            "kvmtyped": lambda d, m: [native, "ps", "-n", m, "-c", d],
            "libkdumpfile": lambda d, m: [PYTHON, LEAN, d, m],
            "drgn": lambda d, m: drgn + [d, HERE / "drgn_ps.py"],
            "compare": compare_ps, "normalise": ps_rows,
        },
        "log": {
            "kvmtyped": lambda d, m: [native, "log", "-n", m, "-c", d],
            "libkdumpfile": "cannot: libkdumpfile reads memory, not the kernel's printk ring; "
                            "a peer script would have to carry its own parser of the 5.10+ lockless ring buffer",
            "drgn": lambda d, m: drgn + [d, HERE / "drgn_log.py"],
            "compare": compare_log, "normalise": log_lines,
        },
        # Planned: kvmtyped has no `bt --all` and no `mod` yet. When it has, give each a "kvmtyped" command and
        # its peers here (drgn: prog.stack_trace(task) for every task; the module list from `modules` with
        # list_for_each_entry), plus a normaliser and a comparison, and they join the default jobs.
        "bt": {"kvmtyped": None, "why": "`kvmtyped bt --all` does not exist yet"},
        "mod": {"kvmtyped": None, "why": "`kvmtyped mod` does not exist yet"},
    }


TOOLS = ["kvmtyped", "libkdumpfile", "drgn"]


def run(cmd, out_path):
    """One whole-process run: (exit status, wall s, cpu s, peak RSS KiB)."""
    with open(out_path, "wb") as out, open(f"{out_path}.err", "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fmt_ms(s):
    return f"{s * 1000:.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--native", required=True)
    ap.add_argument("--vmlinux", required=True)
    ap.add_argument("--cache", required=True, type=Path)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--dump", action="append", help="dump name (repeatable); default: " + " ".join(DEFAULT_DUMPS))
    ap.add_argument("--job", action="append", help="ps, log (repeatable; bt and mod are placeholders); default: ps log")
    ap.add_argument("--allow-differences", action="store_true",
                    help="time even when outputs differ in ways no known limit explains")
    a = ap.parse_args()
    a.cache.mkdir(parents=True, exist_ok=True)
    table = []
    work = Path(tempfile.mkdtemp(prefix="kvmtyped-peers."))
    all_jobs = jobs(a.native, a.vmlinux)
    status = 0
    print(f"rounds {a.rounds}; {os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.2f}")
    for name in a.dump or []:
        if name not in DUMPS:
            raise SystemExit(f"unknown dump {name!r}: {', '.join(DUMPS)}")
    for jname in a.job or []:
        if jname not in all_jobs:
            raise SystemExit(f"unknown job {jname!r}: {', '.join(all_jobs)}")
    for name in a.dump or DEFAULT_DUMPS:
        ready, sysmap, what = DUMPS[name]
        dump = ready(a.cache)
        for jname in a.job or ["ps", "log"]:
            job = all_jobs[jname]
            if job["kvmtyped"] is None:
                print(f"\n== {jname}: skipped, {job['why']}")
                continue
            print(f"\n== {name} ({what}; {dump.stat().st_size / 2**20:.1f} MiB): {jname}")
            timed, outputs, expect, notes = [], {}, {}, {}
            for tool in TOOLS:
                cmd = job[tool]
                if isinstance(cmd, str):
                    print(f"   {tool}: {cmd}")
                    notes[tool] = cmd.split(":")[0]
                    continue
                cmd = cmd(dump, sysmap)
                out = work / f"{name}.{jname}.{tool}.check"
                rc, *_ = run(cmd, out)
                if rc != 0:
                    err = Path(f"{out}.err").read_text(errors="replace").strip().splitlines()
                    reason = f"fails (exit {rc}): {err[-1] if err else 'no message'}"
                    print(f"   {tool}: {reason}")
                    if tool == "kvmtyped":
                        raise SystemExit(f"kvmtyped {jname} failed on {dump}")
                    notes[tool] = "fails"
                    continue
                outputs[tool] = job["normalise"](tool, out.read_text(errors="replace"))
                expect[tool] = digest(out)
                timed.append((tool, cmd))
                print(f"   {tool}: {' '.join(map(str, cmd))}")
            ok = True
            for tool in outputs:
                if tool == "kvmtyped":
                    continue
                explained, unexplained = job["compare"](tool, outputs["kvmtyped"], outputs[tool])
                n = len(outputs[tool])
                if not explained and not unexplained:
                    print(f"   check {tool}: the same {n} {'rows' if jname == 'ps' else 'lines'} as kvmtyped")
                    continue
                print(f"   check {tool}: {len(explained)} explained and {len(unexplained)} unexplained differences "
                      f"({n} against kvmtyped's {len(outputs['kvmtyped'])}):")
                for why, text in explained + unexplained:
                    mark = "explained" if (why, text) in explained else "UNEXPLAINED"
                    print(f"     [{mark}] {why}:\n       {text.strip()}")
                ok = ok and not unexplained
            if not ok and not a.allow_differences:
                print("   not timed: outputs differ (see above; --allow-differences times them anyway)")
                status = 1
                continue
            samples = {tool: [] for tool, _ in timed}
            for _ in range(a.rounds):
                for tool, cmd in timed:
                    out = work / f"{name}.{jname}.{tool}.run"
                    rc, wall, cpu, rss = run(cmd, out)
                    if rc != 0 or digest(out) != expect[tool]:
                        raise SystemExit(f"{tool} {jname} on {name}: a timed run printed something else (exit {rc})")
                    samples[tool].append((wall, cpu, rss))
            for tool in TOOLS:
                table.append((name, jname, tool, samples.get(tool), notes.get(tool, "")))
    shutil.rmtree(work)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    print_table(table, a.rounds)
    return status


def print_table(table, rounds):
    print(f"\nwall and CPU (user+sys) time in ms over {rounds} alternating rounds; peak RSS in MiB (median); "
          "ratios = kvmtyped's median / the peer's")
    head = f"{'dump':<11} {'job':<4} {'tool':<13} {'wall med':>8} {'min':>6} {'max':>6} {'cpu med':>8} {'RSS':>6} " \
           f"{'wall ratio':>10} {'cpu ratio':>9} {'RSS ratio':>9}"
    print(head)
    print("-" * len(head))
    ours = {}
    for name, job, tool, s, note in table:
        if s is None:
            print(f"{name:<11} {job:<4} {tool:<13} {note:>8}")
            continue
        wall = statistics.median(x[0] for x in s)
        cpu = statistics.median(x[1] for x in s)
        rss = statistics.median(x[2] for x in s) / 1024
        if tool == "kvmtyped":
            ours[(name, job)] = (wall, cpu, rss)
            ratio = ""
        else:
            w, c, r = ours[(name, job)]
            ratio = f"{w / wall:>10.2f} {c / cpu:>9.2f} {r / rss:>9.2f}"
        print(f"{name:<11} {job:<4} {tool:<13} {fmt_ms(wall):>8} {fmt_ms(min(x[0] for x in s)):>6} "
              f"{fmt_ms(max(x[0] for x in s)):>6} {fmt_ms(cpu):>8} {rss:>6.1f} {ratio}")


if __name__ == "__main__":
    sys.exit(main())
