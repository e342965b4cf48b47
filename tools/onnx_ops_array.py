"""Single-op ONNX cases of the `array` family for shrink's graph importer and runtime.

Builds small models with onnx.helper (Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand,
Shape, Concat, Split, Slice, Pad, Gather, Identity, Dropout, Constant, ConstantOfShape, Range,
Cast on shape values), over several opsets where attributes moved to inputs, with seeded random
inputs, and saves them with onnxruntime's outputs into
crates/shrink-io/tests/fixtures/graph_ops/array/ (checked by crates/shrink-io/tests/graph_ops_array.rs).
Models that shrink must refuse go to the `errors/` subfolder (no outputs).

Run: /work/venv/bin/python tools/onnx_ops_array.py
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_cases import save_case  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "shrink-io", "tests", "fixtures", "graph_ops", "array")
ERR = os.path.join(OUT, "errors")
RNG = np.random.default_rng(20)
INT_MAX = 2**63 - 1
INT_MIN = -(2**63)

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def vi(name, elem, shape):
    """ValueInfo; a string in `shape` is a dim_param (symbolic dimension)."""
    return helper.make_tensor_value_info(name, elem, shape)


def const(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def model(nodes, inputs, outputs, opset, inits=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="shrink-tests")
    m.ir_version = 8
    # Fill the outputs' types from shape inference (the checker wants a shape), keep no value_info.
    m = onnx.shape_inference.infer_shapes(m)
    del m.graph.value_info[:]
    return m


def out(name, elem=F):
    """An output with unknown shape (onnxruntime infers it)."""
    return helper.make_tensor_value_info(name, elem, None)


def case(name, nodes, inputs, feeds, opset, inits=(), outputs=("y",), out_types=None):
    out_types = out_types or [F] * len(outputs)
    m = model(nodes, inputs, [out(o, t) for o, t in zip(outputs, out_types)], opset, inits)
    fill_output_ranks(m, feeds)
    save_case(OUT, name, m, feeds)


def fill_output_ranks(m, feeds):
    """Outputs shape inference left without a shape get one symbolic dim per axis of the
    output onnxruntime computes (the checker requires a shape)."""
    missing = [o for o in m.graph.output if not o.type.tensor_type.HasField("shape")]
    if not missing:
        return
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, dict(zip(names, feeds)))))
    for o in missing:
        shape = o.type.tensor_type.shape
        for k in range(np.asarray(outs[o.name]).ndim):
            shape.dim.add().dim_param = f"{o.name}_{k}"


def error_case(name, nodes, inputs, opset, inits=(), outputs=("y",)):
    m = model(nodes, inputs, [out(o) for o in outputs], opset, inits)
    for o in m.graph.output:
        if not o.type.tensor_type.HasField("shape"):
            o.type.tensor_type.shape.dim.add().dim_param = "unknown"
    onnx.checker.check_model(m)
    os.makedirs(ERR, exist_ok=True)
    onnx.save(m, os.path.join(ERR, name + ".onnx"))


N = helper.make_node


def reshape_cases():
    x = rand(2, 3, 4)
    case("reshape_infer", [N("Reshape", ["x", "s"], ["y"])], [vi("x", F, [2, 3, 4])], [x], 13,
         [const("s", np.array([4, -1], np.int64))])
    case("reshape_copy_zero", [N("Reshape", ["x", "s"], ["y"])], [vi("x", F, [2, 3, 4])], [x], 7,
         [const("s", np.array([0, -1, 2], np.int64))])
    case("reshape_allowzero", [N("Reshape", ["x", "s"], ["y"], allowzero=1)], [vi("x", F, [2, 3, 4])], [x], 14,
         [const("s", np.array([3, 8], np.int64))])
    xn = rand(3, 2, 4)
    case("reshape_const_batch_infer", [N("Reshape", ["x", "s"], ["y"])], [vi("x", F, ["N", 2, 4])], [xn], 13,
         [const("s", np.array([-1, 8], np.int64))])
    # x.view(x.size(0), -1) as torch exports it, in two opsets (Unsqueeze axes attribute/input).
    for opset in (11, 13):
        unsq = (N("Unsqueeze", ["n"], ["n1"], axes=[0]) if opset < 13 else N("Unsqueeze", ["n", "ax0"], ["n1"]))
        nodes = [N("Shape", ["x"], ["sh"]), N("Gather", ["sh", "i0"], ["n"], axis=0), unsq,
                 N("Concat", ["n1", "m1"], ["s"], axis=0), N("Reshape", ["x", "s"], ["y"])]
        inits = [const("i0", np.array(0, np.int64)), const("m1", np.array([-1], np.int64))]
        if opset >= 13:
            inits.append(const("ax0", np.array([0], np.int64)))
        case(f"reshape_view_batch_opset{opset}", nodes, [vi("x", F, ["N", 2, 4])], [xn], opset, inits)
    # Shape → Slice → Squeeze → Unsqueeze → Cast → Concat → Reshape (symbolic elements through each).
    nodes = [N("Shape", ["x"], ["sh"]), N("Slice", ["sh", "st", "en"], ["n1"]),
             N("Squeeze", ["n1", "ax0"], ["n"]), N("Unsqueeze", ["n", "ax0"], ["n2"]),
             N("Cast", ["n2"], ["n3"], to=TensorProto.INT32), N("Cast", ["n3"], ["n4"], to=TensorProto.INT64),
             N("Concat", ["n4", "s2"], ["s"], axis=0), N("Reshape", ["x", "s"], ["y"])]
    inits = [const("st", np.array([0], np.int64)), const("en", np.array([1], np.int64)),
             const("ax0", np.array([0], np.int64)), const("s2", np.array([4, 2], np.int64))]
    case("reshape_shape_chain_batch", nodes, [vi("x", F, ["N", 2, 4])], [xn], 13, inits)
    # Shape(start=1) of a symbolic input folds to a constant (opset 15).
    nodes = [N("Shape", ["x"], ["sh"], start=1), N("Concat", ["m1", "sh"], ["s"], axis=0),
             N("Reshape", ["x", "s"], ["y"])]
    case("reshape_shape_start_batch", nodes, [vi("x", F, ["N", 2, 4])], [xn], 15,
         [const("m1", np.array([-1], np.int64))])


def flatten_transpose_cases():
    x = rand(2, 3, 2, 2)
    for axis, opset in ((1, 9), (0, 11), (-1, 13), (4, 13)):
        name = f"flatten_axis{axis}_opset{opset}".replace("-", "m")
        case(name, [N("Flatten", ["x"], ["y"], axis=axis)], [vi("x", F, [2, 3, 2, 2])], [x], opset)
    case("flatten_batch", [N("Flatten", ["x"], ["y"])], [vi("x", F, ["N", 3, 2, 2])], [x], 13)
    case("transpose_perm", [N("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], [vi("x", F, ["N", 3, 2, 2])], [x], 13)
    case("transpose_default", [N("Transpose", ["x"], ["y"])], [vi("x", F, [2, 3, 2, 2])], [x], 9)
    xi = RNG.integers(-50, 50, (3, 4)).astype(np.int64)
    case("transpose_i64", [N("Transpose", ["x"], ["y"], perm=[1, 0])], [vi("x", I64, [3, 4])], [xi], 13,
         out_types=[I64])


def squeeze_unsqueeze_cases():
    x = rand(2, 1, 3, 1)
    case("squeeze_attr_opset11", [N("Squeeze", ["x"], ["y"], axes=[1])], [vi("x", F, [2, 1, 3, 1])], [x], 11)
    case("squeeze_input_opset13", [N("Squeeze", ["x", "a"], ["y"])], [vi("x", F, [2, 1, 3, 1])], [x], 13,
         [const("a", np.array([-1, 1], np.int64))])
    case("squeeze_all", [N("Squeeze", ["x"], ["y"])], [vi("x", F, ["N", 1, 3, 1])], [x], 13)
    x2 = rand(2, 3)
    case("unsqueeze_attr_opset9", [N("Unsqueeze", ["x"], ["y"], axes=[0, 3])], [vi("x", F, [2, 3])], [x2], 9)
    case("unsqueeze_input_opset13", [N("Unsqueeze", ["x", "a"], ["y"])], [vi("x", F, ["N", 3])], [x2], 13,
         [const("a", np.array([-1, 1], np.int64))])


def expand_shape_cases():
    x = rand(3, 1)
    case("expand_both_ways", [N("Expand", ["x", "s"], ["y"])], [vi("x", F, [3, 1])], [x], 13,
         [const("s", np.array([2, 1, 4], np.int64))])
    case("expand_opset8", [N("Expand", ["x", "s"], ["y"])], [vi("x", F, [3, 1])], [x], 8,
         [const("s", np.array([3, 5], np.int64))])
    # A constant expanded to the shape of a symbolic input.
    xn = rand(3, 4)
    case("expand_const_to_batch", [N("Shape", ["x"], ["s"]), N("Expand", ["c", "s"], ["y"])],
         [vi("x", F, ["N", 4])], [xn], 13, [const("c", rand(1, 4))])
    case("shape_batch", [N("Shape", ["x"], ["y"])], [vi("x", F, ["N", 3, 4])], [rand(2, 3, 4)], 13,
         out_types=[I64])
    case("shape_start_end_opset15", [N("Shape", ["x"], ["y"], start=-2, end=10)], [vi("x", F, ["N", 3, 4])],
         [rand(2, 3, 4)], 15, out_types=[I64])
    case("shape_fixed_folds", [N("Shape", ["x"], ["s"]), N("ConstantOfShape", ["s"], ["y"],
                                                           value=helper.make_tensor("v", F, [1], [2.5]))],
         [vi("x", F, [2, 3])], [rand(2, 3)], 13)


def concat_split_cases():
    a, b, c = rand(2, 1, 3), rand(2, 2, 3), rand(2, 3, 3)
    case("concat_axis1", [N("Concat", ["a", "b", "c"], ["y"], axis=1)],
         [vi("a", F, ["N", 1, 3]), vi("b", F, ["N", 2, 3]), vi("c", F, ["N", 3, 3])], [a, b, c], 13)
    case("concat_neg_axis_opset7", [N("Concat", ["a", "b"], ["y"], axis=-1)],
         [vi("a", F, [2, 1, 3]), vi("b", F, [2, 1, 3])], [a, rand(2, 1, 3)], 7)
    ia, ib = RNG.integers(0, 9, (2, 2)).astype(np.int64), RNG.integers(0, 9, (1, 2)).astype(np.int64)
    case("concat_i64_with_const", [N("Concat", ["a", "b", "k"], ["y"], axis=0)],
         [vi("a", I64, [2, 2]), vi("b", I64, [1, 2])], [ia, ib], 13, [const("k", np.array([[7, 8]], np.int64))],
         out_types=[I64])
    x = rand(2, 6, 2)
    case("split_attr_opset11", [N("Split", ["x"], ["y0", "y1"], axis=1, split=[2, 4])], [vi("x", F, ["N", 6, 2])],
         [x], 11, outputs=("y0", "y1"))
    case("split_input_opset13", [N("Split", ["x", "s"], ["y0", "y1", "y2"], axis=-2)], [vi("x", F, [2, 6, 2])],
         [x], 13, [const("s", np.array([1, 2, 3], np.int64))], outputs=("y0", "y1", "y2"))
    case("split_equal_opset13", [N("Split", ["x"], ["y0", "y1", "y2"], axis=1)], [vi("x", F, [2, 6, 2])], [x], 13,
         outputs=("y0", "y1", "y2"))
    x7 = rand(7, 2)
    case("split_num_outputs_opset18", [N("Split", ["x"], ["y0", "y1", "y2"], axis=0, num_outputs=3)],
         [vi("x", F, [7, 2])], [x7], 18, outputs=("y0", "y1", "y2"))


def slice_cases():
    x = rand(4, 6, 5)
    case("slice_attrs_opset9", [N("Slice", ["x"], ["y"], starts=[1, -4], ends=[3, 1000], axes=[0, 2])],
         [vi("x", F, [4, 6, 5])], [x], 9)
    case("slice_attrs_no_axes_opset7", [N("Slice", ["x"], ["y"], starts=[0, 2], ends=[-1, 5])],
         [vi("x", F, [4, 6, 5])], [x], 7)

    def inputs_case(name, starts, ends, axes, steps, shape=(4, 6, 5), names=None, opset=13):
        inits = [const("st", np.array(starts, np.int64)), const("en", np.array(ends, np.int64))]
        ins = ["x", "st", "en"]
        if axes is not None:
            inits.append(const("ax", np.array(axes, np.int64)))
            ins.append("ax")
        if steps is not None:
            if axes is None:
                ins.append("")
            inits.append(const("sp", np.array(steps, np.int64)))
            ins.append("sp")
        case(name, [N("Slice", ins, ["y"])], [vi("x", F, names or list(shape))], [rand(*shape)], opset, inits)

    inputs_case("slice_steps_opset10", [0, 1], [INT_MAX, 6], [1, 2], None, opset=10)
    inputs_case("slice_step2_int_max", [-5, 0], [INT_MAX, INT_MAX], [1, 2], [2, 3])
    inputs_case("slice_negative_steps", [-1, 10], [INT_MIN, -100], [2, 1], [-1, -2])
    inputs_case("slice_negative_step_mid", [3], [0], [0], [-2])
    inputs_case("slice_clamped_empty", [5], [2], None, None, shape=(4, 6))
    inputs_case("slice_no_axes_steps", [1, 0], [4, 6], None, [1, 2], shape=(4, 6))
    inputs_case("slice_batch_kept", [0, 1], [INT_MAX, -1], [0, 2], None, names=["N", 6, 5])


def pad_cases():
    x = rand(1, 2, 3, 4)
    case("pad_attr_constant_opset9", [N("Pad", ["x"], ["y"], pads=[0, 0, 1, 2, 0, 0, 2, 1], value=1.5)],
         [vi("x", F, [1, 2, 3, 4])], [x], 9)
    case("pad_attr_reflect_opset9", [N("Pad", ["x"], ["y"], mode="reflect", pads=[0, 0, 2, 1, 0, 0, 1, 3])],
         [vi("x", F, [1, 2, 3, 4])], [x], 9)
    case("pad_input_edge_opset11", [N("Pad", ["x", "p"], ["y"], mode="edge")], [vi("x", F, [1, 2, 3, 4])], [x], 11,
         [const("p", np.array([0, 1, 2, 3, 0, 0, 1, 2], np.int64))])
    case("pad_input_reflect_batch_opset13", [N("Pad", ["x", "p"], ["y"], mode="reflect")],
         [vi("x", F, ["N", 2, 3, 4])], [x], 13, [const("p", np.array([0, 0, 1, 3, 0, 0, 2, 0], np.int64))])
    case("pad_constant_value_crop_opset13", [N("Pad", ["x", "p", "v"], ["y"])], [vi("x", F, [1, 2, 3, 4])], [x], 13,
         [const("p", np.array([0, 0, -1, 2, 0, 1, 0, -2], np.int64)), const("v", np.array(-3.0, np.float32))])
    case("pad_axes_opset18", [N("Pad", ["x", "p", "", "a"], ["y"], mode="constant")],
         [vi("x", F, ["N", 2, 3, 4])], [x], 18,
         [const("p", np.array([1, 2, 0, 3], np.int64)), const("a", np.array([-1, 2], np.int64))])
    xi = RNG.integers(-9, 9, (2, 3)).astype(np.int64)
    case("pad_i64_opset13", [N("Pad", ["x", "p", "v"], ["y"])], [vi("x", I64, [2, 3])], [xi], 13,
         [const("p", np.array([1, 0, 0, 2], np.int64)), const("v", np.array(5, np.int64))], out_types=[I64])


def gather_cases():
    table = rand(10, 4)
    ids = RNG.integers(0, 10, (2, 5)).astype(np.int64)
    case("gather_embedding", [N("Gather", ["w", "ids"], ["y"], axis=0)], [vi("ids", I64, ["N", 5])], [ids], 13,
         [const("w", table)])
    x = rand(2, 5, 3)
    case("gather_axis1_negative", [N("Gather", ["x", "i"], ["y"], axis=1)], [vi("x", F, ["N", 5, 3])], [x], 13,
         [const("i", np.array([[-1, 0], [2, -5]], np.int64))])
    case("gather_scalar_opset9", [N("Gather", ["x", "i"], ["y"], axis=-1)], [vi("x", F, [2, 5, 3])], [x], 9,
         [const("i", np.array(1, np.int64))])
    xi = RNG.integers(-99, 99, (4, 3)).astype(np.int64)
    idx = np.array([3, -4, 1], np.int64)
    case("gather_i64_data_runtime_indices", [N("Gather", ["x", "i"], ["y"])], [vi("x", I64, [4, 3]),
                                                                                vi("i", I64, [3])], [xi, idx], 13,
         out_types=[I64])
    # Range folds to constant indices.
    nodes = [N("Range", ["r0", "r1", "r2"], ["i"]), N("Gather", ["x", "i"], ["y"], axis=1)]
    case("gather_range_indices", nodes, [vi("x", F, ["N", 5, 3])], [x], 11,
         [const("r0", np.array(4, np.int64)), const("r1", np.array(-1, np.int64)), const("r2", np.array(-2, np.int64))])


def passthrough_constant_cases():
    x = rand(2, 3)
    case("identity", [N("Identity", ["x"], ["y"])], [vi("x", F, ["N", 3])], [x], 13)
    case("dropout_opset9", [N("Dropout", ["x"], ["y"], ratio=0.3)], [vi("x", F, ["N", 3])], [x], 9)
    case("dropout_opset13_mask", [N("Dropout", ["x", "r", "t"], ["y", "m"])], [vi("x", F, [2, 3])], [x], 13,
         [const("r", np.array(0.5, np.float32)), const("t", np.array(False))], outputs=("y", "m"),
         out_types=[F, B])
    nodes = [N("Constant", [], ["c1"], value=helper.make_tensor("c", F, [1, 3], [1.0, 2.0, 3.0])),
             N("Constant", [], ["c2"], value_floats=[4.0, 5.0, 6.0]),
             N("Constant", [], ["s"], value_ints=[1, 3]),
             N("Reshape", ["c2", "s"], ["c3"]),
             N("Concat", ["x", "c1", "c3"], ["y"], axis=0)]
    case("constant_attrs_opset13", nodes, [vi("x", F, [2, 3])], [x], 13)
    nodes = [N("Constant", [], ["k"], value_int=2), N("Constant", [], ["f"], value_float=0.5),
             N("Gather", ["x", "k"], ["g"], axis=1), N("Unsqueeze", ["g", "a"], ["g1"]),
             N("Pad", ["g1", "p", "f"], ["y"])]
    case("constant_scalars_opset13", nodes, [vi("x", F, ["N", 3])], [x], 13,
         [const("a", np.array([1], np.int64)), const("p", np.array([0, 1, 0, 1], np.int64))])
    nodes = [N("Range", ["r0", "r1", "r2"], ["r"]), N("Unsqueeze", ["r", "a"], ["r1x"]),
             N("Concat", ["x", "r1x"], ["y"], axis=0)]
    case("range_float_opset13", nodes, [vi("x", F, [2, 4])], [rand(2, 4)], 13,
         [const("r0", np.array(0.5, np.float32)), const("r1", np.array(2.0, np.float32)),
          const("r2", np.array(0.4, np.float32)), const("a", np.array([0], np.int64))])


def error_cases():
    x = vi("x", F, [1, 2, 3, 4])
    error_case("pad_wrap_mode", [N("Pad", ["x", "p"], ["y"], mode="wrap")], [x], 19,
               [const("p", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))])
    error_case("dropout_training", [N("Dropout", ["x", "r", "t"], ["y"])], [x], 13,
               [const("r", np.array(0.5, np.float32)), const("t", np.array(True))])
    error_case("squeeze_non_unit_axis", [N("Squeeze", ["x", "a"], ["y"])], [x], 13,
               [const("a", np.array([2], np.int64))])
    error_case("split_bad_sizes", [N("Split", ["x", "s"], ["y0", "y1"], axis=3)], [x], 13,
               [const("s", np.array([1, 2], np.int64))], outputs=("y0", "y1"))
    error_case("transpose_bad_perm", [N("Transpose", ["x"], ["y"], perm=[0, 1, 1, 2])], [x], 13)
    error_case("reshape_bad_volume", [N("Reshape", ["x", "s"], ["y"])], [x], 13, [const("s", np.array([5, -1], np.int64))])
    error_case("constant_string", [N("Constant", [], ["c"], value_string="hi"), N("Identity", ["x"], ["y"])], [x], 13)
    error_case("range_symbolic", [N("Shape", ["x"], ["s"]), N("Gather", ["s", "i"], ["n"]),
                                  N("Range", ["z", "n", "o"], ["y"])], [vi("x", F, ["N", 3])], 13,
               [const("i", np.array(0, np.int64)), const("z", np.array(0, np.int64)), const("o", np.array(1, np.int64))])
    error_case("constant_of_shape_symbolic", [N("Shape", ["x"], ["s"]), N("ConstantOfShape", ["s"], ["y"])],
               [vi("x", F, ["N", 3])], 13)


def main():
    reshape_cases()
    flatten_transpose_cases()
    squeeze_unsqueeze_cases()
    expand_shape_cases()
    concat_split_cases()
    slice_cases()
    pad_cases()
    gather_cases()
    passthrough_constant_cases()
    error_cases()
    print("wrote", len([f for f in os.listdir(OUT) if f.endswith(".onnx")]), "cases to", OUT)


if __name__ == "__main__":
    main()
