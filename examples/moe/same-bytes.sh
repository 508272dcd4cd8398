#!/usr/bin/env bash
# Shows that the MoE surgeries write the same bytes as an earlier build: every moe-convert case (in each build's
# own spelling: --prune N --select output before, --num-experts N --criterion output_change now), the two example
# recipes, and moe-stats' frequencies on the three eval texts. Run from the repository root:
#   OLD="dotnet /path/to/old/mistral-merge.dll" NEW="dotnet src/Mistral.Merge.Cli/bin/Release/net10.0/mistral-merge.dll" \
#     examples/moe/same-bytes.sh
# Prints one line per case and exits non-zero when any output differs.
set -euo pipefail
F=../shared/fixtures
M=$F/stories260k-moe4
T=$F/text
OUT=${OUT:-$(mktemp -d)}
: "${OLD:?set OLD to the earlier build's command}" "${NEW:?set NEW to this build's command}"
fail=0

same() { # name, old folder, new folder
  if diff -r -q "$2" "$3" > /dev/null; then echo "same   $1"; else echo "DIFFER $1"; diff -r -q "$2" "$3" || true; fail=1; fi
}

convert() { # name | old args | new args (separated by '|')
  local name=$1; shift
  local old=() new=() side=old
  for a in "$@"; do
    if [ "$a" = "|" ]; then side=new; continue; fi
    if [ $side = old ]; then old+=("$a"); else new+=("$a"); fi
  done
  $OLD moe-convert $M "$OUT/old-$name" "${old[@]}" > /dev/null
  $NEW moe-convert $M "$OUT/new-$name" "${new[@]}" > /dev/null
  same "moe-convert $name" "$OUT/old-$name" "$OUT/new-$name"
}

C=(--calibration $T/tinystories-eval.txt --calibration-tokens 4000)
convert mean --strategy mean "|" --strategy mean
convert mean-bf16 --strategy mean --out-dtype bfloat16 "|" --strategy mean --out-dtype bfloat16
convert expert --strategy expert --expert 0,1,2,3,0 "|" --strategy expert --expert 0,1,2,3,0
convert frequency --strategy frequency "${C[@]}" "|" --strategy frequency "${C[@]}"
convert aligned --strategy aligned_mean --weighted --calibration $T/wiki-eval.txt --calibration-tokens 3000 "|" --strategy aligned_mean --weighted --calibration $T/wiki-eval.txt --calibration-tokens 3000
convert concat2 --strategy concat --top-k 2 --calibration $T/code-eval.txt "|" --strategy concat --top-k 2 --calibration $T/code-eval.txt
convert prune3 --prune 3 "${C[@]}" "|" --num-experts 3 "${C[@]}"
convert prune2-output --prune 2 --select output "${C[@]}" "|" --num-experts 2 --criterion output_change "${C[@]}"
convert group2 --prune 2 --group "${C[@]}" "|" --num-experts 2 --group "${C[@]}"

for r in examples/moe/stories260k-moe4-to-dense.yml examples/moe/stories260k-moe4-group2.yml; do
  n=$(basename "$r" .yml)
  $OLD merge "$r" "$OUT/old-$n" > /dev/null
  $NEW merge "$r" "$OUT/new-$n" > /dev/null
  same "merge $n" "$OUT/old-$n" "$OUT/new-$n"
done

for t in tinystories wiki code; do
  $OLD moe-stats $M --text $T/$t-eval.txt --json > "$OUT/old-stats-$t.json"
  $NEW moe-stats $M --text $T/$t-eval.txt --json > "$OUT/new-stats-$t.json"
  if python3 - "$OUT/old-stats-$t.json" "$OUT/new-stats-$t.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for d in (a, b):
    for k in ("version", "ctx", "stride"): d.pop(k, None)
sys.exit(0 if a == b else 1)
PY
  then echo "same   moe-stats $t (every statistic)"; else echo "DIFFER moe-stats $t"; fail=1; fi
done
echo "outputs in $OUT"
exit $fail
