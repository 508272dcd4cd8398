#!/bin/sh
# Regenerates tests/Mistral.Merge.Tests/Gguf/ggml-quant-vectors.json from llama.cpp's reference quantizers.
# Needs gcc and `npm ci` here (node-llama-cpp 3.21.1 ships prebuilt llama.cpp, release v0.4.0 of ggml-org/llama.cpp,
# as its node_modules/node-llama-cpp/llama/llama.cpp.info.json says). The vectors in the repository were made with
# gcc 12.2.0 on linux-x64 by this script.
set -e
cd "$(dirname "$0")"
gcc -O0 -o out/quant-vectors quant-vectors.c -ldl
./out/quant-vectors node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so \
  | sed "s#\"source\": \".*\"#\"source\": \"llama.cpp $(node -p "require('./node_modules/node-llama-cpp/llama/llama.cpp.info.json').tag") libggml-base.so (node-llama-cpp $(node -p "require('./node_modules/node-llama-cpp/package.json').version")): quantize_row_q8_0_ref, quantize_row_q4_0_ref, ggml_fp32_to_fp16_row, ggml_fp32_to_bf16_row_ref; tests/gguf/generate-vectors.sh\"#" \
  > ../Mistral.Merge.Tests/Gguf/ggml-quant-vectors.json
