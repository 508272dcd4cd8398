#!/usr/bin/env bash
# Old-vs-new byte identity: builds the CLI at OLD_REV and at the working tree, runs the same jobs with both, and
# compares every output byte for byte: the example recipes (examples/, merges/ on stand-in models in a
# fake Hugging Face cache), the MoE surgeries as recipes, synth, convert, the fixture perplexities and
# greedy generations (JSON with the "version" and timing fields dropped). The model card (README.md) is left out:
# its layout is documentation and changes on purpose (e.g. mergekit's card layout); the recipe inside it is compared
# through the mergekit_config.yml written beside it.
#
#   bash tests/exactness/run.sh OLD_REV          # e.g. 9d991f4 (main before a refactor)
#
# Needs ../shared/fixtures for the stories recipes and perplexities; prints one line per job and exits 1
# on the first difference list. Run from the repository root.
set -euo pipefail
OLD=${1:?usage: tests/exactness/run.sh OLD_REV}
ROOT=$(pwd)
SHARED=$(cd "$ROOT/.." && pwd)/shared
WORK=${WORK:-$(mktemp -d /tmp/mm-exact.XXXXXX)}
echo "work folder: $WORK" >&2

build() { # rev-or-worktree → folder with mistral-merge.dll
  local src=$1 out=$2
  dotnet build -c Release "$src/src/Mistral.Merge.Cli" -o "$out" -p:TreatWarningsAsErrors=false >/dev/null
}
git worktree add -f --detach "$WORK/old-src" "$OLD" >/dev/null 2>&1
trap 'git -C "$ROOT" worktree remove --force "$WORK/old-src" >/dev/null 2>&1 || true' EXIT
build "$WORK/old-src" "$WORK/old-bin"
build "$ROOT" "$WORK/new-bin"

