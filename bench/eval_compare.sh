#!/usr/bin/env bash
# Test-set evaluation of an MLP model file, shrink vs PyTorch, alternating ROUNDS times; prints
# the median seconds for the 10k MNIST test images on each side and their ratio.
# Usage: bench/eval_compare.sh MODEL [PYTHON]   (build first: cargo build --release -p shrink-cli)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$1
PY=${2:-python3}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ours=() theirs=()
for _ in $(seq "$ROUNDS"); do
  # Forward time of the whole test set: mean batch latency times the number of batches.
  ours+=("$(target/release/shrink eval "$MODEL" --data data/mnist --batch-size 1000 --json |
    sed 's/.*"latency_ms_per_batch":\([0-9.e+-]*\).*"samples":\([0-9]*\).*/\1 \2/' |
    awk '{printf "%.3f", $1 * int(($2 + 999) / 1000) / 1000}')")
  # torch: the best of its three repetitions in this round.
  theirs+=("$($PY bench/eval_mnist_torch.py "$MODEL" --threads "$THREADS" | sed 's/.*images: \([0-9.]*\) s.*/\1/' | sort -g | head -1)")
done
mo=$(printf '%s\n' "${ours[@]}" | median)
mt=$(printf '%s\n' "${theirs[@]}" | median)
echo "shrink ${ours[*]} s | torch ${theirs[*]} s | medians $mo / $mt s = $(awk -v a="$mo" -v b="$mt" 'BEGIN{printf "%.2f", b/a}')x"
