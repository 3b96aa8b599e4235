#!/bin/bash
# build-native.sh — publishes the kvmtyped CLI as a NativeAOT executable into artifacts/native (as README.md's
# "Installing the tool" does) and prints its path. NativeAOT needs clang and zlib1g-dev (install.sh).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
command -v clang >/dev/null || { echo "build-native: NativeAOT needs clang (and zlib1g-dev): run $(dirname "$0")/install.sh" >&2; exit 2; }
dotnet publish "$repo/src/KvmTyped.Cli" -c Release -r linux-x64 -p:NativeCli=true -o "$repo/artifacts/native" \
  -nologo -v quiet >&2
echo "$repo/artifacts/native/KvmTyped.Cli"
