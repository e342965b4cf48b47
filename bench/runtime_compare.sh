#!/usr/bin/env bash
# Side by side: shrink's compiled runtime plan (`shrink bench MODEL`) against onnxruntime fp32
# (bench/runtime_compare.py) on the same ONNX model, same batch sizes, same thread count,
# alternating ROUNDS times; prints every round, then the medians and ratios (ort / shrink:
# above 1 means shrink is faster). Builds nothing.
#
# usage: bench/runtime_compare.sh MODEL.onnx [BATCHES=1,64]
# env:   SHRINK (default target/release/shrink), PYTHON (default /work/venv/bin/python),
#        ROUNDS (5), ITERS (50), THREADS (2), TUNE (1: pass --tune to shrink)
set -euo pipefail
model=${1:?usage: $0 MODEL.onnx [BATCHES]}
batches=${2:-1,64}
here=$(cd "$(dirname "$0")" && pwd)
shrink=${SHRINK:-$here/../target/release/shrink}
python=${PYTHON:-/work/venv/bin/python}
rounds=${ROUNDS:-5}
iters=${ITERS:-50}
threads=${THREADS:-2}
tune=()
[ "${TUNE:-1}" = 1 ] && tune=(--tune)
[ -x "$shrink" ] || { echo "$shrink: not built (cargo build --release -p shrink-cli)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq 1 "$rounds"); do
  RAYON_NUM_THREADS=$threads "$shrink" bench "$model" --batch "$batches" --iters "$iters" "${tune[@]}" --json > "$out/shrink.$r.json"
  OMP_NUM_THREADS=$threads "$python" "$here/runtime_compare.py" "$model" --batch "$batches" --iters "$iters" --threads "$threads" > "$out/ort.$r.json"
  echo "round $r: shrink $(cat "$out/shrink.$r.json")" >&2
  echo "round $r: ort    $(cat "$out/ort.$r.json")" >&2
done
"$python" - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(impl):
    per = {}
    for r in range(1, rounds + 1):
        for row in json.load(open(f"{out}/{impl}.{r}.json"))["results"]:
            per.setdefault(row["batch"], []).append(row["median_ms"])
    return per
s, o = load("shrink"), load("ort")
print(f"{'batch':>6} {'shrink ms':>10} {'ort ms':>10} {'ort/shrink':>11}")
for b in sorted(s):
    ms, mo = statistics.median(s[b]), statistics.median(o[b])
    print(f"{b:>6} {ms:>10.3f} {mo:>10.3f} {mo / ms:>11.2f}")
PY
