#!/usr/bin/env bash
# Dense → MoE round trip on the fixtures: build a 3-expert Mixtral from stories260k and its wiki and code
# fine-tunes (examples/moe/stories260k-build.yml), show its routing per domain (moe-stats --plot) and score it
# against each source on the three eval texts. Run from the repository root (≈ 1 min on 2 cores).
set -euo pipefail
F=../shared/fixtures
OUT=${OUT:-/tmp/moe-build-example}
MM="${MM:-dotnet run --project src/Mistral.Merge.Cli --}"
mkdir -p "$OUT"

$MM moe-build examples/moe/stories260k-build.yml "$OUT/moe" --force
for t in tinystories wiki code; do
  $MM moe-stats "$OUT/moe" --text $F/text/$t-eval.txt --plot "$OUT/routing-$t.svg" --quiet
done
for m in "$OUT/moe" $F/stories260k $F/stories260k-wiki $F/stories260k-code; do
  for t in tinystories wiki code; do
    printf '%s %s ' "$(basename "$m")" "$t"
    $MM perplexity "$m" --text $F/text/$t-eval.txt --ctx 256 --max-tokens 20000 --device cpu --quiet --json |
      grep -o '"perplexity": *[0-9.]*'
  done
done
