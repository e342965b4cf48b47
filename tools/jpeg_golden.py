#!/usr/bin/env python3
"""Writes small JPEG fixtures and Pillow's decoded pixels for crates/shrink-io/tests/jpeg_pillow.rs.

Pillow decodes with libjpeg-turbo's defaults (accurate integer IDCT, fancy upsampling), which is
what torchvision reads images with; shrink's decoder must give the same bytes.

For each case NAME it writes `NAME.jpg` and `NAME.pixels` (the bytes of
`Image.open(NAME.jpg).convert("RGB")`, or of mode "L" for grayscale files, row-major, interleaved)
into crates/shrink-io/tests/fixtures/jpeg/, and lists `NAME WIDTH HEIGHT CHANNELS` in `cases.txt`;
plus `unsupported_cmyk_8x8.jpg`, which shrink must refuse with a one-line error.

Usage: /work/venv/bin/python tools/jpeg_golden.py
"""

import io
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "shrink-io", "tests", "fixtures", "jpeg")


def scene(w, h, seed, noise=24.0):
    """A deterministic colour image: gradients, a saturated disc and hard edges, plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 128 + 127 * np.sin((x + 2 * y) / 3.0)
    disc = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 3) ** 2
    r[disc], g[disc], b[disc] = 255, 0, 32
    stripe = (x.astype(int) // 3) % 2 == 0
    b[stripe & ~disc] = 0
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, noise, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def noise(w, h, seed):
    """Uniform noise over the full range: the largest coefficients and the most clamping."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def case(name, img, **save):
    buf = io.BytesIO()
    img.save(buf, "JPEG", **save)
    data = buf.getvalue()
    dec = Image.open(io.BytesIO(data))
    dec = dec.convert("L") if dec.mode == "L" else dec.convert("RGB")
    channels = 1 if dec.mode == "L" else 3
    with open(os.path.join(OUT, name + ".jpg"), "wb") as f:
        f.write(data)
    with open(os.path.join(OUT, name + ".pixels"), "wb") as f:
        f.write(dec.tobytes())
    return f"{name} {dec.width} {dec.height} {channels}"


def refactor(data, size, factors):
    """The JPEG `data` with its frame header saying `size` (w, h) and per-component sampling
    `factors` ((h, v), ...): Pillow cannot write 4:4:0 or 4:1:1, but a 4:2:2 (4:2:0) stream is a
    valid 4:4:0 (4:1:1) stream of another size with the same number of MCUs and blocks per MCU
    (the picture comes out scrambled, which does not matter here)."""
    at = data.index(b"\xff\xc0")
    out = bytearray(data)
    out[at + 5 : at + 9] = bytes([size[1] >> 8, size[1] & 255, size[0] >> 8, size[0] & 255])
    for i, (h, v) in enumerate(factors):
        out[at + 10 + 3 * i + 1] = h << 4 | v
    return bytes(out)


def raw_case(name, data):
    """Writes a given JPEG and Pillow's pixels for it."""
    dec = Image.open(io.BytesIO(data)).convert("RGB")
    with open(os.path.join(OUT, name + ".jpg"), "wb") as f:
        f.write(data)
    with open(os.path.join(OUT, name + ".pixels"), "wb") as f:
        f.write(dec.tobytes())
    return f"{name} {dec.width} {dec.height} 3"


def encoded(img, **save):
    buf = io.BytesIO()
    img.save(buf, "JPEG", **save)
    return buf.getvalue()


