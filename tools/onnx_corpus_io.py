"""Reader of the safetensors files written by onnx_cases.write_safetensors."""
import json
import struct

import numpy as np


def load_safetensors(path):
    """Dict name -> np.ndarray (F32, I64, BOOL)."""
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        dt = {"F32": np.float32, "I64": np.int64, "BOOL": np.bool_}[v["dtype"]]
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(v["shape"])
    return out
