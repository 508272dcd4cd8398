#!/usr/bin/env bash
# Reliability scenarios against the real mistral-merge binary (not part of `dotnet test`):
#   kill -9 at random points of synth / convert / merge, with and without --force;
#   disk full on a small tmpfs (needs root; skipped with a message otherwise);
#   several writers of one OUT at once; then the hostile-input scenarios of inputs.sh (INPUT_RUNS runs where repeated).
# Prints a table: scenario | runs | ok | failures. Usage: tests/reliability/run.sh [KILL_RUNS_PER_SCENARIO (default 25)]
set -u
RUNS=${1:-25}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
echo "$(date +%T) building the CLI..." >&2
dotnet build -c Release "$ROOT/src/Mistral.Merge.Cli" -v q -nologo >/dev/null || { echo "build failed" >&2; exit 1; }
MM=$ROOT/src/Mistral.Merge.Cli/bin/Release/net10.0/mistral-merge
W=$(mktemp -d /tmp/mm-reliability-XXXXXX)
LOG=$W/failures.log
FS=$W/fs
cleanup() { mountpoint -q "$FS" 2>/dev/null && umount "$FS"; rm -rf "$W"; }
trap cleanup EXIT

MODEL=(--arch mistral --hidden 256 --layers 4 --heads 8 --kv-heads 4 --intermediate 768 --vocab 4000 --tokenizer byte-level)
SHARD=(--out-shard-size 2MB)
TABLE=()
row() { TABLE+=("| $1 | $2 | $3 | $4 |"); echo "$(date +%T) $1: $3 of $2 ok" >&2; }
fail() { echo "[$SCENARIO] $*" >>"$LOG"; FAILED=$((FAILED + 1)); }

