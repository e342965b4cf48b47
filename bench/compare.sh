#!/usr/bin/env bash
# Side-by-side throughput of shrink and PyTorch at the same thread count, printed as ratios.
# Usage: bench/compare.sh [PYTHON]   (PYTHON defaults to python3; it needs `pip install torch`)
# Build first: cargo build --release -p shrink-cli
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
THREADS=${THREADS:-2}
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
SHRINK=target/release/shrink
printf '%-16s %-6s %6s %14s %14s %8s\n' arch mode batch shrink_ex/s torch_ex/s ratio
run() {
  local arch=$1 mode=$2 batch=$3 steps=$4
  local ours theirs
  ours=$($SHRINK bench --arch "$arch" --mode "$mode" --batch-size "$batch" --steps "$steps" | sed 's/.*"samples_per_sec":\([0-9.e+-]*\).*/\1/')
  theirs=$($PY bench/torch_bench.py --arch "$arch" --mode "$mode" --batch-size "$batch" --steps "$steps" --threads "$THREADS" | sed 's/.*"samples_per_sec": \([0-9.e+-]*\).*/\1/')
  printf '%-16s %-6s %6s %14.1f %14.1f %7.2fx\n' "$arch" "$mode" "$batch" "$ours" "$theirs" "$(awk -v a="$ours" -v b="$theirs" 'BEGIN{print a/b}')"
}
run simple-dnn train 128 20
run simple-dnn eval 128 40
run lenet5 train 128 40
run resnet20 train 128 10
run resnet20 eval 256 10
