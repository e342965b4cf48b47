"""Malformed ONNX graphs for crates/shrink-cli/tests/cli_graph.rs: an op outside the IR, a cycle,
a dangling edge. Written without the checker (which refuses two of them on purpose)."""
import os

import onnx
from onnx import TensorProto, helper

OUT = "crates/shrink-cli/tests/fixtures/graph_bad"


def model(nodes, name):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 784])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 784])
    g = helper.make_graph(nodes, name, [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, os.path.join(OUT, name + ".onnx"))


os.makedirs(OUT, exist_ok=True)
model([helper.make_node("Relu", ["x"], ["a"], name="relu"),
       helper.make_node("Hardmax", ["a"], ["y"], name="the_hardmax")], "unknown_op")
model([helper.make_node("Add", ["x", "b"], ["a"], name="add_a"),
       helper.make_node("Relu", ["a"], ["b"], name="relu_b"),
       helper.make_node("Identity", ["a"], ["y"], name="out")], "cycle")
model([helper.make_node("Add", ["x", "ghost"], ["y"], name="add_ghost")], "dangling")
