#!/usr/bin/env bash
# Deep Compression (Han et al., ICLR 2016) on LeNet-300-100 / the embedded MNIST:
# train → gradual magnitude pruning with masked retraining → k-means weight sharing (linear
# init, one code kept for the zeros) → deploy file with sparse relative indices, codebook
# indices and canonical Huffman coding. Prints the per-stage size table and checks that
# `shrink run` on the deploy file predicts like the model it came from.
# Usage: bench/deep_compression.sh [OUTDIR] [FINAL_SPARSITY fc1,fc2,fc3] [BITS]
#   defaults: runs/deep-compression 0.87,0.86,0.65 4   (the paper's rates: 0.92,0.91,0.74 5)
# Build first: cargo build --release -p shrink-cli. Takes ~10 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
S=target/release/shrink
D=data/mnist
O=${1:-runs/deep-compression}
FINAL=${2:-0.87,0.86,0.65}
BITS=${3:-4}
mkdir -p "$O"
acc() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
[ -f "$O/dense.safetensors" ] ||
  $S train --arch lenet-300-100 --data $D --epochs 20 -o "$O/dense.safetensors" --json 2>/dev/null >"$O/dense.json"
IFS=, read -r f1 f2 f3 <<<"$FINAL"
# Gradual pruning: 50 %, 75 %, 87 % (fc1; fc2 alike, fc3 less), 5 epochs each at lr 0.02 (cosine),
# then, when the final sparsity differs, one more step of 25 epochs.
steps=("0.5 0.5 0.3 5" "0.75 0.75 0.5 5" "0.87 0.86 0.65 5")
[ "$FINAL" = "0.87,0.86,0.65" ] || steps+=("$f1 $f2 $f3 25")
p="$O/dense.safetensors"
for step in "${steps[@]}"; do
  set -- $step
  $S prune "$p" --method magnitude --sparsity "$1" --layer-sparsity "fc2=$2,fc3=$3" -o "$O/step.safetensors" --force >/dev/null 2>&1
  $S train --init "$O/step.safetensors" --data $D --epochs "$4" --lr 0.02 -o "$O/pruned.safetensors" --json 2>/dev/null >"$O/pruned.json"
  p="$O/pruned.safetensors"
done
$S share "$O/pruned.safetensors" --bits "$BITS" -o "$O/shared.safetensors" --force 2>/dev/null
size() { $S export "$1" --format shrink --encodings "$2" -o "$3" --force --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['file_bytes'])"; }
ref=$(stat -c %s "$O/dense.safetensors")
printf '%-34s %10s %8s %9s\n' stage bytes ratio accuracy
row() {
  local bytes; bytes=$(size "$2" "$3" "$O/$1.shrink")
  local a; a=$($S run "$O/$1.shrink" --data $D --json 2>/dev/null | acc accuracy)
  printf '%-34s %10s %7.1fx %8.2f%%\n' "$4" "$bytes" "$(python3 -c "print($ref/$bytes)")" "$(python3 -c "print(100*$a)")"
}
printf '%-34s %10s %7.1fx %8.2f%%\n' "fp32 safetensors file" "$ref" 1 "$(python3 -c "print(100*$($S eval "$O/dense.safetensors" --data $D --json 2>/dev/null | acc accuracy))")"
row dense "$O/dense.safetensors" raw "dense deploy file (raw f32)"
row pruned "$O/pruned.safetensors" sparse "pruned (relative indices, f32)"
row quantized "$O/shared.safetensors" sparse,codebook "+ weight sharing ($BITS-bit codebook)"
row huffman "$O/shared.safetensors" all "+ Huffman coding"
$S eval "$O/shared.safetensors" --data $D --logits "$O/model.npy" >/dev/null 2>&1
$S run "$O/huffman.shrink" --data $D --logits "$O/deploy.npy" >/dev/null 2>&1
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
