#!/usr/bin/env bash
# QAT figures on MNIST (bench/results/qat.md): lenet5-bn trained in float, then LSQ W4A4 and
# W2A2 (distilled from the float model) and STE weight-only 4/3/2 bits, each evaluated by
# `shrink eval` from the written file; and the epoch time of `shrink qat` STE and LSQ W4A4
# beside bench/qat_torch.py doing the same work in the same run.
# Usage: bench/qat_compare.sh [PYTHON]   (PYTHON needs torch; build first:
#   cargo build --release -p shrink-cli)
# EPOCHS_FP32 (3), EPOCHS_QAT (2), OUT (target/qat-bench) override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
THREADS=${THREADS:-2}
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
SHRINK=${SHRINK:-target/release/shrink}
OUT=${OUT:-target/qat-bench}
E0=${EPOCHS_FP32:-3}
E=${EPOCHS_QAT:-2}
mkdir -p "$OUT"
FP32=$OUT/lenet5-bn.safetensors
field() { sed "s/.*\"$1\":\([0-9.e+-]*\).*/\1/"; }
if [ ! -f "$FP32" ]; then
  $SHRINK train --arch lenet5-bn --data data/mnist --epochs "$E0" --lr 0.05 -o "$FP32" --json >"$OUT/fp32.json"
fi
acc() { $SHRINK eval "$1" --data data/mnist --json | field accuracy; }
printf '| model | bits (W/A) | epochs | test acc (shrink eval) | size | compression | epoch s |\n|---|---|---|---|---|---|---|\n'
printf '| lenet5-bn fp32 | 32/32 | %s | %s | | 1.00x | |\n' "$E0" "$(acc "$FP32")"
qat() {
  local name=$1; shift
  $SHRINK qat "$FP32" --data data/mnist -o "$OUT/$name.safetensors" --json "$@" >"$OUT/$name.json"
  local j; j=$(cat "$OUT/$name.json")
  printf '| %s | %s | %s | %s | %s B | %.2fx | %.1f |\n' "$name" "$(echo "$j" | sed 's/.*"bits":"\([^"]*\)".*/\1/')" \
    "$(echo "$j" | grep -o '"epoch":[0-9]*' | wc -l)" "$(acc "$OUT/$name.safetensors")" \
    "$(echo "$j" | field quantized_bytes)" "$(echo "$j" | field compression_rate)" "$(echo "$j" | field mean_epoch_seconds)"
}
qat lsq-w4a4 --method lsq --bits 4,4 --epochs "$E" --teacher "$FP32"
qat lsq-w2a2 --method lsq --bits 2,2 --epochs "$E" --teacher "$FP32"
for b in 4 3 2; do
  qat "ste-w$b" --method ste --bits "$b" --epochs 1
done
echo
echo "epoch time, 55,000 images, batch 128, $THREADS threads (shrink: mean_epoch_seconds of the runs above, training pass only)"
for m in ste lsq; do
  f=$OUT/ste-w4.json w=--weights-only
  [ "$m" = lsq ] && f=$OUT/lsq-w4a4.json w=
  echo "shrink $m (W4 / W4A4) lenet5-bn epoch: $(field mean_epoch_seconds <"$f") s | $($PY bench/qat_torch.py --method $m --bits 4 --threads "$THREADS" $w)"
done
