//! The `nn` op family (Conv, ConvTranspose, Gemm, MatMul, BatchNormalization,
//! LayerNormalization, GroupNormalization, InstanceNormalization, MaxPool, AveragePool,
//! GlobalAveragePool, GlobalMaxPool, Resize, Upsample) against onnxruntime: every case of
//! tests/fixtures/graph_ops/nn (written by tools/onnx_ops_nn.py) imports, runs and matches;
//! refused attribute values are one-line errors naming the node and op type.
mod graph_support;

use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph_ops/nn")
}

#[test]
fn every_nn_case_matches_onnxruntime() {
    let dir = dir();
    let cases = graph_support::cases(&dir);
    assert!(cases.len() >= 60, "expected the nn fixtures, found {} cases", cases.len());
    graph_support::check_all(&cases, |name| {
        graph_support::check(&dir, name, 1e-5);
        Ok(())
    });
}

/// Import `errors/NAME.onnx`, which must fail with a one-line message naming the node, the op
/// type and `want`.
fn refused(name: &str, node: &str, op: &str, want: &str) {
    let path = dir().join("errors").join(format!("{name}.onnx"));
    let err = match shrink_io::onnx::graph_import::load_graph(&path) {
        Ok(_) => panic!("{name}: import succeeded"),
        Err(e) => e.to_string(),
    };
    assert!(!err.contains('\n'), "{name}: multi-line error: {err}");
    if !node.is_empty() {
        assert!(err.contains(&format!("node `{node}` ({op})")), "{name}: {err}");
    }
    assert!(err.contains(want), "{name}: `{want}` missing in: {err}");
}

#[test]
fn conv_attribute_errors_name_node_and_op() {
    refused("conv_bad_auto_pad", "conv_node", "Conv", "auto_pad `SAME` is not supported");
    refused("conv_bad_group", "conv_node", "Conv", "group");
    refused(
        "convT_output_shape_too_large",
        "convtranspose_node",
        "ConvTranspose",
        "output_shape [7, 5] is larger",
    );
    refused("gemm_inner_mismatch", "gemm_node", "Gemm", "inner dimensions");
}

#[test]
fn resize_modes_other_than_nearest_are_refused_by_name() {
    refused("resize_cubic", "resize_node", "Resize", "mode `cubic` is not supported");
    refused("resize_linear_opset10", "resize_node", "Resize", "mode `linear` is not supported");
    refused(
        "resize_tf_crop_and_resize",
        "resize_node",
        "Resize",
        "coordinate_transformation_mode `tf_crop_and_resize`",
    );
    refused("resize_keep_aspect_ratio", "resize_node", "Resize", "keep_aspect_ratio_policy `not_larger`");
}

#[test]
fn training_only_outputs_and_attributes_are_refused() {
    refused("maxpool_storage_order", "maxpool_node", "MaxPool", "storage_order");
    refused("bn_training_mode", "batchnormalization_node", "BatchNormalization", "training_mode=1");
    // The running mean is a graph output: it is never computed.
    refused("bn_running_mean_used", "", "", "graph output `rm` is not computed");
}

#[test]
fn cases_run_with_another_batch_size() {
    // Symbolic-batch cases: the same graph runs on a batch of 3 (inputs tiled), and each
    // example's outputs equal those of the fixture's first example.
    let dir = dir();
    for name in ["conv2d_depthwise", "bn_4d", "maxpool2d_pads_strides", "layernorm_last_axis"] {
        let case = graph_support::load(&dir, name);
        let graph = shrink_io::onnx::graph_import::load_graph(&case.onnx).unwrap();
        let x = &case.inputs[0];
        let per: usize = x.shape[1..].iter().product();
        let first = &x.as_f32().unwrap()[..per];
        let tiled: Vec<f32> = first.iter().chain(first).chain(first).copied().collect();
        let mut shape = x.shape.clone();
        shape[0] = 3;
        let got = shrink_runtime::run(&graph, &[shrink_graph::Tensor::f32(shape, tiled)]).unwrap();
        let want = &case.expected[0];
        let per_out: usize = want.shape[1..].iter().product();
        let w = &want.as_f32().unwrap()[..per_out];
        let g = got[0].as_f32().unwrap();
        assert_eq!(got[0].shape[0], 3, "{name}");
        for k in 0..3 {
            for (a, b) in g[k * per_out..(k + 1) * per_out].iter().zip(w) {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{name}: example {k}: {a} vs {b}");
            }
        }
    }
}
