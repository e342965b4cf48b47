#!/usr/bin/env python3
"""Writes the golden .pt fixtures of crates/shrink-io/tests/pt_io.rs.

Run: /work/venv/bin/python tools/pt_golden.py   (torch 2.x, safetensors)

For every readable fixture NAME.pt, NAME.expected.safetensors holds the float32 tensors shrink
must read from it (keys as shrink reports them: nesting and `module.` prefixes removed; views
made contiguous; float16/bfloat16/float64/int64/bool converted with torch's `.float()`).
Files that must be rejected have no expected file; pt_io.rs checks their error messages.
"""
import collections
import os
import sys

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "shrink-io", "tests", "fixtures", "pt")


def expected(name, sd):
    save_file({k: v.detach().float().contiguous().clone() for k, v in sd.items()}, os.path.join(OUT, name + ".expected.safetensors"))


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 3, 3, bias=False)
        self.bn = torch.nn.BatchNorm2d(3)
        self.fc = torch.nn.Linear(3, 4)


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    m = Tiny()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
        m.bn.running_mean.copy_(torch.randn(3, generator=g))
        m.bn.running_var.copy_(torch.rand(3, generator=g) + 0.5)
        m.bn.num_batches_tracked.fill_(7)
    sd = m.state_dict()

    # 1. A plain state_dict (OrderedDict with _metadata), as torch.save(model.state_dict()).
    torch.save(sd, os.path.join(OUT, "plain.pt"))
    expected("plain", sd)

    # 2. A training checkpoint: the state_dict nested under "state_dict" with DataParallel's
    #    "module." prefix, next to an optimizer state (floats, lists, None, bools, nested dicts).
    dp = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    ckpt = {"epoch": 3, "best_acc": 91.25, "state_dict": dp, "optimizer": opt.state_dict(), "note": None}
    torch.save(ckpt, os.path.join(OUT, "nested.pt"))
    expected("nested", sd)

    # 3. Views: a transpose (non-contiguous), a slice with a storage offset, two tensors sharing
    #    one storage, a stride-0 expansion, a scalar and an empty tensor.
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7
    views = {
        "t": base.t(),
        "slice": base[1:3, 2:5],
        "row": base[2],
        "col": base[:, 3],
        "expand": torch.tensor([1.5, -2.0]).reshape(2, 1).expand(2, 3),
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 3),
    }
    torch.save(views, os.path.join(OUT, "views.pt"))
    expected("views", views)

    # 4. dtypes converted to float32.
    x = torch.randn(5, generator=g) * 100
    dtypes = {
        "f16": x.half(),
        "bf16": x.bfloat16(),
        "f64": x.double() / 3,
        "i64": torch.tensor([-3, 0, 7, 1 << 40]),
        "i32": torch.tensor([-5, 6], dtype=torch.int32),
        "u8": torch.tensor([0, 200], dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
    }
    torch.save(dtypes, os.path.join(OUT, "dtypes.pt"))
    expected("dtypes", dtypes)

    # 5. Pickle protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL).
    torch.save(sd, os.path.join(OUT, "proto4.pt"), pickle_protocol=4)
    expected("proto4", sd)

    # Rejected files.
    torch.save({"z": torch.ones(2, dtype=torch.complex64)}, os.path.join(OUT, "complex.pt"))
    torch.save(sd, os.path.join(OUT, "legacy.pt"), _use_new_zipfile_serialization=False)
    torch.save(torch.nn.Linear(1, 1), os.path.join(OUT, "module.pt"))

    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
