#!/usr/bin/python3
"""The peers benchmark: kvmtyped beside libkdumpfile and drgn, same job, same dump, whole processes.

usage: bench.py --native BIN --vmlinux VMLINUX --cache DIR [--rounds N] [--dump NAME]... [--job ps|log|bt|mod]...
                [--allow-differences]
(run.sh builds BIN and finds the rest; see README.md.)

For each dump and job: every tool runs once untimed (warm-up and check), its output is normalised and
compared with kvmtyped's; a difference is shown, and either explained (a known limit of that peer, named)
or it stops the benchmark. Then the tools run alternately, a b c a b c ..., ROUNDS times; each run's
wall time and CPU time come from wait4(2), and a second run of the same command under GNU time gives its
peak RSS. Every run must print what its check run printed.
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


KVM_BT_TASK = re.compile(r"^PID: (\S+)\s+TASK: ([0-9a-f-]+)\s+CPU: \S+\s+COMMAND: \"(.*)\"")
KVM_BT_FRAME = re.compile(r"^\s*#\d+ \[[0-9a-f]+\] (\? )?(.*) at ([0-9a-f]+)$")
KVM_BT_SYMBOL = re.compile(r"^([^+ ]+)\+0x([0-9a-f]+)/0x[0-9a-f]+(?: \[\S+\])?$")


def bt_tasks(tool, text):
    """{task address: (title, [frame], note)}, a frame (pc, symbol, symbol address, reliable); note: why the walk
    stopped or drgn's error. kvmtyped's register lines and stack-change lines carry no frame and are left out;
    drgn's inlined frames (DWARF) are counted in the frame after them, which has the same pc, as ("inline", n)."""
    tasks, frames, inline = {}, None, 0
    for line in text.splitlines():
        if tool == "kvmtyped":
            m = KVM_BT_TASK.match(line)
            if m:
                frames = []
                tasks[int(m.group(2), 16)] = (f"pid {m.group(1)} {m.group(3)}", frames, "")
                continue
            m = KVM_BT_FRAME.match(line)
            if m:
                sym = KVM_BT_SYMBOL.match(m.group(2))
                pc = int(m.group(3), 16)
                name, start = (sym.group(1), pc - int(sym.group(2), 16)) if sym else ("?", 0)
                frames.append((pc, name, start, not m.group(1), 0))
            elif line.strip().startswith("(stopped:"):
                key = next(reversed(tasks))
                tasks[key] = tasks[key][:2] + (line.strip(),)
            elif line.strip() and not re.match(r"^\s+(--- <|[A-Z_0-9]+: )", line):
                raise SystemExit(f"{tool}: unexpected bt line: {line!r}")
            continue
        parts = line.split(" ")
        if parts[0] == "TASK":
            frames, inline = [], 0
            tasks[int(parts[1], 16)] = (f"pid {parts[2]} {' '.join(parts[3:])}", frames, "")
        elif parts[0] == "inline":
            inline += 1
        elif parts[0] == "error":
            key = next(reversed(tasks))
            tasks[key] = tasks[key][:2] + (line,)
        elif len(parts) == 3:
            frames.append((int(parts[0], 16), parts[1], int(parts[2], 16), True, inline))
            inline = 0
        else:
            raise SystemExit(f"{tool}: unexpected bt line: {line!r}")
    return tasks


MOD_KVM = re.compile(r"^([0-9a-f]+)\s+(\S+)\s+([0-9a-f]+)\s+(\d+)\s+\S+\s+\d+$")


def mod_rows(tool, text):
    """[(name, base, size)] in list order; kvmtyped's header line left out."""
    rows = []
    lines = text.splitlines()
    for line in lines[1:] if tool == "kvmtyped" else lines:
        if tool == "kvmtyped":
            m = MOD_KVM.match(line)
            row = m and (m.group(2), int(m.group(3), 16), int(m.group(4)))
        else:
            p = line.split(" ")
            row = len(p) == 3 and (p[0], int(p[1], 16), int(p[2]))
        if not row:
            raise SystemExit(f"{tool}: unexpected mod line: {line!r}")
        rows.append(row)
    return rows


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


