#!/usr/bin/python3
"""report.py [--rounds N] [--native BIN] [--format F]... — kvmtyped at scale, on the dumps make-dumps.sh made.

For each stage (≈60, 1,000, 5,000, 10,000 tasks) and each form of the dump (QEMU's paging-off ELF, its
flattened kdump-zlib, the same reassembled), whole-process runs of `kvmtyped info` (open), `ps`, `log` and `bt --all`,
and the lean libkdumpfile script beside `ps` where libkdumpfile opens the file, alternating, N rounds
(default 10): median wall time, CPU time and peak RSS (GNU time). Before timing, `ps` is checked: its row count against
the guest's own count of /proc tasks (plus the idle tasks, which /proc does not list), `bt --all`'s task count
against `ps`'s, and the lean
script's rows against kvmtyped's, as ../bench.py compares them. Then, per command and form, a least-squares
line over the stages: the fixed start-up cost (its intercept) and the cost per 1,000 tasks (its slope).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import bench  # noqa: E402  (the peers benchmark: running, normalising and comparing)

CACHE = Path(os.environ.get("KVMTYPED_SCALE_CACHE",
                            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kvmtyped-scale"))
FORMS = {"elf": "paging-off ELF", "kdump-zlib": "kdump-zlib, flattened (as QEMU wrote it)",
         "kdump": "kdump-zlib, reassembled (makedumpfile -R)"}
LEAN_OPENS = {"elf", "kdump"}          # libkdumpfile refuses the flattened stream
COMMANDS = ("info", "ps", "log", "bt", "lean ps")


def stages():
    found = []
    for meta in CACHE.glob("tasks-*.json"):
        m = json.loads(meta.read_text())
        found.append(m)
    return sorted(found, key=lambda m: m["guest_tasks"])


def fit(points):
    """Least squares y = a + b·x over (x, y): (a, b)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return my - b * mx, b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--native", help="kvmtyped native binary (default: build it with ../build-native.sh)")
    ap.add_argument("--format", action="append", choices=list(FORMS), help="default: all three")
    a = ap.parse_args()
    native = a.native or subprocess.run([HERE.parent / "build-native.sh"], check=True, capture_output=True,
                                        text=True).stdout.strip()
    sysmap = bench.MAP
    found = stages()
    if not found:
        raise SystemExit(f"no scale dumps in {CACHE}: run {HERE / 'make-dumps.sh'} first")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; kvmtyped {native}; {a.rounds} rounds; "
          f"dumps in {CACHE} (guest: {found[0]['guest_mem_mib']} MiB, 2 vCPUs)")
    work = Path(tempfile.mkdtemp(prefix="kvmtyped-scale."))
    results = {}                       # (form, command) -> [(tasks, wall s, rss MiB)]
    status = 0
    for form in a.format or list(FORMS):
        print(f"\n== {FORMS[form]}")
        print(f"{'':>20}  " + "  ".join(f"{c:^20}" for c in COMMANDS))
        print(f"{'stage':>6} {'tasks':>6} {'MiB':>6}  " + "  ".join(
            f"{'wall':>6} {'cpu':>6} {'RSS':>6}" for _ in COMMANDS) + f"  {'ps/lean':>7}")
        for meta in found:
            dump = CACHE / f"tasks-{meta['stage']}.{form}"
            commands = {c: [native, c, "-n", sysmap, "-c", dump] for c in ("info", "ps", "log")}
            commands["bt"] = [native, "bt", "--all", "-n", sysmap, "-c", dump]
            if form in LEAN_OPENS:
                commands["lean ps"] = [bench.PYTHON, bench.LEAN, dump, sysmap]
            expect, rows = {}, {}
            for name, cmd in commands.items():
                out = work / name.replace(" ", "-")
                rc, *_ = bench.run(cmd, out)
                if rc != 0:
                    raise SystemExit(f"{name} on {dump} failed: {Path(f'{out}.err').read_text()[-300:]}")
                expect[name] = bench.digest(out)
                if name.endswith("ps"):
                    rows[name] = bench.ps_rows("kvmtyped" if name == "ps" else "libkdumpfile", out.read_text())
                if name == "bt":
                    rows[name] = bench.bt_tasks("kvmtyped", out.read_text())
            notes = check(meta, rows)
            status |= any(n.startswith("UNEXPLAINED") for n in notes)
            samples = {name: [] for name in commands}
            for _ in range(a.rounds):
                for name, cmd in commands.items():
                    out = work / name.replace(" ", "-")
                    rc, wall, cpu, _ = bench.run(cmd, out)
                    if rc != 0 or bench.digest(out) != expect[name]:
                        raise SystemExit(f"{name} on {dump}: a timed run printed something else")
                    rc, _, _, rss = bench.run(cmd, out, rss=True)  # peak RSS from a second run, under GNU time
                    if rc != 0 or bench.digest(out) != expect[name]:
                        raise SystemExit(f"{name} on {dump}: a run under GNU time printed something else")
                    samples[name].append((wall, cpu, rss / 1024))
            tasks = len(rows["ps"])
            cells, med = [], {}
            for name in COMMANDS:
                if name not in samples:
                    cells.append(f"{'-':>6} {'-':>6} {'-':>6}")
                    continue
                wall, cpu, rss = (statistics.median(s[i] for s in samples[name]) for i in range(3))
                med[name] = wall
                results.setdefault((form, name), []).append((tasks, wall, cpu, rss))
                cells.append(f"{wall * 1000:>6.0f} {cpu * 1000:>6.0f} {rss:>6.1f}")
            ratio = f"{med['ps'] / med['lean ps']:>7.2f}" if "lean ps" in med else f"{'-':>7}"
            print(f"{meta['stage']:>6} {tasks:>6} {dump.stat().st_size / 2**20:>6.0f}  " + "  ".join(cells)
                  + f"  {ratio}")
            for n in notes:
                print(f"         {n}")
    print("\n== cost model: least squares over the stages, x = tasks in the dump (kvmtyped's ps rows);")
    print("   start-up = the line at 0 tasks, per 1k = its slope; 'above first' = each stage's cost over the first")
    print(f"{'form':<11} {'command':<8} {'wall ms':>8} {'per 1k':>7} {'cpu ms':>7} {'per 1k':>7} {'RSS MiB':>8} "
          f"{'per 1k':>7}   cpu per 1k above first")
    for (form, name), pts in results.items():
        (w0, w1), (c0, c1), (r0, r1) = (fit([(p[0], p[i]) for p in pts]) for i in (1, 2, 3))
        above = ", ".join(f"{(p[2] - pts[0][2]) * 1e6 / (p[0] - pts[0][0]):.1f}" for p in pts[1:] if p[0] > pts[0][0])
        print(f"{form:<11} {name:<8} {w0 * 1000:>8.0f} {w1 * 1e6:>7.1f} {c0 * 1000:>7.0f} {c1 * 1e6:>7.1f} "
              f"{r0:>8.1f} {r1 * 1000:>7.2f}   {above}")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    return status


