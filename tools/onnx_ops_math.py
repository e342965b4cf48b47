"""Single-op ONNX cases of the `math` family for shrink's graph importer and runtime.

Writes NAME.onnx + NAME.io.safetensors (onnxruntime's outputs) into
crates/shrink-io/tests/fixtures/graph_ops/math/, and models that must be refused (no outputs)
into its errors/ folder. Checked by crates/shrink-io/tests/graph_ops_math.rs.

Run: /work/venv/bin/python tools/onnx_ops_math.py
"""
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_cases import save_case  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "shrink-io", "tests", "fixtures", "graph_ops", "math")
ERR = os.path.join(OUT, "errors")

F, I, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
NP = {F: np.float32, I: np.int64, B: np.bool_}
rng = np.random.default_rng(20)


def rand(shape, dtype=F, lo=-3.0, hi=3.0):
    """Random values of an ONNX element type for a concrete shape."""
    if dtype == F:
        return np.asarray(rng.uniform(lo, hi, size=shape), dtype=np.float32)
    if dtype == I:
        return np.asarray(rng.integers(int(lo), int(hi) + 1, size=shape), dtype=np.int64)
    return np.asarray(rng.integers(0, 2, size=shape), dtype=np.bool_)


def concrete(shape, batch=2):
    return [batch if isinstance(d, str) else d for d in shape]


def model(nodes, inputs, outputs, opset, inits=()):
    """inputs/outputs: (name, elem_type, shape with "N" for a symbolic batch)."""
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        initializer=list(inits),
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="shrink-tests")
    m.ir_version = 8
    # Output shapes from ONNX shape inference (the cases declare only element types).
    try:
        inferred = onnx.shape_inference.infer_shapes(m)
        for o, io in zip(m.graph.output, inferred.graph.output):
            if io.type.tensor_type.HasField("shape"):
                o.type.CopyFrom(io.type)
    except Exception:  # error cases: left as declared
        pass
    return m


def case(name, nodes, inputs, outputs, opset, feeds=None, inits=()):
    """Save a case; `feeds` overrides the random inputs (a list of arrays)."""
    m = model(nodes, inputs, outputs, opset, inits)
    if feeds is None:
        feeds = [rand(concrete(s), t) for _, t, s in inputs]
    save_case(OUT, name, m, feeds)


def out(name, t, shape=None):
    return (name, t, shape)


def const(name, arr):
    return onnx.numpy_helper.from_array(np.asarray(arr), name)


def single(name, op, opset, in_types, out_type, shapes, feeds=None, inits=(), extra_inputs=(), **attrs):
    """One node `op` reading x0..xk (graph inputs) then `extra_inputs` (initializer names)."""
    names = [f"x{k}" for k in range(len(in_types))]
    node = helper.make_node(op, names + list(extra_inputs), ["y"], name=f"{name}_node", **attrs)
    inputs = [(n, t, s) for n, t, s in zip(names, in_types, shapes)]
    case(name, [node], inputs, [out("y", out_type)], opset, feeds, inits)


def unary_cases():
    x = ["N", 3, 4]
    for op in ["Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Neg", "Abs", "Floor", "Ceil", "Softplus", "Sin", "Cos"]:
        single(f"unary_{op.lower()}", op, 13, [F], F, [x])
    pos = [rng.uniform(0.1, 4.0, size=(2, 3, 4)).astype(np.float32)]
    for op in ["Log", "Sqrt", "Reciprocal"]:
        single(f"unary_{op.lower()}", op, 13, [F], F, [x], feeds=pos)
    halves = np.array([[-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.4, -0.6, 3.7, -3.2]], dtype=np.float32)
    single("unary_round", "Round", 11, [F], F, [[1, 10]], feeds=[halves])
    single("unary_hardswish", "HardSwish", 14, [F], F, [x], feeds=[rand([2, 3, 4], F, -5, 5)])
    single("unary_not", "Not", 9, [B], B, [x])
    for op in ["Abs", "Neg"]:
        single(f"unary_{op.lower()}_i64", op, 14, [I], I, [[2, 5]], feeds=[rand([2, 5], I, -9, 9)])
    # onnxruntime has Relu for int32, not int64; shrink reads int32 as i64.
    i32 = TensorProto.INT32
    single("unary_relu_i32", "Relu", 14, [i32], i32, [[2, 5]], feeds=[rand([2, 5], I, -9, 9).astype(np.int32)])
    # An opset-7 model of several unaries.
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["a"], name="sig"),
        helper.make_node("Tanh", ["a"], ["b"], name="tanh"),
        helper.make_node("Exp", ["b"], ["y"], name="exp"),
    ]
    case("unary_chain_opset7", nodes, [("x", F, ["N", 6])], [out("y", F)], 7)


