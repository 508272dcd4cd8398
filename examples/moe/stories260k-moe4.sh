#!/usr/bin/env bash
# MoE → dense experiment on the trained 4-expert tiny Mixtral of the shared fixtures.
# Run from the repository root. Frequencies: the tinystories routing table of expected.json
# (moe-stats measures them once the forward pass is integrated).
set -euo pipefail
F=../shared/fixtures
OUT=${OUT:-/tmp/moe-example}
mkdir -p "$OUT"
cat > "$OUT/freq.json" <<'JSON'
{"selection_frequency": [[0.42673,0.39295,0.034,0.14633],[0.1063,0.14113,0.33908,0.4135],[0.13653,0.14072,0.41387,0.30888],[0.13958,0.45405,0.24507,0.1613],[0.09625,0.24643,0.18463,0.4727]]}
JSON
MM="${MM:-dotnet run --project src/Mistral.Merge.Cli --}"
$MM moe-convert $F/stories260k-moe4 "$OUT/expert0"   --strategy expert --expert 0 --force
$MM moe-convert $F/stories260k-moe4 "$OUT/uniform"   --strategy mean --force
$MM moe-convert $F/stories260k-moe4 "$OUT/frequency" --strategy frequency --frequencies "$OUT/freq.json" --force
$MM moe-convert $F/stories260k-moe4 "$OUT/aligned"   --strategy aligned_mean --frequencies "$OUT/freq.json" --weighted --force
$MM moe-convert $F/stories260k-moe4 "$OUT/concat"    --strategy concat --force
$MM moe-convert $F/stories260k-moe4 "$OUT/pruned2"   --prune 2 --frequencies "$OUT/freq.json" --force
# Once the forward pass is integrated:
#   $MM moe-stats $F/stories260k-moe4 --text $F/text/tinystories-eval.txt --plot "$OUT/routing.svg"
