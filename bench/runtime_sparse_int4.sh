#!/usr/bin/env bash
# simple-dnn through the compiled runtime plan in every representation (issue 22: sparse and
# int4 in the plan): dense fp32, 90 %-sparse (magnitude-pruned, deploy file with sparse
# encoding) on CSR and on 1×4 blocks, int8 QDQ, int4 weight-only (W4A8 and f32-activation
# kernels). The variants run in turn, round after round (a loaded machine slows all alike);
# prints each variant's median of the per-round medians per batch size (ms).
#
# usage: bench/runtime_sparse_int4.sh MODEL.safetensors [BATCHES=1,64]
# env:   SHRINK (default target/release/shrink), DATA (data/mnist), ROUNDS (5), ITERS (30),
#        THREADS (2), PYTHON (with numpy, for the agreement figures; /work/venv/bin/python), WORK (a directory for the exported files; default a temp dir)
# Agreement on MNIST test (shrink run --logits), written to WORK/agreement.txt:
#   int4 (W4A8) vs the f32-activation int4 kernel, int4 vs the f32 model, sparse vs the masked model.
set -euo pipefail
model=${1:?usage: $0 MODEL.safetensors [BATCHES]}
batches=${2:-1,64}
here=$(cd "$(dirname "$0")" && pwd)
shrink=${SHRINK:-$here/../target/release/shrink}
data=${DATA:-$here/../data/mnist}
rounds=${ROUNDS:-5}
iters=${ITERS:-30}
threads=${THREADS:-2}
work=${WORK:-$(mktemp -d)}
python=${PYTHON:-/work/venv/bin/python}
mkdir -p "$work"
export RAYON_NUM_THREADS=$threads
S() { "$shrink" "$@"; }
S prune "$model" --method magnitude --sparsity 0.9 -o "$work/sparse90.safetensors" --force >/dev/null
S export "$model" --format shrink --encodings raw -o "$work/dense.shrink" --force 2>/dev/null
S export "$work/sparse90.safetensors" --format shrink -o "$work/sparse90.shrink" --force 2>/dev/null
S export "$model" --format shrink --int8 --calib "$data" -o "$work/int8.shrink" --force 2>/dev/null
S export "$model" --format shrink --int4 -o "$work/int4.shrink" --force 2>/dev/null
ls -l "$work"/*.shrink >&2
# variant name, file, forced kernel (empty: the plan's default choice)
variants=(
  "dense-fp32 dense.shrink -"
  "sparse90-default sparse90.shrink -"
  "sparse90-csr sparse90.shrink sparse-csr-f32"
  "sparse90-block1x4 sparse90.shrink sparse-block1x4-f32"
  "int8-qdq int8.shrink -"
  "int4-w4a8 int4.shrink int4-u8act"
  "int4-f32act int4.shrink int4-f32act"
)
for r in $(seq 1 "$rounds"); do
  for v in "${variants[@]}"; do
    read -r name file kern <<<"$v"
    k=$kern; [ "$k" = - ] && k=
    SHRINK_PLAN_KERNEL=$k S bench "$work/$file" --batch "$batches" --iters "$iters" --json > "$work/$name.$r.json"
    echo "round $r $name: $(cat "$work/$name.$r.json")" >&2
  done
done
python3 - "$work" "$rounds" "${variants[@]}" <<'PY'
import json, statistics, sys
work, rounds, variants = sys.argv[1], int(sys.argv[2]), [v.split()[0] for v in sys.argv[3:]]
res = {}
for v in variants:
    per = {}
    for r in range(1, rounds + 1):
        for row in json.load(open(f"{work}/{v}.{r}.json"))["results"]:
            per.setdefault(row["batch"], []).append(row["median_ms"])
    res[v] = {b: statistics.median(x) for b, x in per.items()}
batches = sorted(next(iter(res.values())))
print("| variant | " + " | ".join(f"batch {b} (ms)" for b in batches) + " | " + " | ".join(f"vs dense, batch {b}" for b in batches) + " |")
print("|---|" + "---:|" * (2 * len(batches)))
for v in variants:
    print(f"| {v} | " + " | ".join(f"{res[v][b]:.3f}" for b in batches) + " | " + " | ".join(f"{res['dense-fp32'][b] / res[v][b]:.2f}x" for b in batches) + " |")
PY
# Agreement on the MNIST test set.
S run "$work/int4.shrink" --data "$data" --logits "$work/int4_w4a8.npy" --json > "$work/run_int4.json"
SHRINK_PLAN_KERNEL=int4-f32act S run "$work/int4.shrink" --data "$data" --logits "$work/int4_f32act.npy" --json > "$work/run_int4_f32act.json"
S run "$model" --data "$data" --logits "$work/fp32.npy" --json > "$work/run_fp32.json"
S run "$work/sparse90.shrink" --data "$data" --logits "$work/sparse_plan.npy" --json > "$work/run_sparse.json"
S eval "$work/sparse90.safetensors" --data "$data" --logits "$work/sparse_masked.npy" --json > "$work/eval_sparse.json"
"$python" - "$work" <<'PY' | tee "$work/agreement.txt"
import sys
import numpy as np
w = sys.argv[1]
def load(n): return np.load(f"{w}/{n}.npy")
def cmp(a, b, what):
    x, y = load(a), load(b)
    agree = (x.argmax(1) == y.argmax(1)).mean()
    print(f"{what}: same prediction on {100 * agree:.2f} % of {len(x)} images, max |logit diff| {np.abs(x - y).max():.3g}")
cmp("int4_w4a8", "int4_f32act", "int4 W4A8 vs int4 f32-activation reference")
cmp("int4_w4a8", "fp32", "int4 W4A8 vs f32 model")
cmp("int4_f32act", "fp32", "int4 f32-activation vs f32 model")
cmp("sparse_plan", "sparse_masked", "90 %-sparse plan vs masked model (shrink eval)")
PY
for f in run_fp32 run_int4 run_int4_f32act run_sparse eval_sparse; do echo "$f: $(cat "$work/$f.json")"; done
