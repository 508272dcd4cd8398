#!/usr/bin/env bash
# Hostile and unusual inputs against the real mistral-merge binary (not part of `dotnet test`): the Hugging Face
# cache's symlinks, devices and FIFOs, inputs truncated or rewritten during a run, non-finite merges, out-of-range
# parameters, hostile side files and recipes, huge contexts and dimensions.
# Each scenario must end with the expected exit code, at most one stderr line starting "error:" when it fails,
# never "internal error", within its time limit and peak-memory limit, with no leftovers beside the output.
# Prints a table: scenario | runs | ok | failures. Usage: tests/reliability/inputs.sh [RUNS (default 10)]
# (tests/reliability/run.sh runs it too and puts its rows into its own table.)
set -u
RUNS=${1:-10}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${MM:-}" ]; then
  echo "$(date +%T) building the CLI..." >&2
  dotnet build -c Release "$ROOT/src/Mistral.Merge.Cli" -v q -nologo >/dev/null || { echo "build failed" >&2; exit 1; }
  MM=$ROOT/src/Mistral.Merge.Cli/bin/Release/net10.0/mistral-merge
fi
W=$(mktemp -d /tmp/mm-inputs-XXXXXX)
LOG=${LOG:-$W/failures.log}
trap 'rm -rf "$W"' EXIT
TABLE=()
row() { TABLE+=("| $1 | $2 | $3 | $4 |"); echo "$(date +%T) $1: $3 of $2 ok" >&2; }
fail() { echo "[$SCENARIO] $*" >>"$LOG"; FAILED=$((FAILED + 1)); }

# expect EXIT SECONDS MAX_RSS_MB PATTERN -- command...: runs it under time and memory watch and checks the result.
expect() {
  local want=$1 secs=$2 maxmb=$3 pattern=$4; shift 5
  /usr/bin/time -f %M -o "$W/rss" timeout -s KILL "$secs" "$@" >"$W/out" 2>"$W/err"; local rc=$?
  local kb; kb=$(tail -n1 "$W/rss" 2>/dev/null); kb=${kb:-0}
  [ "$rc" = 137 ] && { fail "timed out after ${secs}s: $*"; return 1; }
  [ "$rc" = "$want" ] || { fail "exit $rc (want $want): $* :: $(head -c 300 "$W/err")"; return 1; }
  grep -q "internal error" "$W/err" && { fail "internal error: $(head -c 300 "$W/err")"; return 1; }
  if [ "$want" != 0 ]; then
    # one "error:" line, last; before it only a recipe's problems, one line each, as FILE:LINE:COLUMN: text
    tail -n1 "$W/err" | grep -q '^error: ' && [ "$(grep -c '^error: ' "$W/err")" = 1 ] \
      && ! grep -vE '^error: |^[^ ]+:[0-9]+:[0-9]+: ' "$W/err" | grep -q . || { fail "not one error line: $(head -c 300 "$W/err")"; return 1; }
  fi
  [ -n "$pattern" ] && ! grep -qE -- "$pattern" "$W/err" "$W/out" && { fail "no '$pattern' in: $(head -c 300 "$W/err")"; return 1; }
  [ "$((kb / 1024))" -le "$maxmb" ] || { fail "peak RSS $((kb / 1024)) MB > $maxmb MB: $*"; return 1; }
  return 0
}
no_leftovers() { [ -z "$(ls -A "$1" | grep -E '\.partial-|\.old$|\.lock$')" ] || fail "leftovers in $1: $(ls -A "$1" | tr '\n' ' ')"; }
scenario() { SCENARIO=$1; FAILED=0; OK=0; N=0; }
check() { N=$((N + 1)); local bad=$FAILED; "$@"; [ $FAILED = $bad ] && OK=$((OK + 1)); }
done_row() { row "$SCENARIO" "$N" "$OK" "$FAILED"; }

echo "$(date +%T) preparing models..." >&2
TINY=(--arch mistral --hidden 64 --layers 2 --heads 4 --kv-heads 2 --intermediate 128 --vocab 448 --tokenizer byte-level)
$MM synth "$W/a" "${TINY[@]}" --seed 1 >/dev/null && $MM synth "$W/b" "${TINY[@]}" --seed 2 >/dev/null || exit 1
for k in "" 2 3; do
  $MM synth "$W/big$k" --arch mistral --hidden 1024 --layers 8 --heads 8 --intermediate 4096 --vocab 32000 --dtype float32 --tokenizer byte-level --seed "1$k" >/dev/null || exit 1
