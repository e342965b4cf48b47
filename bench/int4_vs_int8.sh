#!/usr/bin/env bash
# Issue 22, int4 target: `shrink bench` of the int8 and int4 simple-dnn deploy files in turn,
# round after round (each timing command through $WRAP, e.g. WRAP=/work/bin/quiet); prints every
# round's medians, the medians over rounds and int8 / int4.
#
# usage: bench/int4_vs_int8.sh INT8_FILE INT4_FILE [BATCHES=1]
# env:   SHRINK (target/release/shrink; a list separated by ':' benches several binaries),
#        PYTHON (/work/venv/bin/python, for the table), ROUNDS (5), ITERS (300), WRAP (none)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
f8=${1:?usage: bench/int4_vs_int8.sh INT8_FILE INT4_FILE [BATCHES]}
f4=${2:?usage: bench/int4_vs_int8.sh INT8_FILE INT4_FILE [BATCHES]}
batches=${3:-1}
PY=${PYTHON:-/work/venv/bin/python}
rounds=${ROUNDS:-5}
iters=${ITERS:-300}
IFS=: read -r -a bins <<<"${SHRINK:-$root/target/release/shrink}"
wrap=()
[ -n "${WRAP:-}" ] && wrap=("$WRAP")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq "$rounds"); do
  for i in "${!bins[@]}"; do
    for v in int8 int4; do
      f=$f8
      [ $v = int4 ] && f=$f4
      RAYON_NUM_THREADS=2 "${wrap[@]}" "${bins[$i]}" bench "$f" --batch "$batches" --iters "$iters" \
        --json >"$out/$v.$i.$r.json"
    done
  done
done
"$PY" - "$out" "$rounds" "${bins[@]}" <<'PY'
import json, statistics, sys
out, rounds, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("| binary | batch | int8 per-round medians (ms) | int4 per-round medians (ms) | int8 | int4 | int8 / int4 |")
print("|---|---:|---|---|---:|---:|---:|")
for i, b in enumerate(bins):
    med = {}
    for v in ("int8", "int4"):
        for r in range(1, rounds + 1):
            for res in json.load(open(f"{out}/{v}.{i}.{r}.json"))["results"]:
                med.setdefault((v, res["batch"]), []).append(res["median_ms"])
    for batch in sorted({k[1] for k in med}):
        a, c = med[("int8", batch)], med[("int4", batch)]
        ma, mc = statistics.median(a), statistics.median(c)
        fmt = lambda v: ", ".join(f"{x:.3f}" for x in v)
        print(f"| {b} | {batch} | {fmt(a)} | {fmt(c)} | {ma:.3f} | {mc:.3f} | {ma / mc:.2f}x |")
PY
