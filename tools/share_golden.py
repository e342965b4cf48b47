"""Golden fixtures for Deep Compression weight sharing (crates/shrink-compress/tests/share_golden.rs).

1. 1-D k-means with linear initialization (Han et al. 2016 §3.1), Lloyd iterations until no
   centroid moves, ties to the lower centroid, an empty cluster keeps its centroid — NumPy.
2. The centroid gradient: a linear layer whose weights are `C[idx]` (0 where pruned), loss =
   cross-entropy; torch autograd gives dL/dC directly and dL/dW for the weights.

Writes share/kmeans.json and share/centroid_grad.json (small). Run once:
    /work/venv/bin/python tools/share_golden.py
"""
import json
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "crates/shrink-compress/tests/fixtures/share")


def kmeans_linear(values, k, max_iter=300):
    v = np.sort(values.astype(np.float32))
    c = np.array([v[0] + (v[-1] - v[0]) * i / (k - 1) for i in range(k)], dtype=np.float32)
    for _ in range(max_iter):
        mids = ((c[:-1].astype(np.float64) + c[1:].astype(np.float64)) / 2).astype(np.float32)
        a = np.searchsorted(mids, values, side="left")  # v <= mid -> lower centroid
        moved = False
        for j in range(k):
            m = values[a == j]
            if len(m):
                mean = np.float32(m.astype(np.float64).mean())
                if mean != c[j]:
                    c[j] = mean
                    moved = True
        if not moved:
            break
    mids = ((c[:-1].astype(np.float64) + c[1:].astype(np.float64)) / 2).astype(np.float32)
    return c, np.searchsorted(mids, values, side="left")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    cases = []
    for n, k in [(600, 8), (257, 16), (1200, 32), (40, 4)]:
        vals = (rng.standard_normal(n) * rng.uniform(0.01, 0.2)).astype(np.float32)
        c, a = kmeans_linear(vals, k)
        cases.append({"k": k, "values": vals.tolist(), "centroids": c.tolist(), "assignment": a.tolist()})
    json.dump(cases, open(os.path.join(OUT, "kmeans.json"), "w"))

    torch.manual_seed(0)
    out_f, in_f, k, n = 6, 10, 8, 16
    C = torch.randn(k) * 0.3
    idx = torch.randint(0, k, (out_f, in_f))
    keep = torch.rand(out_f, in_f) > 0.4
    Cp = C.clone().requires_grad_(True)
    W = torch.where(keep, Cp[idx], torch.zeros(()))
    W.retain_grad()
    b = torch.randn(out_f)
    x = torch.randn(n, in_f)
    y = torch.randint(0, out_f, (n,))
    loss = torch.nn.functional.cross_entropy(x @ W.t() + b, y)
    loss.backward()
    json.dump(
        {
            "centroids": C.tolist(),
            "index": [int(i) if kk else -1 for i, kk in zip(idx.flatten().tolist(), keep.flatten().tolist())],
            "weight_grad": W.grad.flatten().tolist(),
            "centroid_grad": Cp.grad.tolist(),
            "lr": 0.1,
            "centroids_after_sgd": (C - 0.1 * Cp.grad).tolist(),
        },
        open(os.path.join(OUT, "centroid_grad.json"), "w"),
    )


if __name__ == "__main__":
    main()
