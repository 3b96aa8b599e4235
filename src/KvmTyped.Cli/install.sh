#!/usr/bin/env bash
# install.sh [PREFIX [PUBLISH-ARGUMENT...]] — builds kvmtyped as a native executable (NativeAOT: starts in
# milliseconds, needs no .NET runtime to run) and installs it as PREFIX/bin/kvmtyped (default PREFIX: $PREFIX, else
# ~/.local). Arguments after PREFIX go to `dotnet publish`, e.g. -p:PositionIndependentExecutable=true (README.md).
# Needs the .NET 10 SDK, and clang and zlib1g-dev for NativeAOT's compile and link step: run as root, it installs those
# two with apt-get when they are missing; otherwise it names the command that would.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
prefix=${1:-${PREFIX:-$HOME/.local}}
shift $(( $# > 0 ? 1 : 0 ))
case "$(uname -m)" in
    x86_64) rid=linux-x64 ;;
    aarch64) rid=linux-arm64 ;;
    *) echo "install.sh: no native build for $(uname -m); install the .NET tool instead (README.md)" >&2; exit 2 ;;
esac

need=()
command -v clang >/dev/null || need+=(clang)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "install.sh: NativeAOT needs ${need[*]}: sudo apt-get install ${need[*]} (or run this as root)" >&2
        exit 2
    fi
fi
command -v dotnet >/dev/null || { echo "install.sh: needs the .NET 10 SDK (dotnet)" >&2; exit 2; }

dotnet publish "$repo/src/KvmTyped.Cli" -c Release -r "$rid" -p:NativeCli=true -o "$prefix/lib/kvmtyped" \
    -nologo -v quiet -nodeReuse:false "$@" >&2
mkdir -p "$prefix/bin"
ln -sfn "$prefix/lib/kvmtyped/KvmTyped.Cli" "$prefix/bin/kvmtyped"
echo "$prefix/bin/kvmtyped"