def activation_cases():
    x = ["N", 3, 2, 2]
    feeds = [rand([2, 3, 2, 2], F, -4, 4)]
    single("leakyrelu_default", "LeakyRelu", 7, [F], F, [x], feeds)
    single("leakyrelu_alpha", "LeakyRelu", 16, [F], F, [x], feeds, alpha=0.3)
    single("hardsigmoid_default", "HardSigmoid", 7, [F], F, [x], feeds)
    single("hardsigmoid_custom", "HardSigmoid", 22, [F], F, [x], feeds, alpha=1.0 / 6, beta=0.5)
    single("elu_default", "Elu", 7, [F], F, [x], feeds)
    single("elu_alpha", "Elu", 22, [F], F, [x], feeds, alpha=0.5)
    single("gelu_erf", "Gelu", 20, [F], F, [x], feeds)
    single("gelu_none_explicit", "Gelu", 20, [F], F, [x], feeds, approximate="none")
    single("gelu_tanh", "Gelu", 20, [F], F, [x], feeds, approximate="tanh")
    # torch's pre-opset-20 GELU export: x * 0.5 * (1 + erf(x / sqrt 2)).
    nodes = [
        helper.make_node("Div", ["x", "sqrt2"], ["a"], name="div"),
        helper.make_node("Erf", ["a"], ["b"], name="erf"),
        helper.make_node("Add", ["b", "one"], ["c"], name="add"),
        helper.make_node("Mul", ["x", "c"], ["d"], name="mul"),
        helper.make_node("Mul", ["d", "half"], ["y"], name="mul2"),
    ]
    inits = [const("sqrt2", np.float32(np.sqrt(2))), const("one", np.float32(1)), const("half", np.float32(0.5))]
    case("gelu_erf_decomposed_opset13", nodes, [("x", F, x)], [out("y", F)], 13, feeds, inits)


def clip_cases():
    x = ["N", 4, 3]
    feeds = [rand([2, 4, 3], F, -8, 8)]
    single("clip_attr_opset9", "Clip", 9, [F], F, [x], feeds, min=0.0, max=6.0)
    single("clip_attr_min_only_opset7", "Clip", 7, [F], F, [x], feeds, min=-1.0)
    single("clip_attr_none_opset9", "Clip", 9, [F], F, [x], feeds)
    inits = [const("lo", np.float32(0)), const("hi", np.float32(6))]
    single("clip_inputs_opset11", "Clip", 11, [F], F, [x], feeds, inits, extra_inputs=["lo", "hi"])
    single("clip_max_only_opset13", "Clip", 13, [F], F, [x], feeds, inits[1:], extra_inputs=["", "hi"])
    single("clip_min_only_opset13", "Clip", 13, [F], F, [x], feeds, inits[:1], extra_inputs=["lo"])
    single("clip_no_bounds_opset13", "Clip", 13, [F], F, [x], feeds)
    # A bound computed in the graph (a graph input here).
    node = helper.make_node("Clip", ["x", "lo_in", "hi"], ["y"], name="clip_dyn")
    case(
        "clip_computed_min_opset13",
        [node],
        [("x", F, x), ("lo_in", F, [])],
        [out("y", F)],
        13,
        feeds + [np.array(-2.5, dtype=np.float32)],
        inits[1:],
    )
    inits_i = [const("lo", np.int64(-3)), const("hi", np.int64(5))]
    single("clip_i64_opset13", "Clip", 13, [I], I, [[3, 4]], [rand([3, 4], I, -9, 9)], inits_i, extra_inputs=["lo", "hi"])


