#!/bin/bash
# A quantization sweep split over a Slurm job array, then merged.
#
# Submit from the repository root on a cluster whose nodes share this directory:
#
#     N=8 deploy/slurm-sweep.sh MODEL.safetensors DATA_DIR
#
# It submits itself twice: an array of N tasks (task I runs `shrink sweep quant ... --shard I/N
# --out-dir runs/shard-I`) and a merge job that starts when every task has succeeded
# (`--dependency=afterok`) and writes the whole sweep's tables and figures to runs/sweep-quant.
# Shards are deterministic (cell k of the grid is shard k mod N's), so the merged tables equal
# a single-machine run's. A failed or preempted task is resumed by re-submitting it
# (`sbatch --array=I ...`): its --out-dir journal keeps the cells it finished.
# Edit SWEEP_FLAGS for the grid; every shard and the merge must see the same model and data paths.
#SBATCH --job-name=shrink-sweep
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=02:00:00
#SBATCH --output=runs/slurm-%x-%A_%a.out
set -euo pipefail

SHRINK=${SHRINK:-target/release/shrink}
SWEEP_FLAGS=${SWEEP_FLAGS:---method clip,symmetric,asymmetric --bits 2,4,8,12,16 --range 0.5,0.8,1,1.2,1.5,1.7,2}

case "${1:-}" in
--task) # One array task: shard $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_TASK_COUNT.
    shift
    I=$SLURM_ARRAY_TASK_ID
    N=$SLURM_ARRAY_TASK_COUNT
    # shellcheck disable=SC2086 # SWEEP_FLAGS is a list of flags
    exec "$SHRINK" sweep quant "$1" --data "$2" $SWEEP_FLAGS \
        --shard "$I/$N" --out-dir "runs/shard-$I"
    ;;
--merge) # After every task: the whole sweep from the N shard directories.
    shift
    N=$1
    dirs=()
    for ((i = 0; i < N; i++)); do dirs+=("runs/shard-$i"); done
    exec "$SHRINK" merge "${dirs[@]}" --out-dir runs/sweep-quant
    ;;
*) # Submit: the array (#SBATCH --array=0-(N-1)), then the merge depending on it.
    if [ $# -ne 2 ]; then
        echo "usage: N=8 $0 MODEL DATA_DIR" >&2
        exit 2
    fi
    N=${N:-4}
    mkdir -p runs
    array=$(sbatch --parsable --array="0-$((N - 1))" "$0" --task "$1" "$2")
    sbatch --dependency="afterok:$array" --job-name=shrink-merge "$0" --merge "$N"
    echo "submitted array job $array ($N shards) and its merge; results in runs/sweep-quant"
    ;;
esac
