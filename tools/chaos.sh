#!/usr/bin/env bash
# Chaos check of interrupts (issue 21): kills `shrink train`, `sweep quant`, `prune` and
# `export` at random moments (SIGKILL or SIGTERM after a random delay), then re-runs / resumes
# each to completion, and checks that
#   - no output is ever corrupt: after the kill every output that exists loads with
#     `shrink info` (models) or is byte-identical to the reference (sweep tables and figures);
#   - no temp file (`.NAME.PID.tmp`, `.NAME.PID.N.tmp.EXT`) is left after a SIGTERM, nor after
#     the next run (which sweeps what a SIGKILL left);
#   - the resumed / re-run result is byte-identical (cmp) to an uninterrupted reference run.
# Prints a summary table and exits non-zero on any failure.
#
# Usage: tools/chaos.sh [ROUNDS] [SEED]     (defaults: 20 rounds, a random seed, printed)
# Env: WORK=DIR puts the references and the failed rounds' directories there (default: a temp
#      dir, removed when every round passed); EPOCHS (train epochs, default 2).
set -uo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-20}
SEED=${2:-$(( $(date +%s) % 32768 ))}
RANDOM=$SEED
EPOCHS=${EPOCHS:-2}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}

cargo build --release -p shrink-cli >&2 || exit 1
SHRINK=$PWD/target/release/shrink
DATA=$PWD/data/mnist
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/shrink-chaos.XXXXXX")}
mkdir -p "$WORK/ref"
echo "chaos: $ROUNDS rounds, seed $SEED, work dir $WORK" >&2

# The command lines; $1 is the directory the outputs go to.
train_cmd() { echo "train --arch lenet-300-100 --data $DATA --epochs $EPOCHS --seed 1 --val-size 5000 -o $1/model.safetensors"; }
sweep_cmd() { echo "sweep quant $WORK/ref/model.safetensors --data $DATA --method clip,asymmetric --bits 2,4,8 --range max,0.5,1 --out-dir $1/sweep"; }
# prune and export read the 104 MB simple-dnn, so a kill often lands while its output is written.
prune_cmd() { echo "prune $WORK/ref/big.safetensors --method neuron-l2 --sparsity 0.3 -o $1/pruned.safetensors"; }
export_cmd() { echo "export $WORK/ref/big.safetensors --format onnx -o $1/model.onnx"; }
# The outputs compared with the reference (relative to the directory).
train_out="model.safetensors"
sweep_out="sweep/table.md sweep/table.csv sweep/table.json sweep/clip-accuracy-vs-bits.png sweep/clip-accuracy-vs-q.png sweep/asymmetric-accuracy-vs-bits.png sweep/asymmetric-accuracy-vs-q.png"
prune_out="pruned.safetensors"
export_out="model.onnx"

now_ms() { date +%s%3N; }

# Reference runs (uninterrupted), timed to pick kill delays inside each run.
"$SHRINK" train --arch simple-dnn --data "$DATA" --epochs 0 --seed 1 -o "$WORK/ref/big.safetensors" >/dev/null 2>&1 \
  || { echo "cannot make the simple-dnn input" >&2; exit 1; }
declare -A DURATION
for c in train sweep prune export; do
  start=$(now_ms)
  # shellcheck disable=SC2046
  if ! "$SHRINK" $("${c}_cmd" "$WORK/ref") >"$WORK/ref/$c.stdout" 2>"$WORK/ref/$c.stderr"; then
    echo "reference $c run failed:" >&2; cat "$WORK/ref/$c.stderr" >&2; exit 1
  fi
  DURATION[$c]=$(( $(now_ms) - start ))
  echo "reference $c: ${DURATION[$c]} ms" >&2
done

temp_files() { find "$1" -name '.*.tmp' -o -name '.*.tmp.*' 2>/dev/null; }

# Every model output in $1 that exists must load; every sweep output that exists must be the
# reference's (tables and figures are written whole or not at all).
check_outputs() {
  local dir=$1 c=$2 f
  for f in ${!3}; do
    [[ -e "$dir/$f" ]] || continue
    case $f in
      *.safetensors|*.onnx)
        "$SHRINK" info "$dir/$f" >/dev/null 2>&1 || { echo "corrupt $f"; return; } ;;
      *)
        cmp -s "$dir/$f" "$WORK/ref/$f" || { echo "partial $f"; return; } ;;
    esac
  done
}

FAILS=0
ROWS=()
commands=(train sweep prune export)
for ((i = 1; i <= ROUNDS; i++)); do
  c=${commands[RANDOM % 4]}
  if (( RANDOM % 2 )); then sig=KILL; else sig=TERM; fi
  # A delay anywhere in the reference run's duration.
  delay=$(( (RANDOM * 32768 + RANDOM) % DURATION[$c] + 1 ))
  dir="$WORK/round-$i-$c"
  mkdir -p "$dir"
  outs="${c}_out"
  # shellcheck disable=SC2046
  "$SHRINK" $("${c}_cmd" "$dir") >"$dir/killed.stdout" 2>"$dir/killed.stderr" &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  kill -s "$sig" "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  code=$?
  result=ok
  left=$(temp_files "$dir" | wc -l)
  problem=$(check_outputs "$dir" "$c" "$outs")
  [[ -n "$problem" ]] && result="FAIL after kill: $problem"
  if [[ $result == ok && $sig == TERM && -n "$(temp_files "$dir")" ]]; then
    result="FAIL: temp file after SIGTERM: $(temp_files "$dir" | head -1)"
  fi
  # Re-run to completion: train resumes from its checkpoint, the sweep from its journal.
  args=$("${c}_cmd" "$dir")
  if [[ $c == train && -f "$dir/model.safetensors.ckpt" ]]; then
    args="$args --resume $dir/model.safetensors.ckpt"
  fi
  # shellcheck disable=SC2086
  if ! "$SHRINK" $args >"$dir/rerun.stdout" 2>"$dir/rerun.stderr"; then
    [[ $result == ok ]] && result="FAIL: re-run: $(tail -1 "$dir/rerun.stderr")"
  fi
  if [[ $result == ok && -n "$(temp_files "$dir")" ]]; then
    result="FAIL: temp file after the next run: $(temp_files "$dir" | head -1)"
  fi
  if [[ $result == ok ]]; then
    for f in ${!outs}; do
      if ! cmp -s "$dir/$f" "$WORK/ref/$f"; then
        result="FAIL: $f differs from the uninterrupted run"
        break
      fi
    done
  fi
  resumed=$(grep -o 'resuming: [0-9]* of [0-9]* cells done' "$dir/rerun.stderr" | head -1)
  [[ $c == train && $args == *--resume* ]] && resumed="resumed from checkpoint"
  if [[ $result == ok ]]; then rm -rf "$dir"; else FAILS=$((FAILS + 1)); fi
  ROWS+=("$(printf '| %2d | %-6s | SIG%-4s | %6d | %4s | %d | %-29s | %s |' "$i" "$c" "$sig" "$delay" "$code" "$left" "${resumed:--}" "$result")")
done

echo
echo "chaos: $ROUNDS rounds, seed $SEED (re-run: tools/chaos.sh $ROUNDS $SEED)"
echo
echo "| round | command | signal | delay (ms) | exit | temp files after the kill | next run | result |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
if (( FAILS > 0 )); then
  echo "chaos: $FAILS of $ROUNDS rounds FAILED (directories kept in $WORK)"
  exit 1
fi
echo "chaos: all $ROUNDS rounds passed"
[[ "$WORK" == "${TMPDIR:-/tmp}"/shrink-chaos.* ]] && rm -rf "$WORK"
exit 0
