//! The `quant` op family (QuantizeLinear, DequantizeLinear) against onnxruntime: every case of
//! tests/fixtures/graph_ops/quant (written by tools/onnx_ops_quant.py: ties, saturation, per
//! tensor and per axis, int32 biases, opsets 10–21) imports, runs and matches exactly; the graph
//! exported again runs the same; blocked quantization and per-axis scales in opset 10 are
//! one-line errors naming the node and op type.
mod graph_support;

use shrink_graph::Op;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph_ops/quant")
}

#[test]
fn every_quant_case_matches_onnxruntime_exactly() {
    let dir = dir();
    let cases = graph_support::cases(&dir);
    assert!(cases.len() >= 14, "expected the quant fixtures, found {} cases", cases.len());
    for name in &cases {
        // Codes must be equal; dequantized values are one f32 product each, as onnxruntime's.
        graph_support::check(&dir, name, 0.0);
    }
}

#[test]
fn quantized_weights_stay_int8_through_import_and_export() {
    let dir = dir();
    let g = shrink_io::onnx::graph_import::load_graph(&dir.join("dq_weight_axis0_i8.onnx")).unwrap();
    // The DequantizeLinear of the constant codes is not folded to f32 at import.
    assert!(g.nodes.iter().any(|n| matches!(n.op, Op::DequantizeLinear(_))));
    let w = g.find("w").expect("weight");
    assert_eq!(g.values[w].fact.dtype, shrink_graph::DType::I8);
    for name in graph_support::cases(&dir) {
        let case = graph_support::load(&dir, &name);
        let g = shrink_io::onnx::graph_import::load_graph(&case.onnx).unwrap();
        let bytes = shrink_io::onnx::graph_export::graph_onnx_bytes(&g).unwrap();
        let back = shrink_io::onnx::graph_import::import_graph(&bytes).unwrap();
        let got = shrink_runtime::run(&back, &case.inputs).unwrap();
        for (k, (a, b)) in got.iter().zip(&case.expected).enumerate() {
            assert_eq!(graph_support::max_rel_err(&format!("{name} re-export {k}"), a, b), 0.0, "{name}");
        }
    }
}

/// Import `errors/NAME.onnx`, which must fail with a one-line message naming node, op and `want`.
fn refused(name: &str, node: &str, op: &str, want: &str) {
    let path = dir().join("errors").join(format!("{name}.onnx"));
    let err = match shrink_io::onnx::graph_import::load_graph(&path) {
        Ok(_) => panic!("{name}: import succeeded"),
        Err(e) => e.to_string(),
    };
    assert!(!err.contains('\n'), "{name}: multi-line error: {err}");
    assert!(err.contains(&format!("node `{node}` ({op})")), "{name}: {err}");
    assert!(err.contains(want), "{name}: `{want}` missing in: {err}");
}

#[test]
fn blocked_and_old_per_axis_quantization_are_refused_by_name() {
    refused("blocked_opset21", "dq", "DequantizeLinear", "block_size");
    refused("per_axis_opset10", "q", "QuantizeLinear", "per-tensor scales only");
}
