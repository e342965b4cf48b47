#!/usr/bin/env python3
"""Counts the images whose pixels differ between shrink's JPEG decoder and Pillow's.

Usage:
  cargo run --release -p shrink-io --example jpeg_decode -- ARCHIVE.tar.gz 1 --dump /tmp/shrink_jpeg
  python bench/jpeg_pillow_diff.py ARCHIVE.tar.gz /tmp/shrink_jpeg

Pillow decodes each member named in OUT.txt with `Image.open(f).convert("RGB")` (mode "L" kept for
one-channel images), as torchvision's ImageFolder loader does.
"""

import io
import sys
import tarfile

import numpy as np
from PIL import Image


def main():
    archive, dump = sys.argv[1], sys.argv[2]
    members = {}
    with tarfile.open(archive) as tar:
        for m in tar:
            if m.isfile():
                members[m.name] = tar.extractfile(m).read()
    ours = open(dump + ".bin", "rb").read()
    offset = differ = total = 0
    worst = 0
    for line in open(dump + ".txt"):
        name, w, h, c = line.split()
        n = int(w) * int(h) * int(c)
        mine = np.frombuffer(ours, np.uint8, n, offset)
        offset += n
        im = Image.open(io.BytesIO(members[name]))
        im = im.convert("L") if c == "1" else im.convert("RGB")
        ref = np.asarray(im, np.uint8).reshape(-1)
        total += 1
        if ref.shape != mine.shape or (ref != mine).any():
            differ += 1
            if ref.shape == mine.shape:
                worst = max(worst, int(np.abs(ref.astype(int) - mine.astype(int)).max()))
    print(f"{differ} of {total} images differ from Pillow (largest difference {worst})")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