def softmax_cases():
    feeds4 = [rand([2, 3, 4, 5], F, -5, 5)]
    x4 = ["N", 3, 4, 5]
    for op in ["Softmax", "LogSoftmax"]:
        p = op.lower()
        single(f"{p}_default_opset11", op, 11, [F], F, [x4], feeds4)
        single(f"{p}_axis2_opset11", op, 11, [F], F, [x4], feeds4, axis=2)
        single(f"{p}_axis_last_opset9", op, 9, [F], F, [x4], feeds4, axis=3)
        single(f"{p}_axis0_opset12", op, 12, [F], F, [[2, 3, 4]], [rand([2, 3, 4], F, -5, 5)], axis=0)
        single(f"{p}_default_opset13", op, 13, [F], F, [x4], feeds4)
        single(f"{p}_axis1_opset13", op, 13, [F], F, [x4], feeds4, axis=1)
        single(f"{p}_axis_neg3_opset18", op, 18, [F], F, [x4], feeds4, axis=-3)
        single(f"{p}_2d_opset7", op, 7, [F], F, [["N", 10]], [rand([3, 10], F, -9, 9)])


def binary_cases():
    a, c = ["N", 3, 4, 5], [3, 1, 1]
    pairs = {
        "chan": ([a, c], [rand([2, 3, 4, 5]), rand([3, 1, 1])]),
        "scalar": ([a, []], [rand([2, 3, 4, 5]), rand([])]),
        "outer": ([[4, 1], [5]], [rand([4, 1]), rand([5])]),
        "same": ([a, a], [rand([2, 3, 4, 5]), rand([2, 3, 4, 5])]),
        "mixed": ([[2, 1, 4, 1], [3, 1, 5]], [rand([2, 1, 4, 1]), rand([3, 1, 5])]),
    }
    for op in ["Add", "Sub", "Mul", "Div"]:
        for tag, (shapes, feeds) in pairs.items():
            if op == "Div":
                feeds = [feeds[0], np.where(np.abs(feeds[1]) < 0.3, 0.7, feeds[1]).astype(np.float32)]
            single(f"{op.lower()}_{tag}", op, 14, [F, F], F, shapes, feeds)
    single("add_opset7", "Add", 7, [F, F], F, [["N", 3], [3]])
    base = rng.uniform(0.2, 3.0, size=(2, 3, 4, 5)).astype(np.float32)
    single("pow_f32", "Pow", 13, [F, F], F, [a, c], [base, rand([3, 1, 1], F, -2, 2)])
    single("pow_square_opset7", "Pow", 7, [F, F], F, [a, []], [rand([2, 3, 4, 5]), np.array(2, np.float32)])
    single("pow_int_exponent_opset15", "Pow", 15, [F, I], F, [a, [5]], [rand([2, 3, 4, 5]), np.array([0, 1, 2, 3, -1], np.int64)])
    ia, ib = rand([3, 4], I, -20, 20), rand([4], I, -5, 5)
    ib[ib == 0] = 3
    for op in ["Add", "Sub", "Mul", "Div", "Max", "Min"]:
        single(f"{op.lower()}_i64", op, 13, [I, I], I, [[3, 4], [4]], [ia, ib])
    single("pow_i64_float_exponent_opset15", "Pow", 15, [I, F], I, [[2, 4], [4]], [rand([2, 4], I, 1, 5), np.array([0.5, 1.5, 2.0, -1.0], np.float32)])
    single("pow_i64", "Pow", 15, [I, I], I, [[3, 4], [4]], [rand([3, 4], I, -4, 4), np.array([0, 1, 2, 3], np.int64)])
    ka, kb = rand([2, 3, 4], F, -2, 2).round(), rand([3, 1], F, -2, 2).round()
    for op, opset in [("Equal", 11), ("Less", 9), ("Greater", 9), ("LessOrEqual", 12), ("GreaterOrEqual", 12)]:
        single(f"{op.lower()}_f32", op, opset, [F, F], B, [["N", 3, 4], [3, 1]], [ka, kb])
        single(f"{op.lower()}_i64", op, 13, [I, I], B, [[3, 4], [4]], [ia, ib])
    single("equal_bool", "Equal", 11, [B, B], B, [[2, 3], [3]])
    for op in ["And", "Or"]:
        single(f"{op.lower()}_bool", op, 7, [B, B], B, [["N", 3], [2, 1, 3]], [rand([4, 3], B), rand([2, 1, 3], B)])