# Stand-in models: 32-layer Mistrals and 8-expert Mixtrals named as the merges/ recipes name them,
# laid out as a Hugging Face cache (snapshots + refs/main) so the recipes run unchanged.
NEW="dotnet $WORK/new-bin/mistral-merge.dll"
HUB=$WORK/hub
TOK=$ROOT/examples/models/stories260k/tokenizer.model
stand_in() { # org/name seed arch-args...
  local name=$1 seed=$2; shift 2
  local dir="$HUB/models--${name/\//--}"
  mkdir -p "$dir/refs" "$dir/snapshots"
  echo 0123456789abcdef >"$dir/refs/main"
  $NEW synth "$dir/snapshots/0123456789abcdef" "$@" --seed "$seed" --tokenizer "$TOK" --quiet --force >/dev/null
}
M7="--arch mistral --hidden 64 --layers 32 --heads 4 --kv-heads 2 --intermediate 128 --vocab 512"
MX="--arch mixtral --hidden 64 --layers 4 --heads 4 --kv-heads 2 --intermediate 96 --vocab 512 --experts 8 --experts-per-token 2"
stand_in mistralai/Mistral-7B-v0.1 1 $M7
stand_in mistralai/Mistral-7B-Instruct-v0.1 2 $M7
stand_in mistralai/Mistral-7B-Instruct-v0.2 3 $M7
stand_in cognitivecomputations/dolphin-2.2.1-mistral-7b 4 $M7
stand_in mistralai/Mixtral-8x22B-v0.1 5 $MX
stand_in mistralai/Mixtral-8x7B-v0.1 6 $MX
mkdir -p "$WORK/recipes"
cp "$ROOT"/merges/*.yml "$WORK/recipes/"
cp "$ROOT/examples/text/tinystories.txt" "$WORK/recipes/calibration.txt"
seed=10
for m in a b c; do
  seed=$((seed + 1))
  $NEW synth "$WORK/recipes/tiny-$m" --arch mistral --hidden 64 --layers 3 --heads 4 --kv-heads 2 \
    --intermediate 128 --vocab 512 --seed $seed --tokenizer "$TOK" --quiet --force >/dev/null
done
cp "$ROOT"/examples/synthetic-*.yml "$ROOT"/examples/quickstart-slerp.yml "$WORK/recipes/"

# Every job, run by both builds; outputs go to $WORK/{old,new}/<job>.
jobs() { # prints "name<TAB>command-args" lines
  local r
  for r in "$WORK"/recipes/*.yml; do printf 'recipe-%s\tmerge %s {out} --force --quiet\n' "$(basename "$r" .yml)" "$r"; done
  if [ -d "$SHARED/fixtures" ]; then
    for r in "$ROOT"/examples/stories-*.yml "$ROOT"/examples/moe/*.yml; do
      printf 'recipe-%s\tmerge %s {out} --force --quiet\n' "$(basename "$r" .yml)" "$r"
    done
    local F=$SHARED/fixtures
    for m in stories260k stories260k-bf16 stories260k-wiki stories260k-code stories260k-moe4 stories260k-moe4-identity; do
      [ -d "$F/$m" ] || continue
      for t in tinystories wiki code; do
        printf 'ppl-%s-%s\tperplexity %s --text %s --ctx 256 --max-tokens 4096 --device cpu --json\n' "$m" "$t" "$F/$m" "$F/text/$t-eval.txt"
      done
      printf 'generate-%s\tgenerate %s --prompt "Once upon a time" --max-new-tokens 40 --temperature 0 --device cpu --json\n' "$m" "$F/$m"
    done
    printf 'moe-stats\tmoe-stats %s --text %s --json\n' "$F/stories260k-moe4" "$F/text/tinystories-eval.txt"
    printf 'convert-bf16\tconvert %s {out} --dtype bfloat16 --force --quiet\n' "$F/stories260k"
  fi
  printf 'synth-mixtral\tsynth {out} %s --seed 9 --dtype float32 --tokenizer byte-level --force --quiet\n' "$MX"
  printf 'synth-llama\tsynth {out} --arch llama --hidden 64 --layers 2 --heads 4 --intermediate 128 --vocab 512 --seed 3 --force --quiet\n'
}

status=0
while IFS=$'\t' read -r name args; do
  for side in old new; do
    out="$WORK/$side/$name"
    rm -rf "$out"; mkdir -p "$WORK/$side"
    cmd=${args//\{out\}/$out}
    # Each side resolves recipe models in the same stand-in cache; stdout (JSON) is kept without volatile fields.
    (cd "$WORK/recipes" && HF_HUB_CACHE=$HUB HF_HUB_OFFLINE=1 eval "dotnet $WORK/$side-bin/mistral-merge.dll $cmd") \
      >"$WORK/$side/$name.stdout" 2>"$WORK/$side/$name.stderr" || echo "exit $?" >>"$WORK/$side/$name.stdout"
    grep -vE '"(version|seconds|elapsed|tokens_per_second|ms_per_token|wall_seconds)"' "$WORK/$side/$name.stdout" \
      | sed -E "s#$WORK/$side/#OUT/#g; s#, [0-9.]+ s\$##" >"$WORK/$side/$name.json" || true
  done
  if diff -rq "$WORK/old/$name.json" "$WORK/new/$name.json" >/dev/null \
     && { [ ! -e "$WORK/old/$name" ] || diff -rq -x README.md "$WORK/old/$name" "$WORK/new/$name" >/dev/null; }; then
    echo "same  $name"
  else
    echo "DIFF  $name"; status=1
    diff -r "$WORK/old/$name.json" "$WORK/new/$name.json" | head -5 || true
    [ -e "$WORK/old/$name" ] && diff -rq -x README.md "$WORK/old/$name" "$WORK/new/$name" | head -5 || true
  fi
done < <(jobs)
[ $status = 0 ] && echo "all outputs byte-identical to $OLD" || echo "outputs differ from $OLD (see above; $WORK)"
exit $status
