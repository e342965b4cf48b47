#!/usr/bin/env bash
# Issue 22's side-by-side run: shrink's runtime against PyTorch and onnxruntime, in one run,
# alternating rounds, same thread count, medians; prints one markdown table with the ratios the
# issue asks for (target and ✓/✗ each).
#
#   simple-dnn (MNIST MLP 784→1568→3136→6272→10, zoo `--arch simple-dnn`), batch 1 and 64:
#     PyTorch fp32, PyTorch dynamic int8, PyTorch CSR (90 %-sparse weights), onnxruntime fp32,
#     onnxruntime int8 (shrink's QDQ ONNX; ORT's own quantize_dynamic / quantize_static for
#     reference), shrink fp32 / int8 / 90 %-sparse / int4 deploy files.
#   ResNet-20 (CIFAR-10, $SHRINK_SHARED/models/resnet20-cifar10.onnx), batch 1 and 128:
#     onnxruntime fp32, shrink's QDQ ONNX and ORT quantize_static; shrink fp32 / int8 deploy files.
#
# The models it makes (in WORK, kept between runs; delete WORK to rebuild them):
#   simple-dnn has FRESH (random-init) weights — only speed matters there (`shrink train
#   --epochs 0`); its 90 %-sparse variant is that model magnitude-pruned to 90 % per layer
#   (`shrink prune --method magnitude --sparsity 0.9`); int8 variants are calibrated on the
#   first 64 MNIST train images. ResNet-20 is the trained shared model; its int8 deploy file and
#   QDQ ONNX are calibrated on 4×64 CIFAR-10 train images, and ACCURACY=1 adds its fp32 / int8
#   test accuracy (`shrink run`, 10,000 images). A variant whose export fails (e.g. `--int4`
#   before that flag exists) is printed "n/a" with the reason in WORK/log.
#
# usage: bench/runtime_sidebyside.sh [WORK=runs/sidebyside]
# env:   SHRINK (target/release/shrink), PYTHON (/work/venv/bin/python), SHRINK_SHARED
#        (/work/shared), MNIST (data/mnist), CIFAR ($SHRINK_SHARED/data/cifar10-jpeg.tar.gz),
#        ROUNDS (3), ITERS (30), THREADS (2), TUNE (1: `shrink bench --tune`), ACCURACY (1)
# Builds nothing: cargo build --release -p shrink-cli first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
S=${SHRINK:-$root/target/release/shrink}
PY=${PYTHON:-/work/venv/bin/python}
shared=${SHRINK_SHARED:-/work/shared}
mnist=${MNIST:-$root/data/mnist}
cifar=${CIFAR:-$shared/data/cifar10-jpeg.tar.gz}
W=${1:-$root/runs/sidebyside}
rounds=${ROUNDS:-3}
iters=${ITERS:-30}
threads=${THREADS:-2}
tune=()
[ "${TUNE:-1}" = 1 ] && tune=(--tune)
[ -x "$S" ] || { echo "$S: not built (cargo build --release -p shrink-cli)" >&2; exit 1; }
r20=$shared/models/resnet20-cifar10.onnx
[ -f "$r20" ] || { echo "$r20: not found (set SHRINK_SHARED)" >&2; exit 1; }
mkdir -p "$W/t"
log=$W/log
: >"$log"
# mk OUT CMD...: runs CMD unless OUT exists; on failure OUT is left absent ("n/a").
mk() {
  local out=$1; shift
  [ -s "$out" ] && return 0
  echo "+ $*" >>"$log"
  "$@" >>"$log" 2>&1 || { echo "  failed: $out is n/a (see $log)" >&2; rm -f "$out"; }
}
echo "making models in $W ..." >&2
mk "$W/sd.safetensors" "$S" train --arch simple-dnn --data "$mnist" --epochs 0 -o "$W/sd.safetensors"
mk "$W/sd.onnx" "$S" export "$W/sd.safetensors" --format onnx -o "$W/sd.onnx"
mk "$W/sd-qdq.onnx" "$S" export "$W/sd.safetensors" --format onnx --int8 --calib "$mnist" -o "$W/sd-qdq.onnx"
mk "$W/sd-ortdyn.onnx" "$PY" "$here/runtime_sidebyside.py" ort-quant "$W/sd.onnx" \
  --dynamic "$W/sd-ortdyn.onnx" --static "$W/sd-ortstatic.onnx"
