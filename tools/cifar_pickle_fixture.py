#!/usr/bin/env python3
"""Writes small CIFAR-10 python batches (20 images each) for shrink-io's pickle-reader tests.

    tools/cifar_pickle_fixture.py [OUT=crates/shrink-io/tests/fixtures/cifar-py/cifar-10-batches-py]

- `data_batch_1`: the dict as Python 3 writes it, `pickle.dump(d, f, protocol=2)` (bytes keys,
  a numpy uint8 20×3072 array, whose bytes pickle as `_codecs.encode(str, 'latin1')`);
- `test_batch`: the same dict byte for byte in the layout of the real CIFAR-10 files, which
  Python 2's cPickle wrote (protocol 2: BINSTRING payload, BINPUT after every object, APPENDS
  in one MARK), checked to unpickle to the same values.

Image i, byte j is (31·i + 7·j + 3·split) mod 256; label i is (3·i + split) mod 10 (split 0
train, 1 test).
"""
import io
import os
import pickle
import struct
import sys

import numpy as np

N = 20


def content(split):
    i = np.arange(N, dtype=np.int64)[:, None]
    j = np.arange(3072, dtype=np.int64)[None, :]
    data = ((31 * i + 7 * j + 3 * split) % 256).astype(np.uint8)
    labels = [int((3 * k + split) % 10) for k in range(N)]
    names = [f"img_{split}_{k:04d}.png".encode() for k in range(N)]
    return data, labels, names


class Py2:
    """Emits pickle opcodes the way Python 2's cPickle does for the CIFAR dict."""

    def __init__(self):
        self.b = io.BytesIO()
        self.memo = 0

    def w(self, x):
        self.b.write(x)

    def put(self):
        self.memo += 1
        self.w(b"q" + bytes([self.memo]))

    def string(self, s):
        if len(s) < 256:
            self.w(b"U" + bytes([len(s)]) + s)
        else:
            self.w(b"T" + struct.pack("<I", len(s)) + s)
        self.put()

    def int(self, v):
        if 0 <= v < 256:
            self.w(b"K" + bytes([v]))
        elif 0 <= v < 65536:
            self.w(b"M" + struct.pack("<H", v))
        else:
            self.w(b"J" + struct.pack("<i", v))


def py2_batch(label, data, labels, names):
    p = Py2()
    p.w(b"\x80\x02}")
    p.put()
    p.w(b"(")
    p.string(b"batch_label")
    p.string(label)
    p.string(b"data")
    p.w(b"cnumpy.core.multiarray\n_reconstruct\n")
    p.put()
    p.w(b"cnumpy\nndarray\n")
    p.put()
    p.w(b"K\x00\x85")
    p.string(b"b")
    p.w(b"\x87R")
    p.put()
    p.w(b"(K\x01")
    p.int(data.shape[0])
    p.int(data.shape[1])
    p.w(b"\x86")
    p.put()
    p.w(b"cnumpy\ndtype\n")
    p.put()
    p.string(b"u1")
    p.w(b"K\x00K\x01\x87R")
    p.put()
    p.w(b"(K\x03")
    p.string(b"|")
    p.w(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89")
    p.string(data.tobytes())
    p.w(b"tb")
    p.string(b"labels")
    p.w(b"]")
    p.put()
    p.w(b"(")
    for v in labels:
        p.int(v)
    p.w(b"e")
    p.string(b"filenames")
    p.w(b"]")
    p.put()
    p.w(b"(")
    for s in names:
        p.string(s)
    p.w(b"eu.")
    return p.b.getvalue()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "crates/shrink-io/tests/fixtures/cifar-py/cifar-10-batches-py"
    os.makedirs(out, exist_ok=True)
    data, labels, names = content(0)
    d = {b"batch_label": b"training batch 1 of 1", b"labels": labels, b"data": data, b"filenames": names}
    with open(os.path.join(out, "data_batch_1"), "wb") as f:
        pickle.dump(d, f, protocol=2)
    data, labels, names = content(1)
    raw = py2_batch(b"testing batch 1 of 1", data, labels, names)
    back = pickle.loads(raw, encoding="bytes")
    assert back[b"labels"] == labels and back[b"filenames"] == names
    assert back[b"data"].dtype == np.uint8 and (back[b"data"] == data).all()
    with open(os.path.join(out, "test_batch"), "wb") as f:
        f.write(raw)
    print(f"wrote {out}/data_batch_1 ({N} images, Python 3 pickle protocol 2) and {out}/test_batch "
          f"({N} images, Python 2 cPickle layout)")


if __name__ == "__main__":
    main()
