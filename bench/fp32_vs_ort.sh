#!/usr/bin/env bash
# Issue 22, fp32 simple-dnn target: shrink's runtime plan against onnxruntime fp32 (2 intra-op
# threads), alternating in every round, each timing command run through $WRAP (e.g.
# WRAP=/work/bin/quiet); prints every round's medians and the medians over rounds.
#
# usage: bench/fp32_vs_ort.sh SHRINK_FILE ONNX_FILE [BATCHES=1,64]
# env:   SHRINK (target/release/shrink; a list separated by ':' benches several binaries),
#        PYTHON (/work/venv/bin/python), ROUNDS (3), ITERS (30), WRAP (none)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
file=${1:?usage: bench/fp32_vs_ort.sh SHRINK_FILE ONNX_FILE [BATCHES]}
onnx=${2:?usage: bench/fp32_vs_ort.sh SHRINK_FILE ONNX_FILE [BATCHES]}
batches=${3:-1,64}
PY=${PYTHON:-/work/venv/bin/python}
rounds=${ROUNDS:-3}
iters=${ITERS:-30}
IFS=: read -r -a bins <<<"${SHRINK:-$root/target/release/shrink}"
wrap=()
[ -n "${WRAP:-}" ] && wrap=("$WRAP")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq "$rounds"); do
  "${wrap[@]}" "$PY" "$here/runtime_sidebyside.py" measure ort "$onnx" --batch "$batches" \
    --iters "$iters" --threads 2 >"$out/ort.$r.json"
  for i in "${!bins[@]}"; do
    RAYON_NUM_THREADS=2 "${wrap[@]}" "${bins[$i]}" bench "$file" --batch "$batches" --iters "$iters" \
      --json >"$out/shrink$i.$r.json"
  done
done
"$PY" - "$out" "$rounds" "${bins[@]}" <<'PY'
import json, statistics, sys
out, rounds, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
names = ["onnxruntime fp32"] + [f"shrink {b}" for b in bins]
files = ["ort"] + [f"shrink{i}" for i in range(len(bins))]
med = {}
for name, f in zip(names, files):
    for r in range(1, rounds + 1):
        for res in json.load(open(f"{out}/{f}.{r}.json"))["results"]:
            med.setdefault((name, res["batch"]), []).append(res["median_ms"])
batches = sorted({b for _, b in med})
print("| variant | batch | per-round medians (ms) | median (ms) | onnxruntime / this |")
print("|---|---:|---|---:|---:|")
for b in batches:
    ort = statistics.median(med[(names[0], b)])
    for name in names:
        v = med[(name, b)]
        m = statistics.median(v)
        print(f"| {name} | {b} | {', '.join(f'{x:.3f}' for x in v)} | {m:.3f} | {ort / m:.2f}x |")
PY
