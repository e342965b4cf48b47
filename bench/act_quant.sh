#!/usr/bin/env bash
# Activation quantization grid: weights at WBITS (symmetric, per channel) plus activations at
# 8/6/4/3 bits with each calibration (min-max, 99.99th percentile, MSE), evaluated on the test
# split. Writes a Markdown table to stdout.
# Usage: bench/act_quant.sh MODEL DATA [extra eval/quantize flags, e.g. --mean ... --std ...]
# Build first: cargo build --release -p shrink-cli
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: bench/act_quant.sh MODEL DATA [flags]}
DATA=${2:?usage: bench/act_quant.sh MODEL DATA [flags]}
shift 2
WBITS=${WBITS:-8}
ABITS=${ABITS:-8 6 4 3}
OUT=${OUT:-runs/act-quant}
mkdir -p "$OUT"
SHRINK=target/release/shrink
pct() { python3 -c 'import json, sys; print("%.2f" % (100 * json.load(sys.stdin)["accuracy"]))'; }
fp32=$($SHRINK eval "$MODEL" --data "$DATA" --json "$@" | pct)
$SHRINK quantize "$MODEL" --scheme symmetric --bits "$WBITS" --per-channel -o "$OUT/w.safetensors" >/dev/null
wonly=$($SHRINK eval "$OUT/w.safetensors" --data "$DATA" --json "$@" | pct)
echo "fp32 $fp32 %, weights only (symmetric $WBITS-bit per channel) $wonly %"
echo
echo "| activation bits | minmax | p99.99 | mse |"
echo "|---|---|---|---|"
for ab in $ABITS; do
  row="| $ab |"
  for r in minmax p99.99 mse; do
    $SHRINK quantize "$MODEL" --scheme symmetric --bits "$WBITS" --per-channel --activations "$ab" \
      --act-range "$r" --data "$DATA" "$@" -o "$OUT/a$ab-$r.safetensors" >/dev/null
    a=$($SHRINK eval "$OUT/a$ab-$r.safetensors" --data "$DATA" --json "$@" | pct)
    row="$row $a |"
  done
  echo "$row"
done
