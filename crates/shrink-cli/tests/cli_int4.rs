//! Int4 weight-only export from the command line: `shrink export --format shrink --int4` writes
//! 4-bit codes, `shrink run` executes them with the int4 kernels of the runtime plan, close to
//! the f32 model; a pruned model's deploy file runs its sparse kernels and equals the model.
mod common;

use common::{assert_one_line_error, init_model_on, ok, shrink, tiny_mnist_dir};
use std::path::Path;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The kernels the plan runs for `model` at batch 1 (`shrink bench --per-layer --json`).
fn kernels(model: &Path) -> Vec<String> {
    let out = ok(shrink(&["bench", p(model), "--batch", "1", "--iters", "1", "--per-layer", "--json"]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v["per_layer"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kernel"].as_str().unwrap().to_string())
        .collect()
}

fn logits(model: &Path, data: &Path, cmd: &str) -> Vec<f32> {
    let npy = data.join(format!("{}-{cmd}.npy", model.file_name().unwrap().to_str().unwrap()));
    ok(shrink(&[cmd, p(model), "--data", p(data), "--logits", p(&npy), "--json"]));
    shrink_io::npy::read_npy(&npy).unwrap().1
}

#[test]
fn int4_export_runs_with_int4_kernels_close_to_the_f32_model() {
    let (_tmp, data) = tiny_mnist_dir(64, 40);
    let dense = init_model_on(&data, "lenet-300-100", &data);
    let (raw, q4) = (data.join("dense.shrink"), data.join("int4.shrink"));
    ok(shrink(&["export", p(&dense), "--format", "shrink", "--encodings", "raw", "-o", p(&raw)]));
    ok(shrink(&["export", p(&dense), "--format", "shrink", "--int4", "-o", p(&q4)]));
    let (raw_len, len) = (std::fs::metadata(&raw).unwrap().len(), std::fs::metadata(&q4).unwrap().len());
    assert!(len * 7 < raw_len, "int4 deploy file {len} B vs f32 {raw_len} B");
    let k = kernels(&q4);
    assert_eq!(k.iter().filter(|k| *k == "int4-u8act").count(), 3, "{k:?}");
    let (a, b) = (logits(&q4, &data, "run"), logits(&dense, &data, "eval"));
    assert_eq!(a.len(), b.len());
    let err: f32 =
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / b.iter().map(|y| y.abs()).sum::<f32>();
    assert!(err < 0.15, "int4 logits differ from f32 by {err} (relative L1)");
}

#[test]
fn pruned_model_deploy_file_runs_sparse_kernels_and_equals_the_model() {
    let (_tmp, data) = tiny_mnist_dir(64, 40);
    let dense = init_model_on(&data, "lenet-300-100", &data);
    let pruned = data.join("pruned.safetensors");
    ok(shrink(&["prune", p(&dense), "--method", "magnitude", "--sparsity", "0.9", "-o", p(&pruned)]));
    let file = data.join("pruned.shrink");
    ok(shrink(&["export", p(&pruned), "--format", "shrink", "-o", p(&file)]));
    let k = kernels(&file);
    assert!(k.iter().filter(|k| k.starts_with("sparse-")).count() >= 2, "{k:?}");
    let (a, b) = (logits(&file, &data, "run"), logits(&pruned, &data, "eval"));
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(diff <= 1e-4, "sparse plan and masked model differ by {diff}");
}

#[test]
fn int4_requests_that_cannot_be_served_are_errors() {
    let (_tmp, data) = tiny_mnist_dir(8, 5);
    let dense = init_model_on(&data, "lenet-300-100", &data);
    let out = data.join("out.pt");
    assert_one_line_error(
        &shrink(&["export", p(&dense), "--format", "pt", "--int4", "-o", p(&out)]),
        "--int4",
    );
    assert_one_line_error(
        &shrink(&["export", p(&dense), "--format", "shrink", "--int4", "--int8", "-o", p(&out)]),
        "--int4",
    );
    assert!(!out.exists());
}