def variadic_cases():
    shapes = [["N", 3, 4], [3, 1], [4]]
    feeds = [rand([2, 3, 4]), rand([3, 1]), rand([4])]
    for op in ["Max", "Min", "Sum", "Mean"]:
        names = ["x0", "x1", "x2"]
        node = helper.make_node(op, names, ["y"], name=f"{op.lower()}3")
        case(f"{op.lower()}_variadic3", [node], list(zip(names, [F] * 3, shapes)), [out("y", F)], 13, feeds)
        node = helper.make_node(op, ["x0", "x1"], ["y"], name=f"{op.lower()}2")
        case(f"{op.lower()}_variadic2_opset8", [node], list(zip(names[:2], [F] * 2, shapes[:2])), [out("y", F)], 8, feeds[:2])
        # A single input (aliased) followed by another op so the output is computed.
        nodes = [helper.make_node(op, ["x0"], ["m"], name=f"{op.lower()}_1"), helper.make_node("Relu", ["m"], ["y"], name="r")]
        case(f"{op.lower()}_single", nodes, [("x0", F, shapes[0])], [out("y", F)], 13, feeds[:1])
    single("max_i64_variadic", "Max", 13, [I, I, I], I, [[3, 4], [4], [3, 1]], [rand([3, 4], I, -9, 9), rand([4], I, -9, 9), rand([3, 1], I, -9, 9)])


def prelu_cases():
    slope = const("slope", rand([3, 1, 1], F, 0.0, 0.5))
    single("prelu_channel_opset9", "PRelu", 9, [F], F, [["N", 3, 4, 4]], None, [slope], extra_inputs=["slope"])
    single("prelu_scalar_opset16", "PRelu", 16, [F], F, [["N", 3, 4, 4]], None, [const("slope", np.array([0.25], np.float32))], extra_inputs=["slope"])


def where_cases():
    single("where_f32", "Where", 9, [B, F, F], F, [["N", 1, 4], [3, 1], [4]])
    single("where_i64", "Where", 16, [B, I, I], I, [[2, 3], [2, 3], []])


def cast_cases():
    fx = np.array([[2.7, -2.7, 0.0, 0.4, -0.6, 1e6, -3.5, 7.0]], dtype=np.float32)
    ix = np.array([[0, 1, -5, 123456, -2, 7]], dtype=np.int64)
    bx = np.array([[True, False, True]])
    single("cast_f32_to_i64", "Cast", 13, [F], I, [[1, 8]], [fx], to=I)
    single("cast_f32_to_i32", "Cast", 13, [F], TensorProto.INT32, [[1, 8]], [fx], to=TensorProto.INT32)
    single("cast_f32_to_bool", "Cast", 13, [F], B, [[1, 8]], [fx], to=B)
    single("cast_f32_to_double", "Cast", 9, [F], TensorProto.DOUBLE, [[1, 8]], [fx], to=TensorProto.DOUBLE)
    single("cast_i64_to_f32", "Cast", 13, [I], F, [[1, 6]], [ix], to=F)
    single("cast_i64_to_bool", "Cast", 19, [I], B, [[1, 6]], [ix], to=B)
    single("cast_bool_to_f32", "Cast", 13, [B], F, [[1, 3]], [bx], to=F)
    single("cast_bool_to_i64", "Cast", 21, [B], I, [[1, 3]], [bx], to=I)
    single("cast_f32_to_f32_opset7", "Cast", 7, [F], F, [["N", 8]], [fx], to=F)


