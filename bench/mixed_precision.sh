#!/usr/bin/env bash
# Mixed precision vs uniform bits on the shared pretrained resnet20 (issue 4, point 6):
# one sensitivity sweep (1,000 validation images carved from the CIFAR-10 train split, seed 0,
# symmetric per-tensor quantization, candidates 2,3,4,5,6,8) and one allocation per average
# budget, each compared with uniform floor/ceil bits on the 10,000 test images.
# Usage: [METRIC=kl|loss] bench/mixed_precision.sh [BUDGETS]   (default 2.5,3,4; needs $SHRINK_SHARED or ../shared)
# Build first: cargo build --release -p shrink-cli
set -euo pipefail
cd "$(dirname "$0")/.."
SH=${SHRINK_SHARED:-../shared}
BUDGETS=${1:-2.5,3,4}
METRIC=${METRIC:-kl}
OUT=${OUT:-runs/mixed-r20-$METRIC}
target/release/shrink mixed "$SH/models/resnet20-cifar10.safetensors" \
  --data "$SH/data/cifar10-jpeg.tar.gz" --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 \
  --scheme symmetric --avg-bits "$BUDGETS" --metric "$METRIC" --calib-samples 1000 --seed 0 --out-dir "$OUT" --force
