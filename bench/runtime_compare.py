#!/usr/bin/env python3
"""onnxruntime fp32 latency of an ONNX model, for side-by-side ratios with `shrink bench MODEL`.

Runs the model's first input at each batch size (intra_op_num_threads as given, 2 by default,
sequential execution, all graph optimizations), ITERS timed runs after WARMUP, and prints one
JSON object: {"impl", "model", "threads", "results": [{"batch", "median_ms", "min_ms", "iters"}]}
(the same shape as `shrink bench MODEL --json`).

usage: runtime_compare.py MODEL.onnx [--batch 1,64] [--iters 50] [--warmup 5] [--threads 2]
"""
import argparse
import json
import statistics
import time

import numpy as np
import onnxruntime as ort


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--batch", default="1,64")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    results = []
    for batch in [int(b) for b in a.batch.split(",")]:
        shape = [batch if (i == 0 and not isinstance(d, int)) else d for i, d in enumerate(inp.shape)]
        if any(not isinstance(d, int) for d in shape):
            raise SystemExit(f"{a.model}: input {inp.name} has symbolic dimensions besides the batch: {inp.shape}")
        n = int(np.prod(shape))
        # The same pattern as shrink bench's inputs.
        x = ((np.arange(n, dtype=np.int64) * 7919 % 1000).astype(np.float32) - 500.0) / 500.0
        feed = {inp.name: x.reshape(shape)}
        for _ in range(a.warmup):
            sess.run(None, feed)
        ms = []
        for _ in range(a.iters):
            t = time.perf_counter()
            sess.run(None, feed)
            ms.append(1e3 * (time.perf_counter() - t))
        results.append({"batch": batch, "median_ms": statistics.median(ms), "min_ms": min(ms), "iters": a.iters})
    print(json.dumps({"impl": f"onnxruntime {ort.__version__}", "model": a.model, "threads": a.threads,
                      "results": results}))


if __name__ == "__main__":
    main()
