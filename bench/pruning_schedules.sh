#!/usr/bin/env bash
# Pruning schedules inside one training run (issue 24 point 2) on LeNet-300-100 / the embedded
# MNIST: a dense model, then 70 % by one-shot + masked fine-tuning, the lab's linear schedule
# (+S/N per epoch) and AGP (cubic, every 100 steps), per layer and global; test accuracy and the
# sparsity of the written file. Prints one markdown row per run.
# Usage: bench/pruning_schedules.sh [OUTDIR] [SPARSITY] [PRUNE_EPOCHS] [FT_EPOCHS]
#   defaults: runs/pruning-schedules 0.7 3 2
# Build first: cargo build --release -p shrink-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
S=${SHRINK:-target/release/shrink}
D=data/mnist
O=${1:-runs/pruning-schedules}
SP=${2:-0.7}
N=${3:-3}
M=${4:-2}
mkdir -p "$O"
field() { python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(d$1)"; }
[ -f "$O/dense.safetensors" ] ||
  $S train --arch lenet-300-100 --data $D --epochs 10 --seed 0 -o "$O/dense.safetensors" --json 2>/dev/null >"$O/dense.json"
echo "| run | epochs | test accuracy | sparsity | best epoch | time |"
echo "|---|---|---|---|---|---|"
echo "| dense (10 epochs) | 10 | $(field "['test_accuracy']" <"$O/dense.json") | 0 | $(field "['best_epoch']" <"$O/dense.json") | - |"
for run in "oneshot:magnitude" "linear:magnitude" "agp:magnitude:--every 100" "oneshot:global-magnitude" "linear:global-magnitude" "agp:global-magnitude:--every 100"; do
  IFS=: read -r sched method extra <<<"$run"
  out="$O/$sched-$method.safetensors"
  t0=$(date +%s)
  # shellcheck disable=SC2086
  $S prune "$O/dense.safetensors" --method "$method" --schedule "$sched" --sparsity "$SP" --epochs "$N" \
    --ft-epochs "$M" --data $D --lr 0.01 --seed 0 $extra --json -o "$out" --force 2>/dev/null >"$O/$sched-$method.json"
  t1=$(date +%s)
  echo "| $sched $method | $((N + M)) | $(field "['test_accuracy']" <"$O/$sched-$method.json") | $(field "['sparsity']" <"$O/$sched-$method.json") | $(field "['best_epoch']" <"$O/$sched-$method.json") | $((t1 - t0)) s |"
done
