#!/usr/bin/env bash
# Builds llama.cpp's llama-bench (CPU only, native ISA, Release) for the side-by-side
# benchmark: `dotnet run -c Release --project tests/Mistral.Merge.Benchmarks -- inference
# --llama-bench OUT_DIR/bin/llama-bench` (see docs/performance.md, "Measured side by side").
#
#   tests/llama-bench/build.sh [SRC_DIR] [OUT_DIR]
#
# SRC_DIR: a llama.cpp checkout (issue 13 names release b4747). Without it the script
#   clones the llama.cpp source that node-llama-cpp 3.21.1 ships as a git bundle
#   (tests/gguf/node_modules/node-llama-cpp/llama/gitRelease.bundle; run `npm ci` in
#   tests/gguf first). That bundle is one squashed commit, so llama-bench reports
#   build number 1 and commit 80fb11a (ggml 0.23.0, Sept 2026), not a bNNNN tag.
# OUT_DIR: the cmake build folder (default /tmp/llama-bench-build); the binary is
#   OUT_DIR/bin/llama-bench. Only the llama-bench target is built.
#
# Slow on few cores (10-20 min on 2); NICE=19 (default) keeps it out of others' way.
# LLAMA_CMAKE_ARGS: extra cmake arguments, after the defaults (so they win). E.g. an
#   AVX2-only build on an AVX-512 machine, to set beside our 256-bit kernels
#   (DOTNET_EnableAVX512=0):
#   LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
#     -DGGML_BMI2=ON -DGGML_AVX_VNNI=ON -DGGML_AVX512=OFF" build.sh SRC_DIR OUT_DIR
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="${1:-}"
out="${2:-/tmp/llama-bench-build}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

if [[ -z "$src" ]]; then
  bundle="$here/../gguf/node_modules/node-llama-cpp/llama/gitRelease.bundle"
  if [[ ! -f "$bundle" ]]; then
    echo "build.sh: no SRC_DIR given and $bundle is missing (run 'npm ci' in tests/gguf, or pass a llama.cpp checkout)" >&2
    exit 2
  fi
  src="$out/llama.cpp"
  if [[ ! -d "$src/.git" ]]; then
    git -c advice.detachedHead=false clone --quiet "$bundle" "$src"
  fi
fi
if [[ ! -f "$src/CMakeLists.txt" ]]; then
  echo "build.sh: $src is not a llama.cpp source folder (no CMakeLists.txt)" >&2
  exit 2
fi

echo "llama.cpp source: $src (commit $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown), build $(git -C "$src" rev-list --count HEAD 2>/dev/null || echo unknown))"

gen=()
command -v ninja >/dev/null && gen=(-G Ninja)

# Old releases (b4747) keep llama-bench under examples/, newer ones under tools/: leave both on.
# CURL/OpenSSL only serve model downloads, which llama-bench does not need.
nice -n "${NICE:-19}" cmake -S "$src" -B "$out" "${gen[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON \
  -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF \
  -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=ON \
  ${LLAMA_CMAKE_ARGS:-}

nice -n "${NICE:-19}" cmake --build "$out" --config Release --target llama-bench -j"$(nproc)"

bin="$out/bin/llama-bench"
echo "built $bin"
"$bin" --version 2>&1 | tail -n 2 || true
