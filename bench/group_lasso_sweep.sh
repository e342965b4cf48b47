#!/usr/bin/env bash
# Issue 6 trade-off curve: group-lasso (proximal) training of lenet-300-100 on MNIST over λ, then
# physical removal of the neurons driven to zero, and test accuracy before/after removal.
#   bench/group_lasso_sweep.sh [LAMBDAS...]      (default 0.0005 0.001 0.002 0.004 0.008 0.016)
# Writes runs/group-lasso/table.md; ~1 min per λ on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p shrink-cli
S=target/release/shrink
OUT=runs/group-lasso
mkdir -p "$OUT"
LAMBDAS=(0.0005 0.001 0.002 0.004 0.008 0.016)
if [ $# -gt 0 ]; then LAMBDAS=("$@"); fi
$S train --arch lenet-300-100 --data data/mnist --epochs 30 --seed 0 -o "$OUT/base.safetensors" --json > "$OUT/base.json" 2>/dev/null
base=$($S eval "$OUT/base.safetensors" --data data/mnist --json)
echo "| λ | fc1 neurons | fc2 neurons | hidden removed | params | acc. before removal | acc. after removal | Δ vs unregularized |" > "$OUT/table.md"
echo "|---|---|---|---|---|---|---|---|" >> "$OUT/table.md"
for lam in "${LAMBDAS[@]}"; do
  m="$OUT/gl-$lam"
  $S train --arch lenet-300-100 --data data/mnist --epochs 30 --seed 0 --sparsity group-lasso --proximal \
    --sparsity-lambda "$lam" -o "$m.safetensors" --json > "$m.json" 2>/dev/null
  $S prune "$m.safetensors" --method zero-groups -o "$m-pruned.safetensors" --json > "$m-prune.json"
  before=$($S eval "$m.safetensors" --data data/mnist --json)
  after=$($S eval "$m-pruned.safetensors" --data data/mnist --json)
  python3 - "$lam" "$base" "$before" "$after" "$m-prune.json" >> "$OUT/table.md" <<'PY'
import json, sys
lam, base, before, after = sys.argv[1], *(json.loads(a) for a in sys.argv[2:5])
units = {c["layer"]: c["units_after"] for c in json.load(open(sys.argv[5]))["removed_units"]}
f1, f2 = units.get("fc1", 300), units.get("fc2", 100)
print(f"| {lam} | {f1} | {f2} | {100 * (1 - (f1 + f2) / 400):.1f} % | {after['params']:,} | "
      f"{100 * before['accuracy']:.2f} % | {100 * after['accuracy']:.2f} % | "
      f"{100 * (after['accuracy'] - base['accuracy']):+.2f} pp |")
PY
done
cat "$OUT/table.md"
