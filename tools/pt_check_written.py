#!/usr/bin/env python3
"""Checks a .pt written by shrink (`shrink export --format pt`) with PyTorch itself.

Usage: /work/venv/bin/python tools/pt_check_written.py WRITTEN.pt REFERENCE.{pt,safetensors}

WRITTEN.pt must load with torch.load(..., weights_only=True) as an OrderedDict of contiguous
tensors whose keys and float values equal REFERENCE's exactly (num_batches_tracked only needs
to exist, as int64, for every BatchNorm). Exit status 0 when they agree.
"""
import collections
import sys
import zipfile

import torch


def load_ref(path):
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    for k in ("state_dict", "model_state_dict", "model"):
        if isinstance(sd, dict) and k in sd and isinstance(sd[k], dict):
            sd = sd[k]
    return {k.removeprefix("module."): v for k, v in sd.items()}


def main(written, reference):
    sd = torch.load(written, map_location="cpu", weights_only=True)
    problems = []
    if type(sd) is not collections.OrderedDict:
        problems.append(f"torch.load gives {type(sd).__name__}, not OrderedDict")
    ref = load_ref(reference)
    for k, v in ref.items():
        if k not in sd:
            if not k.endswith("num_batches_tracked"):
                problems.append(f"missing key {k}")
            continue
        w = sd[k]
        if k.endswith("num_batches_tracked"):
            if w.dtype != torch.int64 or w.dim() != 0:
                problems.append(f"{k}: {w.dtype} {tuple(w.shape)}, want int64 scalar")
            continue
        if tuple(w.shape) != tuple(v.shape):
            problems.append(f"{k}: shape {tuple(w.shape)} != {tuple(v.shape)}")
        elif not torch.equal(w.float().view(torch.int32), v.float().contiguous().view(torch.int32)):
            problems.append(f"{k}: values differ (max |d| {(w.float() - v.float()).abs().max().item()})")
        if not w.is_contiguous():
            problems.append(f"{k}: not contiguous")
    for k in sd:
        if k not in ref and not k.endswith("num_batches_tracked"):
            problems.append(f"extra key {k}")
    for k in [k for k in sd if k.endswith("running_var")]:
        if k.replace("running_var", "num_batches_tracked") not in sd:
            problems.append(f"no num_batches_tracked next to {k}")
    z = zipfile.ZipFile(written)
    for info in z.infolist():
        with open(written, "rb") as f:
            f.seek(info.header_offset + 26)
            n, e = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
        start = info.header_offset + 30 + n + e
        if info.compress_type != 0:
            problems.append(f"{info.filename}: compressed")
        if start % 64:
            problems.append(f"{info.filename}: data at {start}, not 64-byte aligned")
    for p in problems:
        print("FAIL", p)
    print(f"{written}: {len(sd)} tensors, {len(z.infolist())} records, "
          f"{'OK: matches ' + reference if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
