#!/usr/bin/env bash
# Prints a markdown table of criterion medians for one benchmark group:
# rows = benchmark parameter (shape), columns = function (implementation).
# Usage: bench/kernels_table.sh GROUP [CRITERION_DIR]   (GROUP: kernels | int8_gemm)
set -euo pipefail
group=${1:?usage: $0 GROUP [CRITERION_DIR]}
root=${2:-target/criterion}
dir="$root/$group"
[ -d "$dir" ] || { echo "$0: no criterion results in $dir (run the benchmark first)" >&2; exit 1; }
for f in "$dir"/*/*/new/estimates.json; do
  rel=${f#"$dir"/}
  func=${rel%%/*}
  rest=${rel#*/}
  param=${rest%%/*}
  med=$(grep -o '"median":{"confidence_interval":{[^}]*},"point_estimate":[0-9.eE+-]*' "$f" | sed 's/.*"point_estimate"://')
  printf '%s\t%s\t%s\n' "$param" "$func" "$med"
done | awk -F'\t' '
  function fmt(ns) { if (ns == "") return "–"; if (ns >= 1e6) return sprintf("%.2f ms", ns / 1e6); return sprintf("%.1f µs", ns / 1e3) }
  { if (!($2 in seen)) { seen[$2] = 1; funcs[++nf] = $2 }
    if (!($1 in pseen)) { pseen[$1] = 1; params[++np] = $1 }
    v[$1 SUBSEP $2] = $3 }
  END {
    line = "| shape |"; sep = "|---|"
    for (i = 1; i <= nf; i++) { line = line " " funcs[i] " |"; sep = sep "---:|" }
    print line; print sep
    for (j = 1; j <= np; j++) {
      line = "| " params[j] " |"
      for (i = 1; i <= nf; i++) line = line " " fmt(v[params[j] SUBSEP funcs[i]]) " |"
      print line
    }
  }'
