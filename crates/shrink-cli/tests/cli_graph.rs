//! The open graph IR from the command line: `eval --engine graph` (any ONNX model, `--logits`),
//! `prune --engine graph` (plan out / replay), and malformed graphs as one-line errors.
mod common;

use common::{assert_one_line_error, ok, shrink, tiny_mnist_dir};
use std::path::{Path, PathBuf};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../shrink-io/tests/fixtures/graph_corpus/{name}.onnx"))
}

fn bad(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/graph_bad/{name}.onnx"))
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Reads an f32 `.npy` (the header is checked by shrink-io's own reader).
fn npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    shrink_io::npy::read_npy(path).unwrap()
}

#[test]
fn eval_runs_a_third_party_softmax_mlp_and_writes_logits() {
    let (_tmp, data) = tiny_mnist_dir(8, 25);
    let logits = data.join("logits.npy");
    let out = ok(shrink(&[
        "eval",
        p(&corpus("lenet_bn1d_softmax")),
        "--data",
        p(&data),
        "--engine",
        "graph",
        "--batch-size",
        "7",
        "--logits",
        p(&logits),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["engine"], "graph");
    assert_eq!(v["samples"], 25);
    let (shape, data) = npy(&logits);
    assert_eq!(shape, vec![25, 10]);
    // A softmax head: every row is a probability distribution.
    for row in data.chunks(10) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
}

#[test]
fn a_fixed_batch_of_ten_is_fed_padded_batches() {
    let (_tmp, data) = tiny_mnist_dir(8, 23);
    let a = data.join("a.npy");
    let b = data.join("b.npy");
    ok(shrink(&["eval", p(&corpus("lenet_bn1d_batch10")), "--data", p(&data), "--logits", p(&a), "--json"]));
    ok(shrink(&["eval", p(&corpus("lenet_bn1d_softmax")), "--data", p(&data), "--logits", p(&b), "--json"]));
    // Same network exported with a fixed and a symbolic batch: the same outputs.
    let ((sa, va), (sb, vb)) = (npy(&a), npy(&b));
    assert_eq!(sa, vec![23, 10]);
    assert_eq!(sa, sb);
    let diff = va.iter().zip(&vb).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn graph_prune_writes_onnx_and_a_plan_that_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let (out1, out2, plan) =
        (tmp.path().join("p1.onnx"), tmp.path().join("p2.onnx"), tmp.path().join("plan.json"));
    let m = corpus("mobilenet_v2");
    let o = ok(shrink(&[
        "prune",
        p(&m),
        "--method",
        "filter-ln",
        "--sparsity",
        "0.3",
        "--engine",
        "graph",
        "--plan-out",
        p(&plan),
        "-o",
        p(&out1),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(o.trim()).unwrap();
    assert!(v["macs_after"].as_u64().unwrap() < v["macs_before"].as_u64().unwrap());
    ok(shrink(&["prune", p(&m), "--method", "filter-ln", "--plan", p(&plan), "-o", p(&out2)]));
    assert_eq!(std::fs::read(&out1).unwrap(), std::fs::read(&out2).unwrap(), "replayed plan");
}

#[test]
fn malformed_graphs_are_one_line_errors_and_write_nothing() {
    let (_tmp, data) = tiny_mnist_dir(8, 5);
    for (name, needle) in [
        ("unknown_op", "node `the_hardmax`: unsupported op type `Hardmax`"),
        ("cycle", "cycle through node"),
        ("dangling", "node `add_ghost` reads `ghost`"),
    ] {
        let o = shrink(&["eval", p(&bad(name)), "--data", p(&data), "--engine", "graph"]);
        assert_one_line_error(&o, needle);
        let out = data.join(format!("{name}.pruned.onnx"));
        let o = shrink(&[
            "prune",
            p(&bad(name)),
            "--method",
            "filter-ln",
            "--sparsity",
            "0.3",
            "--engine",
            "graph",
            "-o",
            p(&out),
        ]);
        assert_one_line_error(&o, needle);
        assert!(!out.exists(), "{name}: no output file");
    }
}

#[test]
fn auto_engine_falls_back_to_the_graph_for_models_the_layers_refuse() {
    let (_tmp, data) = tiny_mnist_dir(8, 5);
    // The layer importer refuses BatchNorm1d-after-Gemm third-party files; auto takes the graph.
    let out = ok(shrink(&["eval", p(&corpus("lenet_bn1d_softmax")), "--data", p(&data), "--json"]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["samples"], 5);
}

fn gw(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/graph_weights/{name}"))
}

#[test]
fn graph_flag_takes_weights_from_a_state_dict() {
    // mlp.onnx holds weights A; mlp_b.pt and mlp_b.onnx weights B (tools/graph_weights_case.py).
    let (_tmp, data) = tiny_mnist_dir(8, 9);
    let (a, b, c) = (data.join("a.npy"), data.join("b.npy"), data.join("c.npy"));
    let (onnx_a, pt_b) = (gw("mlp.onnx"), gw("mlp_b.pt"));
    ok(shrink(&["eval", p(&pt_b), "--graph", p(&onnx_a), "--data", p(&data), "--logits", p(&a), "--json"]));
    ok(shrink(&["eval", p(&gw("mlp_b.onnx")), "--data", p(&data), "--engine", "graph", "--logits", p(&b)]));
    ok(shrink(&["eval", p(&onnx_a), "--data", p(&data), "--engine", "graph", "--logits", p(&c)]));
    let ((sa, va), (sb, vb), (_, vc)) = (npy(&a), npy(&b), npy(&c));
    assert_eq!(sa, vec![9, 10]);
    assert_eq!(sa, sb);
    let diff = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(diff(&va, &vb) < 1e-5, "state_dict B in graph A = graph B");
    assert!(diff(&va, &vc) > 1e-2, "weights A give other outputs");
    // prune and finetune take the flag too.
    let out = data.join("pruned.onnx");
    ok(shrink(&[
        "prune",
        p(&pt_b),
        "--graph",
        p(&onnx_a),
        "--method",
        "filter-ln",
        "--sparsity",
        "0.5",
        "-o",
        p(&out),
    ]));
    assert!(out.exists());
    let tuned = data.join("tuned.onnx");
    ok(shrink(&[
        "finetune",
        p(&pt_b),
        "--graph",
        p(&onnx_a),
        "--data",
        p(&data),
        "--batch-size",
        "4",
        "-o",
        p(&tuned),
        "--json",
    ]));
    assert!(tuned.exists());
}

#[test]
fn graph_flag_errors_are_one_line_and_write_nothing() {
    let (_tmp, data) = tiny_mnist_dir(8, 5);
    // A state_dict of another architecture: its keys do not fit the graph.
    let other =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shrink-io/tests/fixtures/graph_weights/weights.pt");
    let o = shrink(&["eval", p(&other), "--graph", p(&gw("mlp.onnx")), "--data", p(&data)]);
    assert_one_line_error(&o, "weights.pt");
    let out = data.join("x.onnx");
    let o = shrink(&[
        "prune",
        p(&other),
        "--graph",
        p(&gw("mlp.onnx")),
        "--method",
        "filter-ln",
        "--sparsity",
        "0.5",
        "-o",
        p(&out),
    ]);
    assert_one_line_error(&o, "the state_dict has no `fc1.weight`");
    assert!(!out.exists());
    let o = shrink(&[
        "eval",
        p(&gw("mlp_b.pt")),
        "--graph",
        p(&gw("mlp.onnx")),
        "--data",
        p(&data),
        "--engine",
        "layers",
    ]);
    assert_one_line_error(&o, "--graph runs on the graph engine");
}