mk "$W/sd-fp32.shrink" "$S" export "$W/sd.safetensors" --format shrink --encodings raw -o "$W/sd-fp32.shrink"
mk "$W/sd-int8.shrink" "$S" export "$W/sd.safetensors" --format shrink --int8 --calib "$mnist" -o "$W/sd-int8.shrink"
mk "$W/sd-int4.shrink" "$S" export "$W/sd.safetensors" --format shrink --int4 -o "$W/sd-int4.shrink"
mk "$W/sd90.safetensors" "$S" prune "$W/sd.safetensors" --method magnitude --sparsity 0.9 -o "$W/sd90.safetensors"
mk "$W/sd90.onnx" "$S" export "$W/sd90.safetensors" --format onnx -o "$W/sd90.onnx"
mk "$W/sd90.shrink" "$S" export "$W/sd90.safetensors" --format shrink --encodings sparse -o "$W/sd90.shrink"
mk "$W/r20-qdq.onnx" "$S" export "$r20" --format onnx --int8 --calib "$cifar" --calib-batches 4 -o "$W/r20-qdq.onnx"
mk "$W/r20-ortdyn.onnx" "$PY" "$here/runtime_sidebyside.py" ort-quant "$r20" \
  --dynamic "$W/r20-ortdyn.onnx" --static "$W/r20-ortstatic.onnx"
mk "$W/r20-fp32.shrink" "$S" export "$r20" --format shrink --encodings raw -o "$W/r20-fp32.shrink"
mk "$W/r20-int8.shrink" "$S" export "$r20" --format shrink --int8 --calib "$cifar" --calib-batches 4 -o "$W/r20-int8.shrink"

if [ "${ACCURACY:-1}" = 1 ] && [ ! -s "$W/accuracy.txt" ]; then
  echo "ResNet-20 test accuracy (shrink run, 10,000 images) ..." >&2
  accs=()
  for v in fp32 int8; do
    a=n/a
    [ -f "$W/r20-$v.shrink" ] &&
      a=$("$S" run "$W/r20-$v.shrink" --data "$cifar" --json 2>>"$log" |
        "$PY" -c "import json,sys; print(f\"{100*json.load(sys.stdin)['accuracy']:.2f} %\")") || a=n/a
    accs+=("$a")
  done
  {
    echo "ResNet-20 test accuracy (shrink run on the deploy files): fp32 ${accs[0]}, int8 ${accs[1]}."
    "$PY" - "${accs[@]}" <<'PY'
import sys
try:
    f, i = (float(a.split()[0]) for a in sys.argv[1:3])
    d = i - f
    print(f"int8 − fp32 = {d:+.2f} pp (target ≥ −0.3 pp) {'✓' if d >= -0.3 else '✗'}")
except ValueError:
    print("int8 − fp32: n/a")
PY
  } >"$W/accuracy.txt"
fi

# bench STEM FILE BATCHES KIND (shrink | ort | torch-*): one measurement into $W/t/STEM.$r.json.
bench() {
  local stem=$1 file=$2 batches=$3 kind=$4 out=$W/t/$1.$r.json
  if [ ! -f "$file" ]; then echo n/a >"$out"; return; fi
  case $kind in
    shrink) RAYON_NUM_THREADS=$threads "$S" bench "$file" --batch "$batches" --iters "$iters" "${tune[@]}" --json ;;
    *) OMP_NUM_THREADS=$threads "$PY" "$here/runtime_sidebyside.py" measure "$kind" "$file" \
         --batch "$batches" --iters "$iters" --threads "$threads" ;;
  esac >"$out" 2>>"$log" || echo n/a >"$out"
}
rm -f "$W"/t/*.json
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds (load: $(cut -d' ' -f1-3 /proc/loadavg)) ..." >&2
  bench sd.torch-fp32 "$W/sd.onnx" 1,64 torch-fp32
  bench sd.shrink-fp32 "$W/sd-fp32.shrink" 1,64 shrink
  bench sd.torch-dyn-int8 "$W/sd.onnx" 1,64 torch-dyn-int8
  bench sd.shrink-int8 "$W/sd-int8.shrink" 1,64 shrink
  bench sd.ort-fp32 "$W/sd.onnx" 1,64 ort
  bench sd.shrink-sparse "$W/sd90.shrink" 1,64 shrink
  bench sd.ort-qdq "$W/sd-qdq.onnx" 1,64 ort
  bench sd.shrink-int4 "$W/sd-int4.shrink" 1,64 shrink
  bench sd.torch-csr "$W/sd90.onnx" 1,64 torch-csr
  bench sd.ort-dyn "$W/sd-ortdyn.onnx" 1,64 ort
  bench sd.ort-static "$W/sd-ortstatic.onnx" 1,64 ort
  bench r20.ort-fp32 "$r20" 1,128 ort
  bench r20.shrink-fp32 "$W/r20-fp32.shrink" 1,128 shrink
  bench r20.ort-qdq "$W/r20-qdq.onnx" 1,128 ort
  bench r20.shrink-int8 "$W/r20-int8.shrink" 1,128 shrink
  bench r20.ort-static "$W/r20-ortstatic.onnx" 1,128 ort
done
cp "$W/accuracy.txt" "$W/t/" 2>/dev/null || true
echo "$(nproc) cores, $threads threads each; load after the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$PY" "$here/runtime_sidebyside.py" table "$W/t"
