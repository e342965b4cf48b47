//! The `math` op family against onnxruntime: every case written by `tools/onnx_ops_math.py`
//! (activations, Clip, Softmax/LogSoftmax, binary ops, variadic Max/Min/Sum/Mean, PRelu, Where,
//! Cast, reductions, several opsets each) is imported, run and compared; models with bad
//! attributes or inputs are refused with a one-line error naming node and op type.

mod graph_support;

use shrink_graph::ops::binary::BinaryKind;
use shrink_graph::{Op, Tensor};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph_ops/math")
}

#[test]
fn every_math_case_matches_onnxruntime() {
    let dir = dir();
    let cases = graph_support::cases(&dir);
    assert!(cases.len() >= 150, "expected the generated cases, found {}", cases.len());
    graph_support::check_all(&cases, |name| {
        graph_support::check(&dir, name, 1e-5);
        Ok(())
    });
}

fn import_err(name: &str) -> String {
    let path = dir().join("errors").join(format!("{name}.onnx"));
    match shrink_io::onnx::graph_import::load_graph(&path) {
        Ok(_) => panic!("{name}: imported, expected an error"),
        Err(e) => e.to_string(),
    }
}

/// The error is one line naming the node and its op type, and contains `what`.
fn assert_refused(case: &str, node: &str, op_type: &str, what: &str) {
    let e = import_err(case);
    assert!(!e.contains('\n'), "{case}: multi-line error: {e}");
    assert!(e.contains(&format!("node `{node}` ({op_type})")), "{case}: {e}");
    assert!(e.contains(what), "{case}: `{what}` missing from: {e}");
}

#[test]
fn bad_attributes_are_one_line_errors_naming_node_and_op() {
    assert_refused("gelu_bad_approximate", "g0", "Gelu", "approximate=`fast`");
    assert_refused("cast_to_string", "c0", "Cast", "string");
    assert_refused("softmax_bad_axis", "s0", "Softmax", "axis");
    assert_refused("reduce_axes_attr_at_opset18", "r1", "ReduceMax", "opset 18");
    assert_refused("reduce_bad_keepdims", "r2", "ReduceSum", "keepdims=2");
    assert_refused("clip_vector_bound", "c1", "Clip", "scalar");
}

#[test]
fn bad_inputs_are_one_line_errors_naming_node_and_op() {
    assert_refused("reduce_axes_not_constant", "r0", "ReduceMean", "must be a constant");
    assert_refused("add_mixed_dtypes", "a0", "Add", "one dtype");
    assert_refused("mul_bad_broadcast", "m0", "Mul", "cannot be broadcast");
    assert_refused("sqrt_of_i64", "q0", "Sqrt", "I64");
}

/// Load one case's graph.
fn graph(name: &str) -> shrink_graph::Graph {
    shrink_io::onnx::graph_import::load_graph(&dir().join(format!("{name}.onnx"))).expect("imports")
}

#[test]
fn imports_map_to_the_expected_ir_ops() {
    // Opset < 13 softmax at a non-last axis normalizes over the flattened tail.
    let g = graph("softmax_default_opset11");
    assert!(matches!(&g.nodes[0].op, Op::Softmax(s) if s.axis == 1 && s.flatten));
    let g = graph("softmax_axis_last_opset9");
    assert!(matches!(&g.nodes[0].op, Op::Softmax(s) if !s.flatten));
    // Constant Clip bounds from inputs and attributes both become one Clip.
    for name in ["clip_inputs_opset11", "clip_attr_opset9"] {
        let g = graph(name);
        assert_eq!(g.nodes.len(), 1, "{name}");
        assert!(matches!(&g.nodes[0].op, Op::Clip(c) if c.min == Some(0.0) && c.max == Some(6.0)), "{name}");
    }
    let g = graph("clip_max_only_opset13");
    assert!(matches!(&g.nodes[0].op, Op::Clip(c) if c.min.is_none() && c.max == Some(6.0)));
    // Integer Clip stays exact: Max then Min with the i64 bounds.
    let g = graph("clip_i64_opset13");
    let kinds: Vec<_> = g.nodes.iter().map(|n| n.op.clone()).collect();
    assert!(
        matches!(&kinds[..], [Op::Binary(a), Op::Binary(b)] if a.kind == BinaryKind::Max && b.kind == BinaryKind::Min),
        "{kinds:?}"
    );
    // Variadic Mean of 3: two Adds and a Div.
    assert_eq!(graph("mean_variadic3").nodes.len(), 3);
    // The symbolic batch survives.
    let g = graph("reducemean_input_axes_nokeep_opset18");
    let out = &g.values[g.outputs[0]].fact;
    assert_eq!(out.shape, vec![shrink_graph::Dim::Sym("N".into()), shrink_graph::Dim::Fixed(4)]);
}

#[test]
fn symbolic_batch_runs_at_other_sizes() {
    // The fixtures run with batch 2; the same graphs accept batch 5.
    let g = graph("prelu_channel_opset9");
    let x = Tensor::f32(vec![5, 3, 4, 4], (0..240).map(|v| (v as f32 - 120.0) / 10.0).collect());
    let y = shrink_runtime::run(&g, std::slice::from_ref(&x)).expect("runs");
    assert_eq!(y[0].shape, vec![5, 3, 4, 4]);
    let (xv, yv) = (x.as_f32().unwrap(), y[0].as_f32().unwrap());
    for (a, b) in xv.iter().zip(yv) {
        if *a >= 0.0 {
            assert_eq!(a, b);
        } else {
            assert!(b / a > 0.0 && b / a <= 0.5, "{a} -> {b}");
        }
    }
}
