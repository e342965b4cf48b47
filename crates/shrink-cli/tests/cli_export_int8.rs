//! `shrink export --format onnx --int8`: a third-party ONNX MLP calibrated on MNIST becomes a
//! QDQ ONNX model (int8 weights + DequantizeLinear, QuantizeLinear → DequantizeLinear on
//! activations) that `eval --engine graph` runs with nearly the f32 model's predictions; flag
//! mistakes are one-line errors before any work.
mod common;

use common::{assert_one_line_error, ok, shrink, tiny_mnist_dir};
use shrink_graph::{DType, Op};
use std::path::{Path, PathBuf};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../shrink-io/tests/fixtures/graph_corpus/{name}.onnx"))
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn int8_export_writes_a_qdq_model_that_predicts_like_the_f32_one() {
    let (_tmp, data) = tiny_mnist_dir(64, 100);
    let model = corpus("lenet_bn1d_softmax");
    let out = data.join("q.onnx");
    ok(shrink(&["export", p(&model), "--format", "onnx", "--int8", "--calib", p(&data), "-o", p(&out)]));
    let g = shrink_io::onnx::graph_import::load_graph(&out).unwrap();
    let dq = g.nodes.iter().filter(|n| matches!(n.op, Op::DequantizeLinear(_))).count();
    let q = g.nodes.iter().filter(|n| matches!(n.op, Op::QuantizeLinear(_))).count();
    assert!(q >= 1 && dq > q, "{q} QuantizeLinear, {dq} DequantizeLinear");
    assert!(g.consts().any(|(_, _, t)| t.dtype() == DType::I8), "no int8 weight codes");
    let (a, b) = (data.join("a.json"), data.join("b.json"));
    ok(shrink(&[
        "eval",
        p(&model),
        "--data",
        p(&data),
        "--engine",
        "graph",
        "--predictions",
        p(&a),
        "--json",
    ]));
    ok(shrink(&["eval", p(&out), "--data", p(&data), "--engine", "graph", "--predictions", p(&b), "--json"]));
    let read = |f: &Path| -> Vec<u32> { serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap() };
    let (pa, pb) = (read(&a), read(&b));
    let same = pa.iter().zip(&pb).filter(|(x, y)| x == y).count();
    assert!(same >= 95, "QDQ predictions agree with f32 on {same} of 100");
}

#[test]
fn int8_flag_mistakes_are_one_line_errors() {
    let (_tmp, data) = tiny_mnist_dir(8, 8);
    let model = corpus("lenet_bn1d_softmax");
    let out = data.join("q.onnx");
    let o = shrink(&["export", p(&model), "--format", "onnx", "--int8", "-o", p(&out)]);
    assert_one_line_error(&o, "--calib");
    let o = shrink(&["export", p(&model), "--format", "pt", "--int8", "--calib", p(&data), "-o", p(&out)]);
    assert_one_line_error(&o, "--format onnx");
    let o = shrink(&[
        "export",
        p(&model),
        "--format",
        "onnx",
        "--int8",
        "--calib",
        p(&data),
        "--skip",
        "nope",
        "-o",
        p(&out),
    ]);
    assert_one_line_error(&o, "`nope`");
    assert!(!out.exists(), "a failed export left {}", out.display());
}