# Fingerprint of a model folder's tensors (absent when there is no folder).
fp() { [ -d "$1" ] || { echo absent; return; }; (cd "$1" && ls -1 ./*.safetensors ./model.safetensors.index.json 2>/dev/null | sort | xargs -r cat | md5sum | cut -c1-32); }
leftovers() { ls -A "$(dirname "$1")" | grep -E "^\.$(basename "$1")\.(partial-|lock)" ; }

# the command that writes OUT in variant old|new (same shapes, different bytes)
cmd() { # KIND VARIANT OUT [--force]
  local kind=$1 variant=$2 out=$3; shift 3
  local seed=1 dtype=bfloat16 recipe=$W/recipe-old.yml
  [ "$variant" = new ] && { seed=2; dtype=float16; recipe=$W/recipe-new.yml; }
  case $kind in
    synth) echo "$MM synth $out ${MODEL[*]} --seed $seed ${SHARD[*]} $*" ;;
    convert) echo "$MM convert $W/a $out --dtype $dtype ${SHARD[*]} $*" ;;
    merge) echo "$MM merge $recipe $out ${SHARD[*]} $*" ;;
  esac
}

echo "$(date +%T) preparing inputs and reference outputs..." >&2
$MM synth "$W/a" "${MODEL[@]}" --seed 11 "${SHARD[@]}" >/dev/null || exit 1
$MM synth "$W/b" "${MODEL[@]}" --seed 12 "${SHARD[@]}" >/dev/null || exit 1
for v in old:0.5 new:0.3; do
  printf 'merge_method: linear\nmodels:\n  - model: %s\n    parameters: {weight: %s}\n  - model: %s\n    parameters: {weight: 0.5}\ndtype: bfloat16\n' \
    "$W/a" "${v#*:}" "$W/b" >"$W/recipe-${v%%:*}.yml"
done
declare -A REF MS # reference fingerprints; milliseconds a run takes (kills are spread over it)
for kind in synth convert merge; do
  for v in old new; do
    t0=$(date +%s%N)
    $(cmd $kind $v "$W/ref-$kind-$v") >/dev/null 2>&1 || { echo "reference $kind $v failed" >&2; exit 1; }
    MS[$kind]=$(( ($(date +%s%N) - t0) / 1000000 ))
    REF[$kind-$v]=$(fp "$W/ref-$kind-$v")
  done
done

# --- kill -9 at random points -------------------------------------------------------------------------------------
for kind in synth convert merge; do
  for force in "" --force; do
    SCENARIO="kill -9 $kind${force:+ --force}"; FAILED=0; ok=0; killed=0
    out=$W/k-$kind${force:+-f}; rm -rf "$out"
    for ((i = 0; i < RUNS; i++)); do
      bad=$FAILED
      rm -rf "$out"; [ -n "$force" ] && cp -r "$W/ref-$kind-old" "$out"
      before=$(fp "$out")
      $(cmd $kind new "$out" $force) >/dev/null 2>"$W/err" & pid=$!
      delay=$(( (RANDOM * 32768 + RANDOM) % (MS[$kind] * 11 / 10 + 1) ))
      sleep "$((delay / 1000)).$(printf %03d $((delay % 1000)))"
      kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; rc=$?
      [ $rc = 137 ] && killed=$((killed + 1))
      [ $rc = 0 ] || [ $rc = 137 ] || fail "run $i: exit $rc: $(cat "$W/err")"
      now=$(fp "$out")
      if [ "$now" != "$before" ] && [ "$now" != "${REF[$kind-new]}" ]; then fail "run $i: OUT is neither the old nor the new model ($now)"; fi
      if [ "$now" != absent ] && ! $MM inspect "$out" >/dev/null 2>"$W/err"; then fail "run $i: inspect OUT failed: $(cat "$W/err")"; fi
      # a following successful run (old bytes again) cleans up whatever the kill left
      [ -z "$force" ] && rm -rf "$out"
      $(cmd $kind old "$out" $force) >/dev/null 2>"$W/err" || fail "run $i: following run failed: $(cat "$W/err")"
      [ "$(fp "$out")" = "${REF[$kind-old]}" ] || fail "run $i: following run wrote a wrong model"
      [ -z "$(leftovers "$out")" ] || fail "run $i: leftovers after the following run: $(leftovers "$out" | tr '\n' ' ')"
      [ $FAILED = $bad ] && ok=$((ok + 1))
    done
    row "$SCENARIO ($killed killed mid-run)" "$RUNS" "$ok" "$FAILED"
  done
done

# --- disk full on a small tmpfs -----------------------------------------------------------------------------------
mkdir -p "$FS"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=48m tmpfs "$FS" 2>/dev/null; then
  for kind in synth convert merge; do
    SCENARIO="disk full (tmpfs) $kind --force"; FAILED=0; ok=0; runs=0; midwrite=0
    out=$FS/out; rm -rf "$out" "$FS/filler"; cp -r "$W/ref-$kind-old" "$out"
    size=$(cat "$W/ref-$kind-new"/*.safetensors | wc -c)
    # free space around the model's size: refused up front (the check counts the laid-out headers), full mid-write, or fitting
    for spare in -8192 0 16384 28672 30720 32768 34816 36864 38912 40960 43008 45056 47104 49152 65536 1048576; do
      bad=$FAILED; runs=$((runs + 1))
      rm -f "$FS/filler"
      free=$(df -B1 --output=avail "$FS" | tail -1)
      fill=$((free - size - spare)); [ $fill -gt 0 ] && fallocate -l $fill "$FS/filler"
      before=$(fp "$out")
      $(cmd $kind new "$out" --force) >/dev/null 2>"$W/err"; rc=$?
      errs=$(grep -v '^\[' "$W/err")
      grep -q "internal error" "$W/err" && fail "spare $spare: internal error: $errs"
      [ -z "$(leftovers "$out")" ] || fail "spare $spare: leftovers: $(leftovers "$out" | tr '\n' ' ')"
      if [ $rc = 0 ]; then
        [ "$(fp "$out")" = "${REF[$kind-new]}" ] || fail "spare $spare: exit 0 but a wrong model"
        rm -rf "$out"; rm -f "$FS/filler"; cp -r "$W/ref-$kind-old" "$out"
      else
        [ $rc = 1 ] || fail "spare $spare: exit $rc"
        [ "$(echo "$errs" | wc -l)" = 1 ] && [[ "$errs" == "error: "* ]] || fail "spare $spare: not one error line: $errs"
        [ "$(fp "$out")" = "$before" ] || fail "spare $spare: the old OUT changed"
        if [[ "$errs" == "error: $out"*": no space left on device (ENOSPC); nothing was written" ]]; then midwrite=$((midwrite + 1))
        elif [[ "$errs" != *"is free on that disk" ]]; then fail "spare $spare: unexpected error: $errs"; fi
      fi
      [ $FAILED = $bad ] && ok=$((ok + 1))
    done
    [ $midwrite -gt 0 ] || fail "no run ran out of space mid-write"
    row "$SCENARIO ($midwrite mid-write ENOSPC)" "$runs" "$ok" "$FAILED"
  done
  umount "$FS"
else
  echo "disk-full scenarios skipped: mounting a tmpfs needs root" >&2
  row "disk full (tmpfs): skipped, needs root" 0 0 0
fi

# --- several writers of one OUT at once ---------------------------------------------------------------------------
WRITERS=4
for kind in synth convert merge; do
  for force in "" --force; do
    SCENARIO="$WRITERS concurrent $kind${force:+ --force}"; FAILED=0; ok=0; rounds=5; locked=0
    out=$W/c-$kind${force:+-f}
    for ((i = 0; i < rounds; i++)); do
      bad=$FAILED
      rm -rf "$out"; [ -n "$force" ] && cp -r "$W/ref-$kind-old" "$out"
      pids=()
      for ((j = 0; j < WRITERS; j++)); do $(cmd $kind new "$out" $force) >/dev/null 2>"$W/err$j" & pids+=($!); done
      wins=0
      for ((j = 0; j < WRITERS; j++)); do
        wait ${pids[$j]}; rc=$?
        errs=$(grep -v '^\[' "$W/err$j")
        if [ $rc = 0 ]; then wins=$((wins + 1))
        elif [ $rc = 1 ] && [[ "$errs" == "error: $out is being written by another mistral-merge process (pid "[0-9]*")" ]]; then locked=$((locked + 1))
        elif [ $rc = 1 ] && [ -z "$force" ] && [[ "$errs" == "error: $out: folder exists and is not empty"* ]]; then : # started after the winner had finished
        else fail "round $i: exit $rc: $errs"; fi
      done
      if [ -z "$force" ]; then [ $wins = 1 ] || fail "round $i: $wins winners"; else [ $wins -ge 1 ] || fail "round $i: no winner"; fi
      [ "$(fp "$out")" = "${REF[$kind-new]}" ] || fail "round $i: OUT is not the complete new model"
      $MM inspect "$out" >/dev/null 2>&1 || fail "round $i: inspect OUT failed"
      [ -z "$(leftovers "$out")" ] || fail "round $i: leftovers: $(leftovers "$out" | tr '\n' ' ')"
      [ $FAILED = $bad ] && ok=$((ok + 1))
    done
    row "$SCENARIO ($locked lock refusals)" "$rounds" "$ok" "$FAILED"
  done
done

# --- hostile and unusual inputs (tests/reliability/inputs.sh) ---------------------------------------------------------
while IFS= read -r line; do TABLE+=("$line"); done < <(MM=$MM LOG=$LOG ROWS_ONLY=1 bash "$ROOT/tests/reliability/inputs.sh" "${INPUT_RUNS:-10}")

echo
echo "| scenario | runs | ok | failures |"
echo "|---|---|---|---|"
printf '%s\n' "${TABLE[@]}"
if [ -s "$LOG" ]; then echo; echo "failures:"; head -50 "$LOG"; exit 1; fi
