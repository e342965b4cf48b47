"""onnxruntime's outputs of the corpus models pruned by shrink (structured filter-ln, 30 %).

For each CNN and transformer of crates/shrink-io/tests/fixtures/graph_corpus, runs
`shrink prune M.onnx --engine graph --method filter-ln --sparsity 0.3`, loads the written ONNX in
onnxruntime, and stores its output on the case's input as
crates/shrink-compress/tests/fixtures/graph_pruned/NAME.io.safetensors (`in.0`, `out.0`), plus
the MACs before/after. crates/shrink-compress/tests/graph_prune.rs prunes the same way in Rust
and checks shrink-runtime's output of the pruned graph against these.

    cargo build --release -p shrink-cli && /work/venv/bin/python tools/onnx_corpus_pruned.py
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(__file__))
from onnx_cases import write_safetensors  # noqa: E402
from onnx_corpus_io import load_safetensors  # noqa: E402

CORPUS = "crates/shrink-io/tests/fixtures/graph_corpus"
OUT = "crates/shrink-compress/tests/fixtures/graph_pruned"
MODELS = ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "shufflenet_v2", "squeezenet1_1",
          "densenet_block", "resnext_block", "resnet18", "vit_tiny", "bert_tiny"]


def main():
    os.makedirs(OUT, exist_ok=True)
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        for m in MODELS:
            pruned = os.path.join(tmp, m + ".onnx")
            r = subprocess.run(["target/release/shrink", "prune", f"{CORPUS}/{m}.onnx", "--engine", "graph",
                                "--method", "filter-ln", "--sparsity", "0.3", "-o", pruned, "--json"],
                               check=True, capture_output=True, text=True)
            info = json.loads(r.stdout)
            io = load_safetensors(f"{CORPUS}/{m}.io.safetensors")
            sess = ort.InferenceSession(pruned, providers=["CPUExecutionProvider"])
            y = sess.run(None, {sess.get_inputs()[0].name: io["in.0"]})[0]
            write_safetensors(os.path.join(OUT, m + ".io.safetensors"), {"in.0": io["in.0"], "out.0": y})
            summary[m] = {k: info[k] for k in ("macs_before", "macs_after", "params_before", "params_after")}
            print(m, summary[m], "|dense - pruned| =", float(np.abs(io["out.0"] - y).max()))
    with open(os.path.join(OUT, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
