"""Test cases of the `nn` op family (Conv, ConvTranspose, Gemm, MatMul, the normalizations,
pooling, Resize/Upsample) for shrink's graph importer and runtime.

Each case is a single-op ONNX model built with onnx.helper, random inputs (fixed seed) and
onnxruntime's outputs, written by tools/onnx_cases.py into
crates/shrink-io/tests/fixtures/graph_ops/nn/. Models shrink must refuse go to its `errors/`
subfolder (model only; crates/shrink-io/tests/graph_ops_nn.rs checks the messages).

Run: /work/venv/bin/python tools/onnx_ops_nn.py
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_cases import save_case  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "crates", "shrink-io", "tests", "fixtures", "graph_ops", "nn")
ERR = os.path.join(OUT, "errors")
RNG = np.random.default_rng(20)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def model(node, inputs, consts, opset, outputs=("y",), batch_sym=False):
    """One-node model: `inputs` = [(name, array)] graph inputs (first axis symbolic `N` when
    `batch_sym`), `consts` = {name: array} initializers, outputs with unknown shapes."""
    vis = []
    for name, arr in inputs:
        shape = list(arr.shape)
        if batch_sym and shape:
            shape[0] = "N"
        elem = TensorProto.INT64 if arr.dtype == np.int64 else TensorProto.FLOAT
        vis.append(helper.make_tensor_value_info(name, elem, shape))
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in consts.items()]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    nodes = node if isinstance(node, list) else [node]
    g = helper.make_graph(nodes, "g", vis, outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8 if opset < 21 else 10
    # Output shapes from ONNX shape inference (the checker wants a shape on every output).
    inferred = onnx.shape_inference.infer_shapes(m)
    for o, io in zip(m.graph.output, inferred.graph.output):
        if io.type.tensor_type.HasField("shape"):
            o.CopyFrom(io)
        else:
            o.type.tensor_type.shape.SetInParent()
            o.type.tensor_type.shape.Clear()
    return m


def case(name, node, inputs, consts=None, opset=13, outputs=("y",), batch_sym=False, check=True):
    m = model(node, inputs, consts or {}, opset, outputs, batch_sym)
    if check:
        save_case(OUT, name, m, [a for _, a in inputs])
        return
    # The checker refuses ops deprecated since (GroupNormalization-18); onnxruntime runs them.
    real = onnx.checker.check_model
    onnx.checker.check_model = lambda *a, **k: None
    try:
        save_case(OUT, name, m, [a for _, a in inputs])
    finally:
        onnx.checker.check_model = real


def error_model(name, node, inputs, consts=None, opset=13, outputs=("y",)):
    os.makedirs(ERR, exist_ok=True)
    m = model(node, inputs, consts or {}, opset, outputs)
    onnx.save(m, os.path.join(ERR, name + ".onnx"))


def n(op, ins, outs=("y",), **attrs):
    return helper.make_node(op, list(ins), list(outs), name=f"{op.lower()}_node", **attrs)


def convs():
    case("conv2d_pads_bias", n("Conv", ["x", "w", "b"], pads=[1, 1, 1, 1]),
         [("x", rand(2, 3, 6, 6))], {"w": rand(4, 3, 3, 3), "b": rand(4)}, batch_sym=True)
    case("conv1d_stride_dilation_asym", n("Conv", ["x", "w"], strides=[2], dilations=[2], pads=[2, 1]),
         [("x", rand(2, 4, 11))], {"w": rand(6, 4, 3)}, opset=11)
    case("conv2d_groups", n("Conv", ["x", "w", "b"], group=2, strides=[2, 1], pads=[1, 0, 0, 1], dilations=[1, 2]),
         [("x", rand(1, 4, 7, 6))], {"w": rand(6, 2, 3, 2), "b": rand(6)})
    case("conv2d_depthwise", n("Conv", ["x", "w", "b"], group=4, strides=[2, 2], pads=[1, 1, 1, 1]),
         [("x", rand(2, 4, 7, 6))], {"w": rand(8, 1, 3, 3), "b": rand(8)}, batch_sym=True)
    case("conv2d_depthwise_dilated", n("Conv", ["x", "w"], group=3, dilations=[2, 2], pads=[0, 2, 1, 0]),
         [("x", rand(1, 3, 8, 7))], {"w": rand(3, 1, 3, 3)}, opset=7)
    case("conv2d_same_upper", n("Conv", ["x", "w"], auto_pad="SAME_UPPER", strides=[2, 2]),
         [("x", rand(1, 2, 7, 5))], {"w": rand(3, 2, 4, 3)})
    case("conv2d_same_lower", n("Conv", ["x", "w"], auto_pad="SAME_LOWER", strides=[2, 1]),
         [("x", rand(1, 2, 6, 5))], {"w": rand(3, 2, 3, 2)}, opset=11)
    case("conv2d_valid_kernel_attr", n("Conv", ["x", "w"], auto_pad="VALID", kernel_shape=[2, 3]),
         [("x", rand(1, 2, 5, 5))], {"w": rand(2, 2, 2, 3)}, opset=22)
    case("conv2d_pointwise", n("Conv", ["x", "w", "b"]),
         [("x", rand(2, 5, 4, 3))], {"w": rand(7, 5, 1, 1), "b": rand(7)})
    case("conv3d", n("Conv", ["x", "w"], pads=[1, 0, 1, 0, 1, 0], strides=[1, 2, 1]),
         [("x", rand(1, 2, 4, 5, 4))], {"w": rand(3, 2, 2, 3, 2)})
    case("conv2d_weight_input", n("Conv", ["x", "w"], pads=[1, 1, 1, 1]),
         [("x", rand(1, 2, 5, 5)), ("w", rand(3, 2, 3, 3))])


def conv_transposes():
    case("convT2d_stride_pads_outpad_bias", n("ConvTranspose", ["x", "w", "b"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 0]),
         [("x", rand(2, 3, 4, 4))], {"w": rand(3, 2, 3, 3), "b": rand(2)}, batch_sym=True)
    case("convT2d_groups_dilations", n("ConvTranspose", ["x", "w"], group=2, dilations=[2, 1], strides=[1, 2], pads=[0, 1, 1, 0]),
         [("x", rand(1, 4, 3, 3))], {"w": rand(4, 3, 2, 2)})
    case("convT1d_output_shape_odd", n("ConvTranspose", ["x", "w"], strides=[2], output_shape=[9]),
         [("x", rand(1, 2, 5))], {"w": rand(2, 3, 4)}, opset=11)
    case("convT2d_output_shape_same_upper", n("ConvTranspose", ["x", "w"], strides=[2, 2], output_shape=[9, 8], auto_pad="SAME_UPPER"),
         [("x", rand(1, 2, 4, 4))], {"w": rand(2, 2, 3, 4)})
    case("convT2d_auto_same_upper", n("ConvTranspose", ["x", "w"], strides=[2, 2], auto_pad="SAME_UPPER"),
         [("x", rand(1, 2, 3, 3))], {"w": rand(2, 1, 3, 3)}, opset=7)
    case("convT1d_same_lower_odd", n("ConvTranspose", ["x", "w"], strides=[2], auto_pad="SAME_LOWER"),
         [("x", rand(1, 1, 3))], {"w": rand(1, 2, 3)})
    case("convT2d_depthwise", n("ConvTranspose", ["x", "w", "b"], group=3, strides=[2, 2]),
         [("x", rand(1, 3, 3, 2))], {"w": rand(3, 1, 2, 2), "b": rand(3)}, opset=22)


def matmuls():
    case("gemm_transB_bias", n("Gemm", ["a", "w", "c"], transB=1),
         [("a", rand(3, 5))], {"w": rand(4, 5), "c": rand(4)}, batch_sym=True)
    case("gemm_transA_alpha_beta_col", n("Gemm", ["a", "b", "c"], transA=1, alpha=0.5, beta=2.0),
         [("a", rand(5, 3)), ("b", rand(5, 4)), ("c", rand(3, 1))], opset=9)
    case("gemm_no_c", n("Gemm", ["a", "b"], transA=1, transB=1),
         [("a", rand(5, 3)), ("b", rand(4, 5))], opset=11)
    case("gemm_scalar_c_opset7", n("Gemm", ["a", "b", "c"], beta=0.0),
         [("a", rand(2, 3)), ("b", rand(3, 4))], {"c": rand(1)}, opset=7)
    case("matmul_2d", n("MatMul", ["a", "b"]), [("a", rand(3, 4)), ("b", rand(4, 5))])
    case("matmul_batch_broadcast", n("MatMul", ["a", "b"]), [("a", rand(2, 1, 3, 4)), ("b", rand(3, 4, 5))])
    case("matmul_weights", n("MatMul", ["a", "w"]), [("a", rand(2, 3, 4))], {"w": rand(4, 5)}, batch_sym=True)
    case("matmul_vec_left", n("MatMul", ["a", "b"]), [("a", rand(4)), ("b", rand(2, 4, 5))])
    case("matmul_vec_right", n("MatMul", ["a", "b"]), [("a", rand(2, 3, 4)), ("b", rand(4))])
    # No vector·vector case: onnx_cases.write_safetensors stores a 0-d output as shape [1]
    # (np.ascontiguousarray); shrink-runtime's unit tests cover the scalar result.


def bn_params(c):
    return {"s": rand(c), "bias": rand(c), "mean": rand(c), "var": (RNG.random(c) + 0.5).astype(np.float32)}


def norms():
    ins = ["x", "s", "bias", "mean", "var"]
    case("bn_4d", n("BatchNormalization", ins, epsilon=1e-3), [("x", rand(2, 3, 4, 4))], bn_params(3), opset=15, batch_sym=True)
    case("bn_2d_opset9", n("BatchNormalization", ins), [("x", rand(4, 5))], bn_params(5), opset=9)
    case("bn_3d_opset7", n("BatchNormalization", ins, spatial=1), [("x", rand(2, 3, 6))], bn_params(3), opset=7)
    case("bn_opset14_inference", n("BatchNormalization", ins, training_mode=0, momentum=0.8), [("x", rand(2, 2, 3, 3))], bn_params(2), opset=14)
    case("bn_5d", n("BatchNormalization", ins), [("x", rand(1, 2, 2, 3, 2))], bn_params(2), opset=15)
    case("layernorm_last_axis", n("LayerNormalization", ["x", "s", "b"], epsilon=1e-5), [("x", rand(2, 3, 8))],
         {"s": rand(8), "b": rand(8)}, opset=17, batch_sym=True)
    case("layernorm_axis1_no_bias", n("LayerNormalization", ["x", "s"], axis=1), [("x", rand(2, 3, 4))], {"s": rand(3, 4)}, opset=17)
    case("layernorm_broadcast_scale", n("LayerNormalization", ["x", "s", "b"], axis=-2), [("x", rand(2, 3, 4))],
         {"s": rand(1, 4), "b": rand(3, 1)}, opset=22)
    case("groupnorm_opset18_per_group", n("GroupNormalization", ["x", "s", "b"], num_groups=3), [("x", rand(2, 6, 3, 3))],
         {"s": rand(3), "b": rand(3)}, opset=18, check=False)
    case("groupnorm_opset21_per_channel", n("GroupNormalization", ["x", "s", "b"], num_groups=2, epsilon=1e-3), [("x", rand(2, 6, 5))],
         {"s": rand(6), "b": rand(6)}, opset=21, batch_sym=True)
    case("instancenorm_2d", n("InstanceNormalization", ["x", "s", "b"]), [("x", rand(2, 3, 5, 4))], {"s": rand(3), "b": rand(3)}, opset=7)
    case("instancenorm_1d", n("InstanceNormalization", ["x", "s", "b"], epsilon=1e-2), [("x", rand(2, 3, 7))],
         {"s": rand(3), "b": rand(3)}, batch_sym=True)


def pools():
    case("maxpool2d_pads_strides", n("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), [("x", rand(2, 3, 7, 6))], batch_sym=True)
    case("maxpool2d_ceil", n("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1), [("x", rand(1, 2, 5, 7))], opset=10)
    case("maxpool2d_dilations_asym", n("MaxPool", ["x"], kernel_shape=[2, 3], dilations=[2, 1], pads=[1, 0, 0, 2], strides=[1, 2]), [("x", rand(1, 2, 6, 6))], opset=12)
    case("maxpool1d_same_upper", n("MaxPool", ["x"], kernel_shape=[4], strides=[3], auto_pad="SAME_UPPER"), [("x", rand(2, 3, 10))], opset=11)
    case("maxpool2d_indices_unused_opset8", n("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2, 2], storage_order=0), [("x", rand(1, 2, 4, 4))], opset=8)
    case("avgpool2d_exclude_pad", n("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), [("x", rand(2, 3, 7, 6))], batch_sym=True)
    case("avgpool2d_include_pad", n("AveragePool", ["x"], kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1], count_include_pad=1), [("x", rand(1, 2, 6, 5))])
    case("avgpool2d_ceil_include_pad", n("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1), [("x", rand(1, 2, 6, 6))], opset=11)
    case("avgpool2d_ceil_exclude_pad", n("AveragePool", ["x"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1), [("x", rand(1, 2, 5, 5))], opset=10)
    case("avgpool1d_opset7", n("AveragePool", ["x"], kernel_shape=[3], strides=[2]), [("x", rand(2, 3, 9))], opset=7)
    case("avgpool2d_same_lower", n("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER"), [("x", rand(1, 2, 6, 5))])
    case("avgpool2d_dilations_opset19", n("AveragePool", ["x"], kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1]), [("x", rand(1, 2, 6, 6))], opset=19)
    case("globalavgpool_2d", n("GlobalAveragePool", ["x"]), [("x", rand(2, 3, 4, 5))], batch_sym=True)
    case("globalavgpool_1d", n("GlobalAveragePool", ["x"]), [("x", rand(2, 3, 5))], opset=7)
    case("globalmaxpool_2d", n("GlobalMaxPool", ["x"]), [("x", rand(2, 3, 4, 5))], batch_sym=True)


def f32(*v):
    return np.array(v, dtype=np.float32)


def i64(*v):
    return np.array(v, dtype=np.int64)


def resizes():
    x = rand(1, 2, 3, 4)
    case("upsample_opset7_attr", n("Upsample", ["x"], scales=[1.0, 1.0, 2.0, 3.0]), [("x", x)], opset=7)
    case("upsample_opset9_input", n("Upsample", ["x", "sc"]), [("x", x)], {"sc": f32(1, 1, 2, 1.5)}, opset=9)
    case("resize_opset10_up", n("Resize", ["x", "sc"]), [("x", x)], {"sc": f32(1, 1, 2, 2)}, opset=10)
    case("resize_opset10_down", n("Resize", ["x", "sc"], mode="nearest"), [("x", rand(1, 2, 6, 7))], {"sc": f32(1, 1, 0.5, 0.6)}, opset=10)
    case("resize_opset11_default_half_pixel", n("Resize", ["x", "roi", "sc"]), [("x", x)],
         {"roi": np.zeros(0, np.float32), "sc": f32(1, 1, 1.7, 2.5)}, opset=11)
    case("resize_sizes_asymmetric_floor", n("Resize", ["x", "", "", "sz"], coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
         [("x", x)], {"sz": i64(1, 2, 7, 5)})
    case("resize_sizes_align_corners_ceil", n("Resize", ["x", "", "", "sz"], coordinate_transformation_mode="align_corners", nearest_mode="round_prefer_ceil"),
         [("x", x)], {"sz": i64(1, 2, 5, 9)})
    case("resize_pytorch_half_pixel_down", n("Resize", ["x", "", "sc"], coordinate_transformation_mode="pytorch_half_pixel", nearest_mode="ceil"),
         [("x", rand(1, 2, 8, 5))], {"sc": f32(1, 1, 0.25, 0.6)})
    case("resize_tf_half_pixel_for_nn", n("Resize", ["x", "", "sc"], coordinate_transformation_mode="tf_half_pixel_for_nn"),
         [("x", x)], {"sc": f32(1, 1, 1.5, 0.75)}, batch_sym=True)
    case("resize_opset18_axes", n("Resize", ["x", "", "sc"], axes=[2, 3], nearest_mode="round_prefer_ceil"),
         [("x", x)], {"sc": f32(2, 1.5)}, opset=18, batch_sym=True)
    case("resize_opset19_half_pixel_symmetric", n("Resize", ["x", "", "", "sz"], coordinate_transformation_mode="half_pixel_symmetric"),
         [("x", x)], {"sz": i64(1, 2, 5, 7)}, opset=19)


def errors():
    x = rand(1, 2, 4, 4)
    error_model("conv_bad_auto_pad", n("Conv", ["x", "w"], auto_pad="SAME"), [("x", x)], {"w": rand(2, 2, 3, 3)})
    error_model("conv_bad_group", n("Conv", ["x", "w"], group=3), [("x", x)], {"w": rand(3, 1, 3, 3)})
    error_model("resize_cubic", n("Resize", ["x", "", "sc"], mode="cubic"), [("x", x)], {"sc": f32(1, 1, 2, 2)})
    error_model("resize_linear_opset10", n("Resize", ["x", "sc"], mode="linear"), [("x", x)], {"sc": f32(1, 1, 2, 2)}, opset=10)
    error_model("resize_tf_crop_and_resize", n("Resize", ["x", "roi", "sc"], coordinate_transformation_mode="tf_crop_and_resize"), [("x", x)],
                {"roi": f32(0, 0, 0, 0, 1, 1, 1, 1), "sc": f32(1, 1, 2, 2)})
    # onnxruntime 1.32 ignores the policy when `axes` is given, so shrink refuses it.
    error_model("resize_keep_aspect_ratio", n("Resize", ["x", "", "", "sz"], axes=[-2, -1], keep_aspect_ratio_policy="not_larger"),
                [("x", x)], {"sz": i64(7, 6)}, opset=18)
    error_model("maxpool_storage_order", n("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2, 2], storage_order=1), [("x", x)], opset=8)
    ins = ["x", "s", "bias", "mean", "var"]
    error_model("bn_training_mode", n("BatchNormalization", ins, ["y", "rm", "rv"], training_mode=1), [("x", x)], bn_params(2), opset=15)
    error_model("bn_running_mean_used", n("BatchNormalization", ins, ["y", "rm", "rv", "sm", "sv"]), [("x", x)], bn_params(2),
                opset=9, outputs=("y", "rm"))
    error_model("convT_output_shape_too_large", n("ConvTranspose", ["x", "w"], strides=[2, 1], output_shape=[7, 5]),
                [("x", rand(1, 2, 3, 3))], {"w": rand(2, 3, 2, 2)}, opset=11)
    error_model("gemm_inner_mismatch", n("Gemm", ["a", "b"]), [("a", rand(2, 3))], {"b": rand(4, 5)}, opset=11)


def main():
    convs()
    conv_transposes()
    matmuls()
    norms()
    pools()
    resizes()
    errors()
    total = sum(os.path.getsize(os.path.join(d, f)) for d in (OUT, ERR) for f in os.listdir(d) if os.path.isfile(os.path.join(d, f)))
    print(f"wrote {len([f for f in os.listdir(OUT) if f.endswith('.onnx')])} cases ({total} bytes) to {OUT}")


if __name__ == "__main__":
    main()
