#!/usr/bin/env bash
# The quick way to a llama-bench when a full cmake build (build.sh: ~250 compile steps) is too slow for the machine:
# compile only llama-bench.cpp (one g++ call, about a minute on a quiet core) against the llama.cpp libraries that
# node-llama-cpp 3.21.1 ships prebuilt (tests/gguf/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64; run
# `npm ci` in tests/gguf first), with the headers of the same release's source (its gitRelease.bundle).
#
#   tests/llama-bench/build-prebuilt.sh [OUT_DIR]      -> OUT_DIR/lib/llama-bench (default /tmp/llama-bench-prebuilt)
#
# Differences from build.sh: the CPU kernels are node-llama-cpp's generic builds, one per x86 level
# (libggml-cpu-{haswell,zen4,skylakex,...}.so), of which ggml loads the best one for the CPU at run time (on an
# AVX2 machine: haswell = AVX2+FMA+F16C), instead of one -march=native build; llama-bench reports the prebuilt
# libraries' build (build 1, commit 5b4ebc5: node-llama-cpp's own squashed clone of the same release). x86-64 Linux only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-/tmp/llama-bench-prebuilt}"
nlc="$here/../gguf/node_modules/node-llama-cpp"
bins="$here/../gguf/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
for f in "$nlc/llama/gitRelease.bundle" "$bins/libllama-common.so"; do
  [[ -f "$f" ]] || { echo "build-prebuilt.sh: $f is missing (run 'npm ci' in tests/gguf)" >&2; exit 2; }
done

mkdir -p "$out/lib"
src="$out/llama.cpp"
[[ -d "$src/.git" ]] || git -c advice.detachedHead=false clone --quiet "$nlc/llama/gitRelease.bundle" "$src"

# ggml looks for its CPU backend variants beside the executable: the binary goes into lib/ with links to them
for f in "$bins"/*.so; do ln -sf "$f" "$out/lib/"; done
ln -sf "$bins"/libllama.v*.so "$out/lib/libllama.so"
ln -sf "$bins"/libggml.v*.so "$out/lib/libggml.so"

nice -n "${NICE:-19}" g++ -O2 -DNDEBUG -std=c++17 \
  -I"$src/include" -I"$src/ggml/include" -I"$src/common" -I"$src/vendor" -I"$src/tools/llama-bench" \
  "$src/tools/llama-bench/llama-bench.cpp" "$src/tools/llama-bench/main.cpp" \
  -o "$out/lib/llama-bench" -L"$out/lib" -lllama-common -lllama -lggml -lggml-base -Wl,-rpath,'$ORIGIN' -pthread

echo "built $out/lib/llama-bench"