INLINED = ("inlined calls: drgn expands them from the DWARF vmlinux (a frame per inlined function, at the pc of the "
           "function it is inlined into); kvmtyped unwinds the machine's frames with ORC and System.map, which know "
           "no inlining")
LABEL = ("a label inside a function: System.map has no symbol sizes, so kvmtyped names the nearest symbol at or below "
         "the pc (secondary_startup_64_no_verify, entry_SYSCALL_64_after_hwframe); drgn's ELF symbol table has sizes "
         "and names the function that holds the label")
UNPROVEN = ("a frame kvmtyped marks `?`: its unwinder could not prove the return address (it was found by scanning "
            "the stack), drgn's unwinder reached the same pc as a frame")
SCANNED = ("a `?` frame only kvmtyped prints: a kernel text address left on the stack between two unwound frames "
           "(crash prints these too); drgn prints the frames it unwinds and nothing else")
ALIAS = ("one address, several names (__do_sys_pause, __x64_sys_pause, __ia32_sys_pause): kvmtyped takes the one the "
         "kernel's own kallsyms would print (scripts/kallsyms.c's order), drgn the ELF symbol table's global one")
NO_STACK = ("an exited task: its kernel stack is freed; kvmtyped says so and stops, drgn fails to read it "
            "(not mapped in an ELF dump, page not present in a kdump)")


def compare_bt(peer, ours, theirs):
    """Per task (by task_struct address), the frames matched by pc in order; a difference either has a reason named
    above, shown once with its count and first cases, or is unexplained."""
    explained, unexplained = {}, []

    def explain(why, text):
        explained.setdefault(why, []).append(text)

    for addr, (title, mine, note) in ours.items():
        if addr not in theirs:
            unexplained.append(("only in kvmtyped's output", f"{addr:x} {title}"))
            continue
        _, other, error = theirs[addr]
        where = f"{addr:x} {title}"
        if error or note:
            gone = "address is not mapped" in error or "Page not present" in error
            if not mine and not other and gone and "no kernel stack" in note:
                explain(NO_STACK, where)
            else:
                unexplained.append(("the walk ended otherwise", f"{where}: kvmtyped {note or 'ok'}; {peer} {error or 'ok'}"))
            continue
        for f in other:
            if f[4]:
                explain(INLINED, f"{where}: {f[4]} before {f[1]}")
        sm = difflib.SequenceMatcher(a=[f[0] for f in mine], b=[f[0] for f in other], autojunk=False)
        for op, i1, i2, j1, j2 in sm.get_opcodes():
            if op == "equal":
                for a, b in zip(mine[i1:i2], other[j1:j2]):
                    if not a[3]:
                        explain(UNPROVEN, f"{where}: {a[1]} at {a[0]:x}")
                    if a[1] == b[1]:
                        continue
                    if b[2] < a[2] <= a[0]:
                        explain(LABEL, f"{where}: kvmtyped {a[1]}, {peer} {b[1]}")
                    elif b[2] == a[2]:
                        explain(ALIAS, f"{where}: kvmtyped {a[1]}, {peer} {b[1]}")
                    else:
                        unexplained.append(("frame names differ", f"{where}: at {a[0]:x} kvmtyped {a[1]}, {peer} {b[1]}"))
            elif op == "delete" and all(not f[3] for f in mine[i1:i2]):
                for f in mine[i1:i2]:
                    explain(SCANNED, f"{where}: ? {f[1]} at {f[0]:x}")
            else:
                a = " ".join(f"{'? ' if not f[3] else ''}{f[1]}" for f in mine[i1:i2]) or "-"
                b = " ".join(f[1] for f in other[j1:j2]) or "-"
                unexplained.append(("frames differ", f"{where}: kvmtyped {a}\n       {peer}: {b}"))
    for addr, (title, _, _) in theirs.items():
        if addr not in ours:
            unexplained.append((f"only in {peer}'s output", f"{addr:x} {title}"))
    summary = [(why, f"{len(cases)}x, e.g. " + "; ".join(cases[:3])) for why, cases in explained.items()]
    return summary, unexplained


