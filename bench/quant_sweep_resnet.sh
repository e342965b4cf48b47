#!/usr/bin/env bash
# Issue 4 acceptance on the shared pretrained resnet20: `shrink sweep quant` against the PyTorch
# formulas (bench/quant_sweep_resnet_torch.py) — clip, symmetric and asymmetric, bits 3..8, range
# max (max|w| resp. [min, max]), per tensor, conv/linear weights only — on the CIFAR-10 JPEG test
# set with the models' normalization, same thread count, run one after the other.
#
# Both sides read the SAME pixels: the JPEG images are decoded once with Pillow into a CIFAR-10
# binary batch ($OUT/pil-bin/test_batch.bin) that shrink reads natively. With TAR_SWEEP=1 shrink
# also sweeps the .tar.gz directly (its own JPEG decoder, zune-jpeg) and that table is compared
# with the same torch cells, to show how much the decoder alone moves each cell.
#
# Usage: bench/quant_sweep_resnet.sh [MODEL] [PYTHON] [DATA]
#   MODEL  default $SHRINK_SHARED/models/resnet20-cifar10.safetensors (SHRINK_SHARED=../shared)
#   PYTHON needs torch, numpy, pillow, safetensors (e.g. /work/venv/bin/python)
#   DATA   default $SHRINK_SHARED/data/cifar10-jpeg.tar.gz
# Build first: cargo build --release -p shrink-cli. Output: $OUT (default runs/quant-sweep-resnet).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHRINK_SHARED:-../shared}
MODEL=${1:-$SHARED/models/resnet20-cifar10.safetensors}
PY=${2:-python3}
DATA=${3:-$SHARED/data/cifar10-jpeg.tar.gz}
THREADS=${THREADS:-2}
OUT=${OUT:-runs/quant-sweep-resnet}
METHODS=${METHODS:-clip,symmetric,asymmetric}
BITS=${BITS:-3,4,5,6,7,8}
NORM=(--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225)
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
SHRINK=target/release/shrink
TORCH=bench/quant_sweep_resnet_torch.py
mkdir -p "$OUT"
rm -f "$OUT/times.txt"
timed() { local label=$1; shift; /usr/bin/time -a -o "$OUT/times.txt" -f "$label: wall %e s, peak RSS %M KB" "$@"; }

# 1. Decode once with Pillow -> CIFAR binary batch (the pixels both sides evaluate).
$PY $TORCH "$MODEL" --data "$DATA" --write-bin "$OUT/pil-bin"
# 2. fp32 of shrink's own decoder on the archive (for the record).
$SHRINK eval "$MODEL" --data "$DATA" "${NORM[@]}" --json > "$OUT/shrink-fp32-tar.json"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
# 3. shrink's sweep on the Pillow pixels.
timed "shrink sweep quant (pillow pixels)" \
  $SHRINK sweep quant "$MODEL" --data "$OUT/pil-bin" "${NORM[@]}" --method "$METHODS" --bits "$BITS" \
  --range max --out-dir "$OUT/pil" --force > "$OUT/shrink-pil.md"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
# 4. The same grid in PyTorch on the same pixels, and the per-cell comparison.
timed "torch quant_sweep_resnet_torch.py (pillow pixels)" \
  $PY $TORCH "$MODEL" --data "$OUT/pil-bin" "${NORM[@]}" --method "$METHODS" --bits "$BITS" --q max \
  --threads "$THREADS" --json "$OUT/torch.json" --compare "$OUT/pil/table.json" --md "$OUT/compare.md" \
  2> "$OUT/torch-stderr.log" | tee "$OUT/torch-stdout.md"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
# 5. Optional: shrink on the archive itself (zune-jpeg) against the same torch cells.
if [[ "${TAR_SWEEP:-0}" == 1 ]]; then
  timed "shrink sweep quant (tar.gz, own decoder)" \
    $SHRINK sweep quant "$MODEL" --data "$DATA" "${NORM[@]}" --method "$METHODS" --bits "$BITS" \
    --range max --out-dir "$OUT/tar" --force > "$OUT/shrink-tar.md"
  $PY $TORCH --results "$OUT/torch.json" --compare "$OUT/tar/table.json" --md "$OUT/compare-tar.md"
fi
cat "$OUT/times.txt"
