#!/usr/bin/env bash
# Int8 execution in the compiled runtime plan (issue 22): fp32 against int8 deploy files of
# simple-dnn (MNIST) and ResNet-20 (CIFAR-10), latency and accuracy. Builds nothing.
#
# 1. models: simple-dnn trained one epoch on data/mnist; ResNet-20 from $SHRINK_SHARED; each
#    exported `--format shrink` (fp32) and `--format shrink --int8 --calib DATA` (64 calibration
#    images: the first batch of the train split), plus the same int8 graph as QDQ ONNX for the
#    reference evaluator;
# 2. latency: `shrink bench` fp32 then int8, back to back, ROUNDS times (medians of the per-round
#    medians), then one `--per-layer` run of each;
# 3. accuracy: `shrink run` of both ResNet-20 files on the CIFAR-10 test split (10,000 images),
#    and the int8 plan's predictions against the reference evaluator's
#    (`shrink eval QDQ.onnx --engine graph`, Quantize/Dequantize evaluated in f32).
#
# usage: bench/runtime_int8.sh [OUT_DIR=$TMPDIR/shrink_runtime_int8] (models, logits, JSON land there)
# env:   SHRINK (default target/release/shrink), SHRINK_SHARED (/work/shared), ROUNDS (5),
#        ITERS (20), THREADS (2), SKIP_ACCURACY (1: latency only)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-${TMPDIR:-/tmp}/shrink_runtime_int8}
shrink=${SHRINK:-$here/../target/release/shrink}
shared=${SHRINK_SHARED:-/work/shared}
cifar=$shared/data/cifar10-jpeg.tar.gz
mnist=$here/../data/mnist
rounds=${ROUNDS:-5}
iters=${ITERS:-20}
export RAYON_NUM_THREADS=${THREADS:-2}
[ -x "$shrink" ] || { echo "$shrink: not built (cargo build --release -p shrink-cli)" >&2; exit 1; }
mkdir -p "$out"

# 1. Models.
[ -f "$out/sd.safetensors" ] ||
  "$shrink" train --arch simple-dnn --data "$mnist" --epochs 1 --seed 0 -o "$out/sd.safetensors"
"$shrink" export "$out/sd.safetensors" --format shrink --force -o "$out/sd-fp32.shrink" 2>/dev/null
"$shrink" export "$out/sd.safetensors" --format shrink --int8 --calib "$mnist" --force -o "$out/sd-int8.shrink" 2>/dev/null
r20=$shared/models/resnet20-cifar10.onnx
"$shrink" export "$r20" --format shrink --force -o "$out/r20-fp32.shrink" 2>/dev/null
"$shrink" export "$r20" --format shrink --int8 --calib "$cifar" --force -o "$out/r20-int8.shrink" 2>/dev/null
"$shrink" export "$r20" --format onnx --int8 --calib "$cifar" --force -o "$out/r20-int8.onnx"
ls -l "$out"/*.shrink >&2

# 2. Latency, fp32 and int8 alternating.
bench() { # NAME BATCHES
  for r in $(seq 1 "$rounds"); do
    for p in fp32 int8; do
      "$shrink" bench "$out/$1-$p.shrink" --batch "$2" --iters "$iters" --json > "$out/bench.$1.$p.$r.json"
      echo "round $r $1 $p: $(jq -c '[.results[] | {batch, median_ms}]' "$out/bench.$1.$p.$r.json")" >&2
    done
  done
  echo "$1: medians over $rounds rounds of the per-round medians ($RAYON_NUM_THREADS threads)"
  printf '%6s %10s %10s %10s\n' batch fp32_ms int8_ms fp32/int8
  for b in ${2//,/ }; do
    f=$(jq -s "[.[].results[] | select(.batch == $b) | .median_ms] | sort | .[length/2|floor]" "$out"/bench."$1".fp32.*.json)
    i=$(jq -s "[.[].results[] | select(.batch == $b) | .median_ms] | sort | .[length/2|floor]" "$out"/bench."$1".int8.*.json)
    awk -v b="$b" -v f="$f" -v i="$i" 'BEGIN { printf "%6s %10.3f %10.3f %10.2f\n", b, f, i, f / i }'
  done
  for p in fp32 int8; do
    "$shrink" bench "$out/$1-$p.shrink" --batch "$2" --iters "$iters" --per-layer | sed -n '/slowest/,$p' | head -40
  done
}
bench sd 1,64
bench r20 1,128

# 3. Accuracy (ResNet-20, CIFAR-10 test split).
[ "${SKIP_ACCURACY:-0}" = 1 ] && exit 0
for p in fp32 int8; do
  "$shrink" run "$out/r20-$p.shrink" --data "$cifar" --json --logits "$out/r20-$p.npy" | tee "$out/run.$p.json"
done
"$shrink" eval "$out/r20-int8.onnx" --engine graph --data "$cifar" --json --logits "$out/r20-ref.npy" | tee "$out/eval.ref.json"
echo "int8 plan vs reference evaluator: $(python3 "$here/npy_agree.py" "$out/r20-int8.npy" "$out/r20-ref.npy")"
echo "int8 plan vs fp32 plan:           $(python3 "$here/npy_agree.py" "$out/r20-int8.npy" "$out/r20-fp32.npy")"
