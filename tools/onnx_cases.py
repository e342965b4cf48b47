"""Shared writer of ONNX test cases for shrink's graph importer and runtime.

A case is `NAME.onnx` plus `NAME.io.safetensors` holding the inputs (`in.0`, `in.1`, ...) and
onnxruntime's outputs (`out.0`, ...) in graph order. The Rust side is
crates/shrink-io/tests/graph_support/mod.rs.
"""
import json
import os
import struct

import numpy as np
import onnx
import onnxruntime as ort

_DTYPES = {
    np.dtype("float32"): "F32",
    np.dtype("int64"): "I64",
    np.dtype("bool"): "BOOL",
    np.dtype("int8"): "I8",
    np.dtype("uint8"): "U8",
}


def write_safetensors(path, tensors):
    """Write a dict name -> np.ndarray (float32, int64, bool, int8 or uint8; int32 widens to int64) as safetensors."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.asarray(arr, order="C")  # keeps 0-d scalars 0-d (ascontiguousarray makes them 1-d)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        if arr.dtype == np.int32:
            arr = arr.astype(np.int64)
        data = arr.tobytes()
        header[name] = {"dtype": _DTYPES[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def save_case(out_dir, name, model, inputs):
    """Save `model` (onnx.ModelProto or bytes) and onnxruntime's outputs on `inputs` (list of arrays)."""
    os.makedirs(out_dir, exist_ok=True)
    if isinstance(model, (bytes, bytearray)):
        model = onnx.load_from_string(bytes(model))
    onnx.checker.check_model(model)
    onnx_path = os.path.join(out_dir, name + ".onnx")
    onnx.save(model, onnx_path)
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    assert len(names) == len(inputs), f"{name}: {len(names)} inputs, {len(inputs)} given"
    outs = sess.run(None, dict(zip(names, inputs)))
    tensors = {f"in.{k}": np.asarray(v) for k, v in enumerate(inputs)}
    tensors.update({f"out.{k}": np.asarray(v) for k, v in enumerate(outs)})
    write_safetensors(os.path.join(out_dir, name + ".io.safetensors"), tensors)
    return outs