def main():
    os.makedirs(OUT, exist_ok=True)
    ss = {"444": 0, "422": 1, "420": 2}
    lines = []
    # CIFAR-like, and each subsampling at several qualities and odd sizes.
    lines.append(case("cifar_q75_420_32x32", scene(32, 32, 1), quality=75, subsampling=2))
    for q in (30, 75, 95):
        for s, v in ss.items():
            lines.append(case(f"q{q}_{s}_17x13", scene(17, 13, q + v), quality=q, subsampling=v))
    lines.append(case("q100_420_33x25", scene(33, 25, 7), quality=100, subsampling=2))
    lines.append(case("q90_422_40x9", scene(40, 9, 8), quality=90, subsampling=1))
    # Tiny sizes: chroma 1 or 2 samples wide/high (where libjpeg stops filtering).
    for w, h in ((1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 3), (3, 7), (9, 2)):
        for s in ("420", "422"):
            lines.append(case(f"tiny_{s}_{w}x{h}", scene(w, h, w * 10 + h), quality=85, subsampling=ss[s]))
    # 4:4:0 (chroma halved vertically only) and 4:1:1 (chroma a quarter wide), from re-labelled
    # 4:2:2 and 4:2:0 streams with the same MCU count (2 x 2 MCUs: 32x16 → 13x29, 32x32 → 61x13).
    s422 = encoded(scene(32, 16, 22), quality=80, subsampling=1)
    lines.append(raw_case("sampling_440_13x29", refactor(s422, (13, 29), [(1, 2), (1, 1), (1, 1)])))
    s420 = encoded(scene(32, 32, 23), quality=80, subsampling=2)
    lines.append(raw_case("sampling_411_61x13", refactor(s420, (61, 13), [(4, 1), (1, 1), (1, 1)])))
    # Grayscale.
    lines.append(case("gray_q85_19x11", scene(19, 11, 3).convert("L"), quality=85))
    lines.append(case("gray_q60_8x8", scene(8, 8, 4).convert("L"), quality=60))
    # Restart markers: every MCU, every MCU row.
    lines.append(case("restart_blocks_420_40x24", scene(40, 24, 5), quality=80, subsampling=2, restart_marker_blocks=1))
    lines.append(case("restart_rows_444_23x17", scene(23, 17, 6), quality=80, subsampling=0, restart_marker_rows=1))
    lines.append(case("restart_gray_21x19", scene(21, 19, 9).convert("L"), quality=70, restart_marker_blocks=2))
    # Optimized Huffman tables, RGB without colour transform (Adobe marker), extremes.
    lines.append(case("optimized_420_24x24", scene(24, 24, 10), quality=85, subsampling=2, optimize=True))
    lines.append(case("adobe_rgb_16x12", scene(16, 12, 11), quality=90, subsampling=0, keep_rgb=True))
    lines.append(case("noise_q100_420_16x16", noise(16, 16, 12), quality=100, subsampling=2))
    lines.append(case("noise_q1tables_444_16x16", noise(16, 16, 13), qtables=[[1] * 64, [1] * 64], subsampling=0))
    lines.append(case("noise_q5_420_16x16", noise(16, 16, 14), quality=5, subsampling=2))
    # Progressive.
    lines.append(case("progressive_420_32x32", scene(32, 32, 15), quality=75, subsampling=2, progressive=True))
    lines.append(case("progressive_444_17x13", scene(17, 13, 16), quality=90, subsampling=0, progressive=True))
    lines.append(case("progressive_422_29x21", scene(29, 21, 17), quality=60, subsampling=1, progressive=True))
    lines.append(case("progressive_gray_19x11", scene(19, 11, 18).convert("L"), quality=85, progressive=True))
    lines.append(
        case("progressive_restart_420_40x24", scene(40, 24, 19), quality=80, subsampling=2, progressive=True, restart_marker_blocks=3)
    )
    lines.append(case("progressive_noise_q100_16x16", noise(16, 16, 20), quality=100, subsampling=2, progressive=True))
    # Not decoded by shrink (a one-line "unsupported" error is expected): CMYK.
    buf = io.BytesIO()
    scene(8, 8, 21).convert("CMYK").save(buf, "JPEG", quality=90)
    with open(os.path.join(OUT, "unsupported_cmyk_8x8.jpg"), "wb") as f:
        f.write(buf.getvalue())
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("# name width height channels (written by tools/jpeg_golden.py)\n")
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} cases to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
