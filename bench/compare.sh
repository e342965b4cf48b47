#!/usr/bin/env bash
# Side-by-side throughput of shrink and PyTorch at the same thread count, printed as ratios.
# Usage: bench/compare.sh [PYTHON] [ARCH:MODE:BATCH:STEPS ...]
#   PYTHON defaults to python3 (it needs `pip install torch`); without workloads it runs the
#   issue-2 set below. ROUNDS (default 3) alternates shrink and torch that many times per
#   workload and reports the median of each side, so load from other tenants hits both alike.
# Build first: cargo build --release -p shrink-cli
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
shift || true
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
SHRINK=target/release/shrink
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
printf '%-14s %-5s %5s %13s %13s %7s %s\n' arch mode batch shrink_ex/s torch_ex/s ratio per-round
run() {
  local arch=$1 mode=$2 batch=$3 steps=$4 ours=() theirs=() ratios=()
  for _ in $(seq "$ROUNDS"); do
    local a b
    a=$($SHRINK bench --arch "$arch" --mode "$mode" --batch-size "$batch" --steps "$steps" | sed 's/.*"samples_per_sec":\([0-9.e+-]*\).*/\1/')
    b=$($PY bench/torch_bench.py --arch "$arch" --mode "$mode" --batch-size "$batch" --steps "$steps" --threads "$THREADS" | sed 's/.*"samples_per_sec": \([0-9.e+-]*\).*/\1/')
    ours+=("$a") theirs+=("$b") ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", a/b}')")
  done
  local mo mt
  mo=$(printf '%s\n' "${ours[@]}" | median)
  mt=$(printf '%s\n' "${theirs[@]}" | median)
  printf '%-14s %-5s %5s %13.1f %13.1f %6.2fx %s\n' "$arch" "$mode" "$batch" "$mo" "$mt" \
    "$(awk -v a="$mo" -v b="$mt" 'BEGIN{print a/b}')" "${ratios[*]}"
}
if [ $# -eq 0 ]; then
  set -- simple-dnn:train:128:20 simple-dnn:eval:128:40 lenet5:train:128:40 resnet20:train:128:10 resnet20:eval:256:10
fi
for w in "$@"; do
  IFS=: read -r arch mode batch steps <<<"$w"
  run "$arch" "$mode" "$batch" "$steps"
done
