#!/usr/bin/env bash
# The MoE compression experiment on the trained 4-expert tiny Mixtral of the shared fixtures:
# routing statistics, a perplexity report of every strategy (cached: rerunning is instant), and the
# same conversions as recipes. Run from the repository root.
set -euo pipefail
F=../shared/fixtures
OUT=${OUT:-/tmp/moe-example}
MM="${MM:-dotnet run --project src/Mistral.Merge.Cli --}"
mkdir -p "$OUT"

# 1. Which experts does each layer use on stories, wiki and code?
for t in tinystories wiki code; do
  $MM moe-stats $F/stories260k-moe4 --text $F/text/$t-eval.txt --plot "$OUT/routing-$t.svg" --json > "$OUT/routing-$t.json"
done
$MM moe-stats $F/stories260k-moe4 --text $F/text/tinystories-eval.txt

# 2. Every strategy, scored on tinystories (calibration = the same text by default) and on wiki.
STRATS=expert:0,expert:1,mean,frequency,aligned_mean,aligned_mean:weighted,concat,concat:2,prune:3,prune:2,prune:2:output,group:2
$MM moe-report $F/stories260k-moe4 --text $F/text/tinystories-eval.txt --strategies $STRATS --cache "$OUT/cache"
$MM moe-report $F/stories260k-moe4 --text $F/text/wiki-eval.txt --calibration $F/text/tinystories-eval.txt --strategies $STRATS --cache "$OUT/cache"

# 3. The same surgeries as recipes (paths in the recipes are relative to the recipe file).
$MM merge examples/moe/stories260k-moe4-to-dense.yml "$OUT/dense-frequency" --force
$MM merge examples/moe/stories260k-moe4-group2.yml "$OUT/grouped-2" --force
$MM perplexity "$OUT/dense-frequency" --text $F/text/tinystories-eval.txt --ctx 256 --max-tokens 20000