done
python3 -c "print('The quick brown fox jumps over the lazy dog. ' * 200)" >"$W/text.txt"
recipe() { printf '%s\n' "$@" >"$W/r.yml"; echo "$W/r.yml"; }

# --- the Hugging Face cache: blobs/ + symlinked snapshots/ + refs/main ------------------------------------------------
hub=$W/hub/models--org--tiny; rev=0123456789abcdef0123456789abcdef01234567
mkdir -p "$hub/blobs" "$hub/snapshots/$rev" "$hub/refs"; printf %s "$rev" >"$hub/refs/main"
for f in "$W"/a/*; do h=$(sha256sum "$f" | cut -c1-64); cp "$f" "$hub/blobs/$h"; ln -s "../../blobs/$h" "$hub/snapshots/$rev/$(basename "$f")"; done
snap=$hub/snapshots/$rev
scenario "HF cache: every command on symlinked snapshots"
check expect 0 60 2000 "layers:" -- "$MM" inspect "$snap"
check expect 0 60 2000 "perplexity:" -- "$MM" perplexity "$snap" --text "$W/text.txt" --ctx 128
check expect 0 60 2000 "" -- "$MM" generate "$snap" --prompt "The quick" --max-new-tokens 8
check expect 0 60 2000 "KL" -- "$MM" compare "$snap" "$W/a" --text "$W/text.txt" --ctx 128
check expect 0 60 2000 "wrote" -- "$MM" convert "$snap" "$W/hf-conv" --dtype float32
check expect 0 60 2000 "" -- env HF_HUB_CACHE="$W/hub" "$MM" merge "$(recipe 'merge_method: linear' 'models:' '  - model: org/tiny' '    parameters: {weight: 1.0}' '  - model: '"$W/b" '    parameters: {weight: 1.0}')" "$W/hf-merge"
done_row

# --- not regular files -------------------------------------------------------------------------------------------------
scenario "devices, FIFOs and directories as inputs"
mkdir -p "$W/dev" "$W/fifo" "$W/dir/model.safetensors"; ln -s /dev/zero "$W/dev/model.safetensors"; mkfifo "$W/fifo/model.safetensors" "$W/pipe"
cp -r "$W/a" "$W/fifotok"; rm "$W/fifotok/tokenizer.model"; mkfifo "$W/fifotok/tokenizer.model"
check expect 1 20 500 "character device" -- "$MM" inspect "$W/dev"
check expect 1 20 500 "FIFO" -- "$MM" inspect "$W/fifo"
check expect 1 20 500 "" -- "$MM" inspect "$W/dir"
check expect 1 20 500 "FIFO" -- "$MM" perplexity "$W/fifotok" --text "$W/text.txt"
check expect 1 20 500 "FIFO" -- "$MM" perplexity "$W/a" --text "$W/pipe"
check expect 1 20 500 "" -- "$MM" perplexity "$W/a" --text /dev/zero
check expect 1 20 500 "FIFO" -- "$MM" merge "$W/pipe" "$W/never"
done_row

# --- inputs truncated or rewritten while being read ------------------------------------------------------------------
scenario "input truncated during convert (SIGBUS)"
for ((i = 0; i < RUNS; i++)); do
  N=$((N + 1)); bad=$FAILED
  rm -rf "$W/victim" "$W/conv"; cp -r "$W/big" "$W/victim"
  "$MM" convert "$W/victim" "$W/conv" --dtype bfloat16 >/dev/null 2>"$W/err" & pid=$!
  sleep "0.$(printf %03d $((RANDOM % 600)))"; truncate -s 20M "$W/victim/model.safetensors"; wait $pid; rc=$?
  if [ $rc = 0 ]; then :; # finished before the truncation: a complete model
  # truncated before it was opened: a header error; while being read: SIGBUS or the modification check
  elif [ $rc != 1 ] || [ "$(grep -c . "$W/err")" != 1 ] || ! grep -q '^error: ' "$W/err"; then fail "exit $rc: $(head -c 300 "$W/err")"; fi
  grep -q "internal error" "$W/err" && fail "internal error"
  [ $rc = 0 ] || [ ! -e "$W/conv" ] || fail "an output folder exists after a failed run"
  rm -rf "$W/conv"; "$MM" convert "$W/a" "$W/conv" >/dev/null 2>&1 || fail "following run failed"
  no_leftovers "$W"
  [ $FAILED = $bad ] && OK=$((OK + 1))
done
done_row
scenario "input rewritten in place during merge"
mix() { recipe 'merge_method: linear' 'models:' "  - model: $1" '    parameters: {weight: 0.5}' "  - model: $W/big2" '    parameters: {weight: 0.5}'; }
$MM merge "$(mix "$W/big")" "$W/m-ref" >/dev/null 2>"$W/err" || { echo "reference merge failed: $(cat "$W/err")" >&2; exit 1; }
ref=$(md5sum <"$W/m-ref/model.safetensors")
for ((i = 0; i < RUNS; i++)); do
  N=$((N + 1)); bad=$FAILED
  rm -rf "$W/victim" "$W/m-out"; cp -r "$W/big" "$W/victim"
  "$MM" merge "$(mix "$W/victim")" "$W/m-out" >/dev/null 2>"$W/err" & pid=$!
  sleep "0.$(printf %03d $((RANDOM % 500)))"
  dd if=/dev/zero of="$W/victim/model.safetensors" bs=1M count=1 seek=100 conv=notrunc status=none; wait $pid; rc=$?
  if [ $rc = 1 ]; then grep -q "modified while it was being read" "$W/err" || fail "exit 1 without naming the change: $(head -c 300 "$W/err")"; [ ! -e "$W/m-out" ] || fail "output written"
  elif [ $rc = 0 ]; then # finished before the rewrite (the old result) or opened after it (the new result), never a mix
    got=$(md5sum <"$W/m-out/model.safetensors")
    if [ "$got" != "$ref" ]; then
      rm -rf "$W/m-new"; $MM merge "$(mix "$W/victim")" "$W/m-new" >/dev/null 2>&1
      [ "$got" = "$(md5sum <"$W/m-new/model.safetensors")" ] || fail "exit 0 with a mix of old and new input bytes"
    fi
  else fail "exit $rc: $(head -c 300 "$W/err")"; fi
  no_leftovers "$W"
  [ $FAILED = $bad ] && OK=$((OK + 1))
done
rm -rf "$W/m-ref" "$W/m-out" "$W/m-new"
done_row

# --- non-finite results and parameter ranges --------------------------------------------------------------------------
lin() { recipe 'merge_method: linear' 'models:' "  - model: $W/a" "    parameters: {weight: $1}" "  - model: $W/b" "    parameters: {weight: $2}" 'dtype: float32'; }
slerp() { recipe 'merge_method: slerp' "base_model: $W/a" 'models:' "  - model: $W/a" "  - model: $W/b" "parameters: {t: $1}"; }
ties() { recipe 'merge_method: ties' "base_model: $W/a" 'models:' "  - model: $W/b" "    parameters: {weight: 1.0, density: $1}"; }
scenario "non-finite merges and out-of-range parameters"
check expect 1 30 1000 "" -- "$MM" merge "$(lin 0 0)" "$W/nf1"
check expect 1 30 1000 "" -- "$MM" merge "$(lin 1 -1)" "$W/nf2"
check expect 1 30 1000 "" -- "$MM" merge "$(slerp 5)" "$W/nf3"
check expect 1 30 1000 "" -- "$MM" merge "$(slerp -1)" "$W/nf4"
check expect 1 30 1000 "" -- "$MM" merge "$(ties -0.5)" "$W/nf5"
check expect 1 30 1000 "" -- "$MM" merge "$(ties 2)" "$W/nf6"
for d in nf1 nf2 nf3 nf4 nf5 nf6; do [ ! -e "$W/$d" ] || fail "$d was written"; done
no_leftovers "$W"
done_row

# --- bounded memory: TIES selects magnitudes in chunks, so it peaks like a linear merge -------------------------------
scenario "TIES peak RssAnon vs linear (3 inputs, 32000x1024 float32 embeddings)"
# peak private memory (RssAnon, kB) sampled every 20 ms: mapped input pages are reclaimable cache, not our footprint
peak() {
  "$MM" merge "$1" "$2" >/dev/null 2>"$W/err" & local pid=$! max=0 kb
  while kill -0 $pid 2>/dev/null; do
    kb=$(awk '/^RssAnon:/ { print $2 }' /proc/$pid/status 2>/dev/null); [ -n "$kb" ] && [ "$kb" -gt "$max" ] && max=$kb
    sleep 0.02
  done
  wait $pid || fail "$(head -c 300 "$W/err")"; echo "$max"
}
lp=$(peak "$(recipe 'merge_method: linear' 'models:' "  - model: $W/big" '    parameters: {weight: 0.5}' "  - model: $W/big2" '    parameters: {weight: 0.5}' "  - model: $W/big3" '    parameters: {weight: 0.5}')" "$W/mem-linear")
tp=$(peak "$(recipe 'merge_method: ties' "base_model: $W/big" 'models:' "  - model: $W/big2" '    parameters: {weight: 0.5, density: 0.3}' "  - model: $W/big3" '    parameters: {weight: 0.5, density: 0.3}')" "$W/mem-ties")
N=1; awk -v t="$tp" -v l="$lp" 'BEGIN { exit !(t <= 1.25 * l) }' && OK=1 || fail "TIES peak RSS $((tp / 1024)) MB vs linear $((lp / 1024)) MB"
SCENARIO="$SCENARIO: $((tp / 1024)) MB vs $((lp / 1024)) MB"
rm -rf "$W/mem-linear" "$W/mem-ties"
done_row

# --- hostile side files and recipes -------------------------------------------------------------------------------------
scenario "hostile side files, recipes and model-card text"
cp -r "$W/a" "$W/dup"; python3 - "$W/dup/config.json" <<'EOF'
import sys; p = sys.argv[1]; s = open(p).read().rstrip().rstrip('}'); open(p, 'w').write(s + ', "hidden_size": 64}')
EOF
cp -r "$W/a" "$W/duptok"; printf '{"add_bos_token": true, "add_bos_token": false}' >"$W/duptok/tokenizer_config.json"
check expect 1 20 500 "" -- "$MM" inspect "$W/dup"
check expect 1 20 500 "" -- "$MM" generate "$W/duptok" --prompt hi --max-new-tokens 2
truncate -s 100M "$W/huge.yml"
check expect 1 20 500 "" -- "$MM" merge "$W/huge.yml" "$W/never"
python3 -c "
a = 'a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n'
for i in range(1, 9): a += f'{chr(97+i)}: &{chr(97+i)} [*{chr(96+i)},*{chr(96+i)},*{chr(96+i)},*{chr(96+i)},*{chr(96+i)},*{chr(96+i)},*{chr(96+i)},*{chr(96+i)},*{chr(96+i)}]\n'
print(a + 'merge_method: linear')" >"$W/bomb.yml"
check expect 1 20 1000 "" -- "$MM" merge "$W/bomb.yml" "$W/never"
r=$(recipe 'name: "x</h1><script>alert(1)</script> [link](javascript:x)"' 'merge_method: linear' 'models:' "  - model: $W/a" '    parameters: {weight: 0.5}' "  - model: $W/b" '    parameters: {weight: 0.5}')
check expect 0 30 1000 "" -- "$MM" merge "$r" "$W/card"
# outside code fences (the recipe is quoted verbatim inside one, where Markdown renders no HTML)
awk '/^```/ { fenced = !fenced; next } !fenced && /<script>/ { found = 1 } END { exit !found }' "$W/card/README.md" \
  && fail "the model card carries raw <script> from the recipe name outside the recipe block"
done_row

# --- sizes: contexts, token budgets, dimensions -----------------------------------------------------------------------
scenario "huge contexts, token budgets and dimensions"
check expect 1 20 1000 "context" -- "$MM" perplexity "$W/a" --text "$W/text.txt" --ctx 1000000000
check expect 0 60 1000 "context" -- "$MM" generate "$W/a" --prompt hi --max-new-tokens 2147483647 --temperature 0
python3 -c "print('x' * 40000)" >"$W/long.txt"
check expect 1 20 1000 "shorten the prompt" -- "$MM" generate "$W/a" --prompt "$(head -c 40000 "$W/long.txt")" --max-new-tokens 4
check expect 1 20 500 "num_hidden_layers' must be an integer from 0 to 10000" -- "$MM" synth "$W/s1" --arch mistral --hidden 8 --layers 1000000 --heads 2 --intermediate 8 --vocab 8
check expect 1 20 500 "hidden_size' must be an integer from 1 to 1048576" -- "$MM" synth "$W/s2" --arch mistral --hidden 2147483647 --layers 1 --heads 1 --intermediate 1 --vocab 1
check expect 1 20 500 "more than the 500,000 a checkpoint header can list" -- "$MM" synth "$W/s3" --arch mixtral --hidden 8 --layers 10000 --heads 2 --intermediate 8 --vocab 8 --experts 4096 --experts-per-token 1
no_leftovers "$W"
done_row

if [ "${ROWS_ONLY:-}" = 1 ]; then printf '%s\n' "${TABLE[@]}"; exit 0; fi # run.sh adds them to its table and log
echo
echo "| scenario | runs | ok | failures |"
echo "|---|---|---|---|"
printf '%s\n' "${TABLE[@]}"
if [ -s "$LOG" ]; then echo; echo "failures:"; cat "$LOG"; exit 1; fi
