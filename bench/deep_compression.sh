#!/usr/bin/env bash
# Deep Compression (Han et al., ICLR 2016) on MNIST: LeNet-300-100, the paper's LeNet-5 (zoo
# `lenet5-caffe`, Caffe's 431K-parameter LeNet) or the labs' LeNet-5 (zoo `lenet5`, 61.7K):
# train → gradual magnitude pruning with masked retraining (a cubic ramp to the final per-layer
# sparsities, then a long retraining at a lower rate) → k-means weight sharing (linear init, one
# code kept for the zeros; per-layer bits) → optional centroid fine-tuning (`train
# --share-weights`), each retraining optionally distilled from the dense model (KD=1) → deploy
# file with sparse relative indices, codebook indices and canonical Huffman coding, plain and
# compact (deflated header, packed payloads). Prints the per-stage
# size table (whole files: header and biases included), the paper's ratio (weights, indices and
# codebooks only) and checks that `shrink run` on the deploy file predicts like the model it
# came from.
#
# usage: bench/deep_compression.sh [OUTDIR] [FINAL] [BITS]
#   FINAL  per-layer final sparsities `layer=P,...` (for lenet-300-100 also `P1,P2,P3`: fc1,fc2,fc3)
#   BITS   codebook bits: `B` or `B:layer=b,...` (per-layer overrides)
# env (defaults for lenet-300-100 / lenet5):
#   ARCH          lenet-300-100 | lenet5-caffe | lenet5
#                 (lenet5-caffe: the paper's Table 4, conv1/conv2/fc1/fc2 kept 66/12/8/19 %,
#                 8-bit conv and 5-bit fc codebooks)
#   DENSE_EPOCHS  20; a dense model already in OUTDIR/dense.safetensors is reused
#   STEPS         5 gradual pruning steps (s_k = s_final·(1 − (1 − k/STEPS)³)), each
#   STEP_EPOCHS   4 epochs at STEP_LR 0.02 (cosine), then
#   FINAL_EPOCHS  20 epochs at FINAL_LR 0.005 at the final sparsity
#   FT_EPOCHS     0 epochs of centroid fine-tuning at FT_LR 1e-4 (0: none)
#   KD            0; 1: every retraining distils from the dense model (`--teacher`, KD_ALPHA 0.9,
#                 KD_TEMP 4)
#   REUSE_PRUNED  0; 1: an OUTDIR/pruned.safetensors of an earlier run is shared again (no pruning)
#   SHRINK        the binary (default target/release/shrink)
# Build first: cargo build --release -p shrink-cli. LeNet-300-100 takes ~3 min on 2 quiet
# cores, LeNet-5 ~10 min, lenet5-caffe ~1 min per epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
S=${SHRINK:-target/release/shrink}
D=data/mnist
ARCH=${ARCH:-lenet-300-100}
case $ARCH in
  lenet-300-100) def_final=fc1=0.92,fc2=0.91,fc3=0.74; def_bits=5 ;;
  lenet5) def_final=conv1=0.5,conv2=0.8,fc1=0.95,fc2=0.9,fc3=0.7; def_bits=5 ;;
  lenet5-caffe) def_final=conv1=0.34,conv2=0.88,fc1=0.92,fc2=0.81; def_bits=5:conv1=8,conv2=8 ;;
  *) echo "ARCH must be lenet-300-100, lenet5-caffe or lenet5, got $ARCH" >&2; exit 1 ;;
esac
O=${1:-runs/deep-compression-$ARCH}
FINAL=${2:-$def_final}
BITS=${3:-$def_bits}
if [[ $FINAL != *=* ]]; then # the old form: fc1,fc2,fc3 of lenet-300-100
  IFS=, read -r f1 f2 f3 <<<"$FINAL"
  FINAL="fc1=$f1,fc2=$f2,fc3=$f3"
fi
STEPS=${STEPS:-5}
STEP_EPOCHS=${STEP_EPOCHS:-4}
STEP_LR=${STEP_LR:-0.02}
FINAL_EPOCHS=${FINAL_EPOCHS:-20}
FINAL_LR=${FINAL_LR:-0.005}
FT_EPOCHS=${FT_EPOCHS:-0}
FT_LR=${FT_LR:-1e-4}
KD=${KD:-0}
mkdir -p "$O"
py() { python3 -c "$@"; }
acc() { py "import json,sys; print(json.load(sys.stdin)['$1'])"; }
[ -f "$O/dense.safetensors" ] ||
  $S train --arch "$ARCH" --data $D --epochs "${DENSE_EPOCHS:-20}" -o "$O/dense.safetensors" --json 2>/dev/null >"$O/dense.json"
