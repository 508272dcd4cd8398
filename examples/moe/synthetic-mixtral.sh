#!/usr/bin/env bash
# The same experiment on a synthesized Mixtral (random weights, so the figures only show the mechanics:
# concat of all experts equals a top-E MoE; the others drift). Nothing to download: the built-in byte-level
# tokenizer and this repository's README as the text (set TOK to a tokenizer.model and TEXT to any text file).
# Run from the repository root.
set -euo pipefail
OUT=${OUT:-/tmp/moe-synth-example}
MM="${MM:-dotnet run --project src/Mistral.Merge.Cli --}"
TOK=${TOK:-byte-level}
TEXT=${TEXT:-README.md}
mkdir -p "$OUT"
$MM synth "$OUT/mixtral" --arch mixtral --hidden 128 --layers 4 --heads 8 --kv-heads 4 --intermediate 344 \
  --vocab 512 --experts 8 --experts-per-token 2 --dtype float32 --seed 1 --tokenizer "$TOK" --force
$MM moe-stats "$OUT/mixtral" --text "$TEXT" --max-tokens 4096 --plot "$OUT/routing.svg"
$MM moe-report "$OUT/mixtral" --text "$TEXT" --max-tokens 4096 --calibration-tokens 4096 \
  --strategies expert:0,mean,frequency,aligned_mean,aligned_mean:weighted,concat,concat:2,prune:4,prune:2:output,group:4 \
  --cache "$OUT/cache"
cat > "$OUT/to-dense.yml" <<YAML
merge_method: moe_to_dense
base_model: mixtral
parameters:
  strategy: expert
  expert: [0, 7]        # a gradient over layers: experts 0, 2, 5, 7
YAML
$MM merge "$OUT/to-dense.yml" --dry-run
$MM merge "$OUT/to-dense.yml" "$OUT/dense" --force