def check(meta, rows):
    """What the ps outputs say against the guest's own count and against each other."""
    ours = rows["ps"]
    idle = sum(1 for r in ours if r[0] == 0)
    notes = []
    if len(ours) - idle != meta["guest_tasks"]:
        notes.append(f"UNEXPLAINED: kvmtyped ps lists {len(ours) - idle} tasks besides {idle} idle tasks; "
                     f"the guest's /proc counted {meta['guest_tasks']}")
    traced = {a for a, (_, frames, note) in rows["bt"].items() if frames or note}
    listed = {bench.KVM_PS.match(r[4]).group(4) for r in ours}
    if len(rows["bt"]) != len(ours) or {f"{a:016x}" for a in rows["bt"]} != listed:
        notes.append(f"UNEXPLAINED: bt --all shows {len(rows['bt'])} tasks, ps lists {len(ours)}")
    elif len(traced) != len(ours):
        notes.append(f"UNEXPLAINED: bt --all has no frame and no reason for {len(ours) - len(traced)} tasks")
    if "lean ps" in rows:
        explained, unexplained = bench.compare_ps("libkdumpfile", ours, rows["lean ps"])
        reasons = {}
        for why, _ in explained:
            reasons[why] = reasons.get(why, 0) + 1
        for why, n in reasons.items():
            notes.append(f"lean ps: {n} explained difference{'s' if n > 1 else ''}: {why}")
        for why, text in unexplained[:10]:
            notes.append(f"UNEXPLAINED lean ps difference: {why}: {text.strip()}")
        if len(unexplained) > 10:
            notes.append(f"UNEXPLAINED: {len(unexplained) - 10} more lean ps differences")
    return notes


if __name__ == "__main__":
    sys.exit(main())
