#!/usr/bin/env python3
"""Golden fixtures for the torch-semantics pruning options (run by hand; CI never runs Python):

    /work/venv/bin/python tools/golden_torch_prune.py

Writes crates/shrink-compress/tests/fixtures/torch_prune.json, read by
crates/shrink-compress/tests/torch_prune_golden.rs. Weights shaped like lenet5's conv1
([6, 1, 5, 5]) and fc3 ([10, 84]), seeded; masks from torch.nn.utils.prune:

  ln.<case>        prune.ln_structured(module, "weight", amount, n, dim) on conv1 or fc3,
                   `then` = a second ln_structured call on the same module (torch's container
                   applies it to the slices still kept)
  global.<k>       masks of conv1 and fc3 after k calls of
                   prune.global_unstructured([conv1, fc3], L1Unstructured, amount=0.3)
  naive.<n>.<p>    seed 002 naive channel pruning: keep int(round((1 - p) * n)) first channels
"""
import json
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/shrink-compress/tests/fixtures/torch_prune.json"


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def modules(seed):
    g = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(1, 6, 5)
    fc = nn.Linear(84, 10)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
        fc.weight.copy_(torch.randn(fc.weight.shape, generator=g))
    return conv, fc


def main():
    conv, fc = modules(0)
    weights = {"conv1.weight": flat(conv.weight), "fc3.weight": flat(fc.weight)}
    ln = {}
    for name, which, amount, n, dim, then in [
        ("conv_l2_filters", 0, 0.34, 2, 0, 0.5),
        ("conv_l1_filters", 0, 0.5, 1, 0, None),
        ("conv_linf_filters", 0, 0.3, float("inf"), 0, None),
        ("fc_l1_channels", 1, 0.4, 1, 1, 0.25),
        ("fc_l2_rows", 1, 0.3, 2, 0, None),
    ]:
        c, f = modules(0)
        m = (c, f)[which]
        prune.ln_structured(m, "weight", amount=amount, n=n, dim=dim)
        case = {"weight": ["conv1.weight", "fc3.weight"][which], "amount": amount,
                "n": "inf" if n == float("inf") else n, "dim": dim, "mask": flat(m.weight_mask)}
        if then is not None:
            prune.ln_structured(m, "weight", amount=then, n=n, dim=dim)
            case["then_amount"] = then
            case["then_mask"] = flat(m.weight_mask)
        ln[name] = case
    c, f = modules(0)
    glob = {}
    for k in range(1, 4):
        prune.global_unstructured([(c, "weight"), (f, "weight")], pruning_method=prune.L1Unstructured, amount=0.3)
        glob[str(k)] = {"conv1.weight": flat(c.weight_mask), "fc3.weight": flat(f.weight_mask)}
    naive = {f"{n}.{p}": int(round((1 - p) * n)) for n in [6, 9, 10, 16, 64] for p in [0.25, 0.3, 0.5, 0.7]}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"torch": torch.__version__, "weights": weights, "ln": ln,
                               "global_amount": 0.3, "global": glob, "naive": naive}) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
