#!/usr/bin/env bash
# Side-by-side: `shrink sweep quant` and bench/quant_sweep_torch.py on the same exported weights,
# the same MNIST test set and the same grid (the MNIST lab's: clip, bits 2,4,8,12,16 x q
# 0.5..2 = 35 cells), same thread count; then a per-cell comparison into bench/results/quant_sweep.md.
# Usage: bench/quant_sweep.sh MODEL.safetensors [PYTHON]   (PYTHON needs torch + safetensors)
# Build first: cargo build --release -p shrink-cli
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: bench/quant_sweep.sh MODEL.safetensors [PYTHON]}
PY=${2:-python3}
THREADS=${THREADS:-2}
# Evaluation batch size, the same on both sides (shrink re-quantizes streamed weights per batch).
BATCH=${BATCH:-1000}
OUT=${OUT:-runs/quant-sweep}
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
mkdir -p "$OUT" bench/results
rm -f "$OUT/times.txt"
SHRINK=target/release/shrink
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Baked values (default) vs the fake-quant forward, one cell each.
/usr/bin/time -a -o "$OUT/times.txt" -f "shrink 1 cell fake-quant: wall %e s, peak RSS %M KB" \
  $SHRINK sweep quant "$MODEL" --data data/mnist --batch-size "$BATCH" --bits 8 --range 1 --fake-quant --out-dir "$OUT/fake-quant" --force >/dev/null
/usr/bin/time -a -o "$OUT/times.txt" -f "shrink 1 cell baked: wall %e s, peak RSS %M KB" \
  $SHRINK sweep quant "$MODEL" --data data/mnist --batch-size "$BATCH" --bits 8 --range 1 --out-dir "$OUT/baked" --force >/dev/null
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -a -o "$OUT/times.txt" -f "shrink sweep quant (35 cells): wall %e s, peak RSS %M KB" \
  $SHRINK sweep quant "$MODEL" --data data/mnist --batch-size "$BATCH" --out-dir "$OUT" --force > "$OUT/shrink-stdout.md"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -a -o "$OUT/times.txt" -f "torch quant_sweep_torch.py (35 cells): wall %e s, peak RSS %M KB" \
  $PY bench/quant_sweep_torch.py "$MODEL" --data data/mnist --threads "$THREADS" --batch-size "$BATCH" \
  --json "$OUT/torch.json" --compare "$OUT/table.json" --md "$OUT/compare.md" 2>"$OUT/torch-stderr.log" \
  | tee "$OUT/torch-stdout.md"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$OUT/times.txt"
