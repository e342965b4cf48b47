#!/usr/bin/env python3
"""Row-wise argmax agreement of two logits files written by `shrink run/eval --logits` (NumPy
format 1.0, <f4, [N, C]); pure Python (no NumPy). Usage: npy_agree.py A.npy B.npy"""
import array, ast, struct, sys


def load(path):
    b = open(path, "rb").read()
    assert b[:6] == b"\x93NUMPY", f"{path}: not a .npy file"
    n = struct.unpack("<H", b[8:10])[0]
    h = ast.literal_eval(b[10:10 + n].decode())
    assert h["descr"] == "<f4" and not h["fortran_order"], f"{path}: {h}"
    rows, cols = h["shape"]
    a = array.array("f")
    a.frombytes(b[10 + n:10 + n + 4 * rows * cols])
    return [max(range(cols), key=lambda c: a[r * cols + c]) for r in range(rows)]


a, b = load(sys.argv[1]), load(sys.argv[2])
assert len(a) == len(b), f"{len(a)} vs {len(b)} rows"
same = sum(x == y for x, y in zip(a, b))
print(f"{same}/{len(a)} same predictions ({100.0 * same / len(a):.2f} %)")