def reduce_cases():
    x = ["N", 3, 4, 5]
    feeds = [rand([2, 3, 4, 5])]
    kinds = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"]
    for op in kinds:
        p = op.lower()
        # Before the move: axes as an attribute (ReduceSum moved at 13, the others at 18).
        old = 11 if op == "ReduceSum" else 13
        new = 13 if op == "ReduceSum" else 18
        single(f"{p}_attr_axes_opset{old}", op, old, [F], F, [x], feeds, axes=[2, 3])
        single(f"{p}_attr_neg_axis_nokeep_opset{old}", op, old, [F], F, [x], feeds, axes=[-1], keepdims=0)
        single(f"{p}_all_opset{old}", op, old, [F], F, [x], feeds, keepdims=0)
        ax = const("axes", np.array([1, -1], np.int64))
        single(f"{p}_input_axes_opset{new}", op, new, [F], F, [x], feeds, [ax], extra_inputs=["axes"])
        single(f"{p}_input_axes_nokeep_opset{new}", op, new, [F], F, [x], feeds, [ax], extra_inputs=["axes"], keepdims=0)
        single(f"{p}_no_axes_opset{new}", op, new, [F], F, [x], feeds)
    # noop_with_empty_axes: the input unchanged (followed by Relu so a node computes the output).
    for op, opset in [("ReduceSum", 13), ("ReduceMean", 18)]:
        nodes = [
            helper.make_node(op, ["x"], ["r"], name="noop", noop_with_empty_axes=1),
            helper.make_node("Relu", ["r"], ["y"], name="relu"),
        ]
        case(f"{op.lower()}_noop_empty_axes_opset{opset}", nodes, [("x", F, x)], [out("y", F)], opset, feeds)
    single("reducesum_i64_opset13", "ReduceSum", 13, [I], I, [[3, 4]], [rand([3, 4], I, -9, 9)], [const("axes", np.array([0], np.int64))], extra_inputs=["axes"])
    single("reducemax_i64_opset13", "ReduceMax", 13, [I], I, [[3, 4]], [rand([3, 4], I, -9, 9)], axes=[1], keepdims=0)
    single("reduceprod_small_opset18", "ReduceProd", 18, [F], F, [[2, 6]], [rand([2, 6], F, 0.5, 1.5)], [const("axes", np.array([1], np.int64))], extra_inputs=["axes"])


def error_cases():
    """Models the importer must refuse with a one-line error (not run through onnxruntime)."""
    os.makedirs(ERR, exist_ok=True)

    def save(name, nodes, inputs, outputs, opset, inits=()):
        onnx.save(model(nodes, inputs, outputs, opset, inits), os.path.join(ERR, name + ".onnx"))

    save("gelu_bad_approximate", [helper.make_node("Gelu", ["x"], ["y"], name="g0", approximate="fast")], [("x", F, ["N", 4])], [out("y", F)], 20)
    save("cast_to_string", [helper.make_node("Cast", ["x"], ["y"], name="c0", to=TensorProto.STRING)], [("x", F, [2])], [out("y", TensorProto.STRING)], 13)
    save("softmax_bad_axis", [helper.make_node("Softmax", ["x"], ["y"], name="s0", axis=3)], [("x", F, ["N", 4])], [out("y", F)], 13)
    save("reduce_axes_not_constant", [helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="r0")], [("x", F, ["N", 4]), ("axes", I, [1])], [out("y", F)], 18)
    save("reduce_axes_attr_at_opset18", [helper.make_node("ReduceMax", ["x"], ["y"], name="r1", axes=[1])], [("x", F, ["N", 4])], [out("y", F)], 18)
    save("add_mixed_dtypes", [helper.make_node("Add", ["x", "k"], ["y"], name="a0")], [("x", F, ["N", 4]), ("k", I, [4])], [out("y", F)], 14)
    save("mul_bad_broadcast", [helper.make_node("Mul", ["x", "k"], ["y"], name="m0")], [("x", F, ["N", 4]), ("k", F, [3])], [out("y", F)], 14)
    save("clip_vector_bound", [helper.make_node("Clip", ["x", "lo"], ["y"], name="c1")], [("x", F, ["N", 4])], [out("y", F)], 13, [const("lo", np.zeros(4, np.float32))])
    save("reduce_bad_keepdims", [helper.make_node("ReduceSum", ["x"], ["y"], name="r2", keepdims=2)], [("x", F, ["N", 4])], [out("y", F)], 11)
    save("sqrt_of_i64", [helper.make_node("Sqrt", ["x"], ["y"], name="q0")], [("x", I, [4])], [out("y", I)], 13)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    unary_cases()
    activation_cases()
    clip_cases()
    softmax_cases()
    binary_cases()
    variadic_cases()
    prelu_cases()
    where_cases()
    cast_cases()
    reduce_cases()
    error_cases()
    n = len([f for f in os.listdir(OUT) if f.endswith(".onnx")])
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"{n} cases, {size / 1024:.0f} KiB in {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
