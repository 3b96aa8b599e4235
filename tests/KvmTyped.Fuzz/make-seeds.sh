#!/usr/bin/env bash
# make-seeds.sh [OUTDIR] — build the seed corpus of every target from ../shared/fixtures (cores cut down to the pages
# the commands touch, every kdump codec, flattened and split; small synthetic inputs for the other targets) and the
# namelists the core targets open with. Default OUTDIR: out/seeds beside this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
outdir=${1:-$here/out/seeds}
dotnet build "$here/KvmTyped.Fuzz.csproj" -c Release >/dev/null
dotnet "$here/bin/Release/net10.0/KvmTyped.Fuzz.dll" seeds "$outdir" "$here/namelists"
