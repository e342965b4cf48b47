//! The `array` op family (Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand, Shape,
//! Concat, Split, Slice, Pad, Gather, Identity, Dropout, Constant, ConstantOfShape, Range, Cast
//! of shape values) against onnxruntime: every case written by `tools/onnx_ops_array.py`, and
//! models shrink must refuse with a one-line error naming the node and op type.

mod graph_support;

use shrink_graph::{AxisRel, Dim, Op, Port};
use shrink_io::onnx::graph_import::load_graph;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph_ops/array")
}

#[test]
fn every_case_matches_onnxruntime() {
    let dir = dir();
    let cases = graph_support::cases(&dir);
    assert!(cases.len() >= 50, "only {} cases in {}", cases.len(), dir.display());
    graph_support::check_all(&cases, |name| {
        graph_support::check(&dir, name, 1e-5);
        Ok(())
    });
}

fn import_error(name: &str) -> String {
    let path = dir().join("errors").join(format!("{name}.onnx"));
    match load_graph(&path) {
        Ok(_) => panic!("{name}: imported, expected an error"),
        Err(e) => e.to_string(),
    }
}

/// The error is one line, names the node (its output, as the fixtures leave nodes unnamed) and
/// the op type, and says what is wrong.
fn assert_error(name: &str, node: &str, op: &str, what: &str) {
    let msg = import_error(name);
    assert!(!msg.contains('\n'), "{name}: not one line: {msg}");
    assert!(msg.contains(&format!("node `{node}` ({op})")), "{name}: {msg}");
    assert!(msg.contains(what), "{name}: expected `{what}` in: {msg}");
}

#[test]
fn unsupported_pad_mode_is_an_error_naming_the_mode() {
    assert_error("pad_wrap_mode", "y", "Pad", "`wrap` is not supported");
}

#[test]
fn training_dropout_is_an_error() {
    assert_error("dropout_training", "y", "Dropout", "training_mode is true");
}

#[test]
fn squeezing_a_non_unit_axis_is_an_error() {
    assert_error("squeeze_non_unit_axis", "y", "Squeeze", "its size is not 1");
}

#[test]
fn split_sizes_that_do_not_add_up_are_an_error() {
    assert_error("split_bad_sizes", "y0", "Split", "do not add up to 4");
}

#[test]
fn a_bad_permutation_is_an_error() {
    assert_error("transpose_bad_perm", "y", "Transpose", "attribute `perm`");
}

#[test]
fn a_reshape_that_changes_the_volume_is_an_error() {
    assert_error("reshape_bad_volume", "y", "Reshape", "-1 has no integer size");
}

#[test]
fn constant_of_a_symbolic_shape_is_an_error() {
    assert_error("constant_of_shape_symbolic", "y", "ConstantOfShape", "symbolic dimension `N`");
}

#[test]
fn view_batch_minus_one_resolves_to_an_explicit_symbolic_shape() {
    for opset in [11, 13] {
        let g = load_graph(&dir().join(format!("reshape_view_batch_opset{opset}.onnx"))).unwrap();
        // Shape → Gather → Unsqueeze → Concat are dead once Reshape has its explicit shape.
        assert_eq!(
            g.nodes.len(),
            1,
            "opset {opset}: {:?}",
            g.nodes.iter().map(|n| n.op.def().name()).collect::<Vec<_>>()
        );
        let Op::Reshape(r) = &g.nodes[0].op else { panic!("expected Reshape, got {:?}", g.nodes[0].op) };
        assert_eq!(r.shape, vec![Dim::Sym("N".into()), Dim::Fixed(8)]);
        let x = &g.values[g.nodes[0].inputs[0]].fact;
        let y = &g.values[g.nodes[0].outputs[0]].fact;
        let m = g.nodes[0].op.def().axes(&[x], &[y]);
        assert!(m.rels.contains(&AxisRel::Same(Port::input(0, 0), Port::output(0, 0))), "{m:?}");
        assert!(m.rels.contains(&AxisRel::Reshape {
            merged: Port::output(0, 1),
            split: vec![Port::input(0, 1), Port::input(0, 2)]
        }));
    }
}

#[test]
fn shape_of_a_fixed_input_folds_to_a_constant() {
    let g = load_graph(&dir().join("shape_fixed_folds.onnx")).unwrap();
    assert!(g.nodes.is_empty(), "{:?}", g.nodes);
    let out = g.const_value(g.outputs[0]).expect("a folded constant");
    assert_eq!(out.shape, vec![2, 3]);
    assert!(out.as_f32().unwrap().iter().all(|&v| v == 2.5));
}

#[test]
fn a_string_constant_is_an_error() {
    assert_error("constant_string", "c", "Constant", "attribute `value_string` is not supported");
}

#[test]
fn a_range_over_a_symbolic_size_is_an_error() {
    assert_error("range_symbolic", "y", "Range", "input 1 must be a constant");
}

#[test]
fn symbolic_elements_flow_through_slice_squeeze_unsqueeze_cast_and_concat() {
    let g = load_graph(&dir().join("reshape_shape_chain_batch.onnx")).unwrap();
    assert_eq!(g.nodes.len(), 1, "{:?}", g.nodes.iter().map(|n| n.op.def().name()).collect::<Vec<_>>());
    let Op::Reshape(r) = &g.nodes[0].op else { panic!("expected Reshape, got {:?}", g.nodes[0].op) };
    assert_eq!(r.shape, vec![Dim::Sym("N".into()), Dim::Fixed(4), Dim::Fixed(2)]);
}