p="$O/dense.safetensors"
kd=()
[ "$KD" != 0 ] && kd=(--teacher "$O/dense.safetensors" --kd-alpha "${KD_ALPHA:-0.9}" --kd-temp "${KD_TEMP:-4}")
layers=$(py "print(','.join(x.split('=')[0] for x in '$FINAL'.split(',')))")
steps=$STEPS
# REUSE_PRUNED=1 keeps OUTDIR/pruned.safetensors (another BITS on the same pruned model).
[ "${REUSE_PRUNED:-0}" != 0 ] && [ -f "$O/pruned.safetensors" ] && steps=0
for k in $(seq 1 "$steps"); do
  spec=$(py "
k, n = $k, $STEPS
f = 1 - (1 - k / n) ** 3
print(','.join(f'{l}={float(s) * f:.4f}' for l, s in (x.split('=') for x in '$FINAL'.split(','))))")
  if [ "$k" = "$STEPS" ]; then ep=$FINAL_EPOCHS lr=$FINAL_LR; else ep=$STEP_EPOCHS lr=$STEP_LR; fi
  echo "prune step $k/$STEPS: $spec, $ep epochs at lr $lr" >&2
  $S prune "$p" --method magnitude --sparsity 0 --layer-sparsity "$spec" --layers "$layers" -o "$O/step.safetensors" --force >/dev/null 2>&1
  $S train --init "$O/step.safetensors" --data $D --epochs "$ep" --lr "$lr" "${kd[@]}" -o "$O/pruned.safetensors" --json 2>/dev/null >"$O/pruned.json"
  p="$O/pruned.safetensors"
done
bits=${BITS%%:*}
layer_bits=()
[[ $BITS == *:* ]] && layer_bits=(--layer-bits "${BITS#*:}")
$S share "$O/pruned.safetensors" --bits "$bits" "${layer_bits[@]}" -o "$O/shared.safetensors" --force 2>/dev/null
if [ "$FT_EPOCHS" != 0 ]; then
  $S train --init "$O/shared.safetensors" --share-weights --data $D --epochs "$FT_EPOCHS" --lr "$FT_LR" "${kd[@]}" \
    -o "$O/shared-ft.safetensors" --json 2>/dev/null >"$O/shared-ft.json"
  mv "$O/shared-ft.safetensors" "$O/shared.safetensors"
fi
ref=$(stat -c %s "$O/dense.safetensors")
dense_acc=$($S eval "$O/dense.safetensors" --data $D --json 2>/dev/null | acc accuracy)
echo "ARCH=$ARCH FINAL=$FINAL BITS=$BITS STEPS=$STEPS STEP_EPOCHS=$STEP_EPOCHS STEP_LR=$STEP_LR FINAL_EPOCHS=$FINAL_EPOCHS FINAL_LR=$FINAL_LR FT_EPOCHS=$FT_EPOCHS FT_LR=$FT_LR KD=$KD"
printf '| %-42s | %10s | %8s | %7s | %9s | %7s |\n' stage bytes header ratio accuracy Δ
printf '|%s|\n' "---|---:|---:|---:|---:|---:"
line() { # LABEL BYTES HEADER ACCURACY
  printf '| %-42s | %10s | %8s | %6.1fx | %8.2f%% | %+6.2f |\n' "$1" "$2" "$3" "$(py "print($ref/$2)")" \
    "$(py "print(100*$4)")" "$(py "print(100*($4-$dense_acc))")"
}
row() { # NAME MODEL ENCODINGS LABEL [--compact]
  local j; j=$($S export "$2" --format shrink --encodings "$3" ${5:-} -o "$O/$1.shrink" --force --json 2>/dev/null)
  echo "$j" >"$O/$1.json"
  local a; a=$($S run "$O/$1.shrink" --data $D --json 2>/dev/null | acc accuracy)
  line "$4" "$(acc file_bytes <<<"$j")" "$(acc header_bytes <<<"$j")" "$a"
}
line "fp32 safetensors file" "$ref" - "$dense_acc"
row dense "$O/dense.safetensors" raw "dense deploy file (raw f32)"
row pruned "$O/pruned.safetensors" sparse "pruned (relative indices, f32 values)"
row quantized "$O/shared.safetensors" sparse,codebook "+ weight sharing ($BITS bits)"
row huffman "$O/shared.safetensors" all "+ Huffman coding"
row compact "$O/shared.safetensors" all "+ compact header (deflated, packed)" --compact
py "
import json
t = [x for x in json.load(open('$O/compact.json'))['tensors'] if x['name'].endswith('.weight')]
raw, packed = sum(x['raw_bytes'] for x in t), sum(x['bytes'] for x in t)
print(f'paper ratio (weights, indices and codebooks only): {raw} B -> {packed} B = {raw / packed:.1f}x')"
$S eval "$O/shared.safetensors" --data $D --logits "$O/model.npy" >/dev/null 2>&1
$S run "$O/compact.shrink" --data $D --logits "$O/deploy.npy" >/dev/null 2>&1
python3 - "$O" <<'PY'
import struct, sys
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<H", b[8:10])[0]; h = b[10:10 + n].decode()
    shape = eval(h.split("'shape':")[1].split(")")[0] + ")")
    vals = struct.unpack(f"<{shape[0]*shape[1]}f", b[10 + n:])
    return [vals[i*shape[1]:(i+1)*shape[1]] for i in range(shape[0])]
a, b = load(sys.argv[1] + "/model.npy"), load(sys.argv[1] + "/deploy.npy")
same = sum(max(range(len(x)), key=x.__getitem__) == max(range(len(y)), key=y.__getitem__) for x, y in zip(a, b))
print(f"deploy file vs model: same prediction on {same}/{len(a)} test images")
PY
