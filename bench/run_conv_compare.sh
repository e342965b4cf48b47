#!/usr/bin/env bash
# Side-by-side conv / ResNet-20 training-step benchmark: shrink (criterion bench
# crates/shrink-ir/benches/conv.rs) vs PyTorch (bench/conv_torch.py), same thread count.
#
#   bench/run_conv_compare.sh                 # 2 threads, best of 3 alternating runs each
#   THREADS=1 bench/run_conv_compare.sh       # single thread
#   REPEAT=5 bench/run_conv_compare.sh        # more alternating rounds
#   MALLOC_TUNED=1 bench/run_conv_compare.sh  # both processes with glibc malloc tunables that
#                                             # keep freed multi-MB tensors in the heap (no
#                                             # mmap/munmap + page-fault churn per tensor)
#
# Prints one line per benchmark with both throughputs and the ratio ours / PyTorch (> 1: we
# are faster). Each side reports its best round: on a shared machine a busy neighbour slows
# whichever process runs at that moment (PyTorch's OpenMP barriers suffer most), so the best
# round is the closest to the uncontended figure. Check `uptime` / `top` first anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
REPEAT=${REPEAT:-3}
PY=${PYTHON:-/work/venv/bin/python}
export RAYON_NUM_THREADS=$THREADS CANDLE_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
if [[ "${MALLOC_TUNED:-0}" == "1" ]]; then
    export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=2147483647
fi

echo "building the Rust benches ..." >&2
cargo bench -p shrink-ir --bench conv --no-run >/dev/null 2>&1
rust_out=""
torch_out=""
for round in $(seq "$REPEAT"); do
    echo "round $round/$REPEAT (threads=$THREADS${GLIBC_TUNABLES:+, malloc tuned}): shrink ..." >&2
    # one process per benchmark: the recycling allocator's table is per process, and buffers
    # left by the batch-256 conv benches would otherwise crowd out the ResNet ones
    for filter in 'conv/fwd$' 'conv/fwd_bwd$' 'resnet20/'; do
        rust_out+=$(cargo bench -p shrink-ir --bench conv -- --output-format bencher "$filter" 2>/dev/null |
            grep '^test ' || true)$'\n'
    done
    echo "round $round/$REPEAT: PyTorch ..." >&2
    torch_out+=$("$PY" bench/conv_torch.py --threads "$THREADS")$'\n'
done

RUST_OUT="$rust_out" TORCH_OUT="$torch_out" python3 - <<'EOF'
import os, re

flops = 2.0 * 256 * 16 * 32 * 32 * 16 * 9  # conv forward FLOPs, batch 256, 16->16, 3x3, 32x32
rust, torch = {}, {}
for line in os.environ["RUST_OUT"].splitlines():
    m = re.match(r"test (\S+)\s+\.\.\. bench:\s+([\d,]+) ns/iter", line)
    if m:
        t = int(m.group(2).replace(",", "")) * 1e-9
        rust.setdefault(m.group(1), []).append(t)
for line in os.environ["TORCH_OUT"].splitlines():
    m = re.match(r"(\S+) [\d.]+ \S+ \(([\d.]+) ms\)", line)
    if m:
        torch.setdefault(m.group(1), []).append(float(m.group(2)) * 1e-3)

rows = [
    ("conv fwd (b256 16->16 3x3 32x32)", "conv/fwd", "conv_fwd", flops / 1e9, "GFLOP/s"),
    ("conv fwd+bwd (same)", "conv/fwd_bwd", "conv_fwd_bwd", 3 * flops / 1e9, "GFLOP/s"),
    ("ResNet-20 train step (b128)", "resnet20/train_step_b128", "resnet20", 128.0, "samples/s"),
]
print(f"{'benchmark (best round)':36} {'shrink':>18} {'PyTorch':>18} {'ratio':>7}   all rounds ms: shrink | PyTorch")
for name, rk, tk, work, unit in rows:
    if rk not in rust or tk not in torch:
        print(f"{name:36} {'missing':>18}")
        continue
    ours, ref = work / min(rust[rk]), work / min(torch[tk])
    rounds = " ".join(f"{t * 1e3:.1f}" for t in rust[rk]) + " | " + " ".join(f"{t * 1e3:.1f}" for t in torch[tk])
    print(f"{name:36} {ours:9.1f} {unit:>8} {ref:9.1f} {unit:>8} {ours / ref:6.2f}x   {rounds}")
EOF