def compare_mod(peer, ours, theirs):
    if ours == theirs:
        return [], []
    diff = "\n".join(difflib.unified_diff([f"{n} {b:x} {s}" for n, b, s in ours],
                                          [f"{n} {b:x} {s}" for n, b, s in theirs], "kvmtyped", peer, lineterm="", n=1))
    return [], [("module lists differ", diff)]


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
        "bt": {
            "kvmtyped": lambda d, m: [native, "bt", "--all", "-n", m, "-c", d],
            "libkdumpfile": "cannot: libkdumpfile reads memory; a stack unwinder (ORC or frame pointers) and the "
                            "kernel's symbols are not part of it",
            "drgn": lambda d, m: drgn + [d, HERE / "drgn_bt.py"],
            "compare": compare_bt, "normalise": bt_tasks, "unit": "tasks",
        },
        "mod": {
            "kvmtyped": lambda d, m: [native, "mod", "-n", m, "-c", d],
            "libkdumpfile": "cannot: the lean script has struct task_struct's offsets only; the module list needs "
                            "struct module's, which it does not carry",
            "drgn": lambda d, m: drgn + [d, HERE / "drgn_mod.py"],
            "compare": compare_mod, "normalise": mod_rows, "unit": "modules",
        },
    }


TOOLS = ["kvmtyped", "libkdumpfile", "drgn"]


# Peak RSS is taken by GNU time around a second run of the command: a process forked from this script
# inherits its peak RSS across exec (the kernel keeps the pre-exec image's high-water mark), so wait4 would
# report nothing below this script's own ~18 MiB. The timed run is not wrapped: time's own fork, exec and
# start-up cost about 4 ms of CPU, which would be added to every tool alike and pull every ratio towards 1.
GNU_TIME = "/usr/bin/time"


def run(cmd, out_path, rss=False):
    """One whole-process run: (exit status, wall s, cpu s, peak RSS KiB, or 0 unless rss)."""
    if rss and not os.access(GNU_TIME, os.X_OK):
        sys.exit(f"bench.py: needs GNU time ({GNU_TIME}: apt-get install time, or install.sh)")
    rss_path = f"{out_path}.rss"
    wrap = [GNU_TIME, "-f", "%M", "-o", rss_path] if rss else []
    with open(out_path, "wb") as out, open(f"{out_path}.err", "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(wrap + [str(c) for c in cmd], stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    lines = Path(rss_path).read_text().split() if rss else []
    return p.returncode, wall, ru.ru_utime + ru.ru_stime, int(lines[-1]) if lines else 0


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
    ap.add_argument("--job", action="append", help="ps, log, bt, mod (repeatable); default: all four")
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
        for jname in a.job or ["ps", "log", "bt", "mod"]:
            job = all_jobs[jname]
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
                    print(f"   check {tool}: the same {n} {job.get('unit', 'rows' if jname == 'ps' else 'lines')} as kvmtyped")
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
            for r in range(a.rounds):
                # The order rotates from round to round: a run right after drgn's (a 230 MiB process) is a few ms
                # slower, and no tool is always the one that follows it.
                for tool, cmd in timed[r % len(timed):] + timed[:r % len(timed)]:
                    out = work / f"{name}.{jname}.{tool}.run"
                    rc, wall, cpu, _ = run(cmd, out)
                    if rc != 0 or digest(out) != expect[tool]:
                        raise SystemExit(f"{tool} {jname} on {name}: a timed run printed something else (exit {rc})")
                    rc, _, _, rss = run(cmd, out, rss=True)
                    if rc != 0 or digest(out) != expect[tool]:
                        raise SystemExit(f"{tool} {jname} on {name}: a run under GNU time printed something else (exit {rc})")
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
