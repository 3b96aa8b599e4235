#!/usr/bin/env bash
# run.sh TARGET SECONDS — fuzz one target with AFL++ for at most SECONDS seconds or 1,000,000 executions, whichever
# comes first; copy every crash and hang into regressions/TARGET; print the campaign's figures.
# KVMTYPED_FUZZ_TIMEOUT: afl-fuzz's time limit of one input in milliseconds (default 1000); the backtrace targets need
# more (5000) on a loaded machine, because the first input of each child process loads a kernel's BTF.
# Needs: afl++ (Debian package), the SharpFuzz instrumenter (dotnet tool install --global SharpFuzz.CommandLine
# --version 2.3.0), and ../shared/fixtures for the seeds. See README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${1:?usage: run.sh TARGET SECONDS}
seconds=${2:?usage: run.sh TARGET SECONDS}
out=${KVMTYPED_FUZZ_OUT:-$here/out}
bin=$out/bin
export PATH="$PATH:$HOME/.dotnet/tools"

# Build once, then instrument the library (and the harness's copy of the schema parser) in place.
if [ ! -f "$bin/.instrumented" ]; then
    dotnet publish "$here/KvmTyped.Fuzz.csproj" -c Release -o "$bin" -p:UseAppHost=false >/dev/null
    sharpfuzz "$bin/KvmTyped.dll"
    sharpfuzz "$bin/KvmTyped.Fuzz.dll" KvmTyped.Generators.Schema   # only the schema parser compiled into the harness
    touch "$bin/.instrumented"
fi
# (The instrumented program runs only under afl-fuzz: its probes need afl's shared memory.)
grep -q "new(\"$target\"" "$here/FuzzTargets.cs" || { echo "run.sh: no target $target" >&2; exit 2; }

# Seeds: cut from the fixtures by the harness itself (make-seeds.sh does the same for every target).
[ -d "$out/seeds/$target" ] && [ -d "$out/seeds/kernels" ] || "$here/make-seeds.sh" "$out/seeds"

findings=$out/findings/$target
rm -rf "$findings"
mkdir -p "$out/findings"
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
# The managed heap may not pass 512 MiB: a parser that tries is an OutOfMemoryException, i.e. a crash.
export DOTNET_GCHeapHardLimit=0x20000000 DOTNET_TieredPGO=0 DOTNET_gcServer=0
# The backtrace targets' kernel BTF, written by the seed step (the program runs outside the repository).
export KVMTYPED_FUZZ_KERNELS=$out/seeds/kernels
dict=()
[ -f "$here/dictionaries/$target.dict" ] && dict=(-x "$here/dictionaries/$target.dict")

afl-fuzz -i "$out/seeds/$target" -o "$findings" -t "${KVMTYPED_FUZZ_TIMEOUT:-1000}" -m none -V "$seconds" -E 1000000 "${dict[@]}" \
    -- dotnet "$bin/KvmTyped.Fuzz.dll" run "$target" >"$out/afl-$target.log" 2>&1 &
afl=$!
trap 'kill $afl 2>/dev/null || true' EXIT
# Peak resident memory (VmHWM) of every process under afl-fuzz (the fork server and the child running the target),
# sampled every 2 s while the campaign runs.
descendants() { local c; for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do echo "$c"; descendants "$c"; done; }
peak=0
while kill -0 "$afl" 2>/dev/null; do
    for pid in $(descendants "$afl"); do
        hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        [ "${hwm:-0}" -gt "$peak" ] && peak=$hwm
    done
    sleep 2
done
wait "$afl" || true
trap - EXIT

stats=$findings/default/fuzzer_stats
[ -f "$stats" ] || { echo "run.sh: afl-fuzz did not start; see $out/afl-$target.log" >&2; tail -20 "$out/afl-$target.log" >&2; exit 1; }
get() { awk -F' *: *' -v k="$1" '$1 == k {print $2}' "$stats"; }

# Every crash and hang becomes a regression input, replayed by the test suite.
mkdir -p "$here/regressions/$target"
for kind in crashes hangs; do
    for f in "$findings/default/$kind"/id:*; do
        [ -f "$f" ] || continue
        cp "$f" "$here/regressions/$target/$kind-$(sha256sum "$f" | cut -c1-16)"
    done
done

printf '%s: %s execs in %s s (%s/s), %s edges (%s), %s crashes, %s hangs, peak RSS %s MiB\n' \
    "$target" "$(get execs_done)" "$(get run_time)" "$(get execs_per_sec)" "$(get edges_found)" "$(get bitmap_cvg)" \
    "$(get saved_crashes)" "$(get saved_hangs)" "$(( peak / 1024 ))"
