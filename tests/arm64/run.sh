#!/usr/bin/env bash
# Runs the test suite on ARM64 — the AdvSimd/NEON and Vector128 paths that x86 machines never execute — under
# qemu-user emulation on an x86-64 Debian machine, through the benchmarks' direct test runner
# (`Mistral.Merge.Benchmarks tests`, no `dotnet test` host needed):
#
#   tests/arm64/run.sh [FILTER...]      e.g. tests/arm64/run.sh Tests.Numerics. Tests.Inference.
#
# FILTER: substrings of Namespace.Class.Method (any one matches; none = the whole suite: about an hour on 2 cores,
# the Numerics tests about 2 minutes). Installs (root, apt) qemu-user and Debian's arm64 cross C/C++ runtime, and
# unpacks arm64 libssl3 (which .NET loads at start) into .arm64/sysroot; publishes the runner self-contained for
# linux-arm64 into .arm64/bin (ignored by git) — inside the repository, so tests find ../shared beside it.
# The runtime's W^X double mapping is turned off (DOTNET_EnableWriteXorExecute=0): qemu-user only sees code
# rewritten through the executable mapping, so with it on it keeps running stale translations (a reused dynamic
# method's memory: a test calling another's code; crashes).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$root/.arm64"
mkdir -p "$out/sysroot"

if ! command -v qemu-aarch64 >/dev/null || [[ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]]; then
  apt-get update >/dev/null  # a fresh machine has no package lists
  apt-get install -y qemu-user libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross >/dev/null
fi
ssl="$out/sysroot/usr/lib/aarch64-linux-gnu"
if [[ ! -e "$ssl/libssl.so.3" ]]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then dpkg --add-architecture arm64; apt-get update >/dev/null; fi
  (cd "$out" && rm -f libssl3_*_arm64.deb && apt-get download libssl3:arm64 >/dev/null && dpkg -x libssl3_*_arm64.deb sysroot && rm -f libssl3_*_arm64.deb)
fi

dotnet publish "$root/tests/Mistral.Merge.Benchmarks" -c Release -r linux-arm64 --self-contained \
  -p:ErrorOnDuplicatePublishOutputFiles=false -o "$out/bin" >/dev/null

cd "$root"
QEMU_SET_ENV="DOTNET_EnableWriteXorExecute=0,LD_LIBRARY_PATH=$ssl" exec qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/bin/Mistral.Merge.Benchmarks" tests "$@"
