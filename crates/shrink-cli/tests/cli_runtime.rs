//! The compiled runtime from the command line: `shrink run` (accuracy, examples/s, logits equal
//! to the reference executor's) and `shrink bench MODEL` (latency per batch, per-layer table),
//! on a tiny third-party model; the zoo `shrink bench --arch` keeps working.
mod common;

use common::{assert_one_line_error, ok, shrink, tiny_mnist_dir};
use std::path::{Path, PathBuf};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../shrink-io/tests/fixtures/graph_corpus/{name}.onnx"))
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn run_agrees_with_the_reference_executor() {
    let (_tmp, data) = tiny_mnist_dir(8, 25);
    let (plan_logits, ref_logits) = (data.join("plan.npy"), data.join("ref.npy"));
    let m = corpus("lenet_bn1d_softmax");
    let out = ok(shrink(&[
        "run",
        p(&m),
        "--data",
        p(&data),
        "--batch-size",
        "7",
        "--logits",
        p(&plan_logits),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["engine"], "plan");
    assert_eq!(v["samples"], 25);
    assert_eq!(v["batchnorms_folded"], 1);
    assert!(v["examples_per_s"].as_f64().unwrap() > 0.0);
    let e = ok(shrink(&[
        "eval",
        p(&m),
        "--data",
        p(&data),
        "--engine",
        "graph",
        "--logits",
        p(&ref_logits),
        "--json",
    ]));
    let e: serde_json::Value = serde_json::from_str(e.trim()).unwrap();
    assert_eq!(v["accuracy"], e["accuracy"]);
    let (sa, a) = shrink_io::npy::read_npy(&plan_logits).unwrap();
    let (sb, b) = shrink_io::npy::read_npy(&ref_logits).unwrap();
    assert_eq!(sa, vec![25, 10]);
    assert_eq!(sa, sb);
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "{diff}");
    // Text output names accuracy and speed.
    let text = ok(shrink(&["run", p(&m), "--data", p(&data), "--tune"]));
    assert!(text.contains("accuracy") && text.contains("examples/s"), "{text}");
}

#[test]
fn bench_reports_latency_per_batch_and_the_slowest_steps() {
    let m = corpus("lenet_bn1d_softmax");
    let out = ok(shrink(&["bench", p(&m), "--batch", "1,4", "--iters", "3", "--per-layer", "--json"]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[1]["batch"], 4);
    assert!(r.iter().all(|x| x["median_ms"].as_f64().unwrap() > 0.0));
    let steps = v["per_layer"][0]["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    assert!(steps.iter().any(|s| s["kernel"].as_str().unwrap().starts_with("dense-f32")), "{steps:?}");
    let pct: f64 = steps.iter().map(|s| s["percent"].as_f64().unwrap()).sum();
    assert!(pct <= 100.0 + 1e-6 && pct > 50.0, "{pct}");
    let text = ok(shrink(&["bench", p(&m), "--batch", "2", "--iters", "2", "--per-layer"]));
    assert!(text.contains("slowest steps") && text.contains("kernel"), "{text}");
}

#[test]
fn the_zoo_training_bench_still_runs() {
    let out = ok(shrink(&[
        "bench",
        "--arch",
        "lenet-300-100",
        "--batch-size",
        "8",
        "--steps",
        "2",
        "--warmup",
        "1",
    ]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["arch"], "lenet-300-100");
}

#[test]
fn missing_and_unsupported_models_are_one_line_errors() {
    let (_tmp, data) = tiny_mnist_dir(8, 5);
    let missing = data.join("missing.onnx");
    assert_one_line_error(&shrink(&["run", p(&missing), "--data", p(&data)]), "missing.onnx");
    let deploy = data.join("m.shrink");
    std::fs::write(&deploy, b"SHRKDPL1\x01\x00").unwrap(); // a truncated deploy file
    assert_one_line_error(&shrink(&["bench", p(&deploy)]), "m.shrink");
    assert_one_line_error(&shrink(&["bench", p(&corpus("lenet_bn1d_softmax")), "--iters", "0"]), "--iters");
}
