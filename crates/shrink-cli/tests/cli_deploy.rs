//! Deep Compression to a deploy file from the command line: prune → `shrink share` → `shrink
//! export --format shrink` → `shrink run`, whose logits equal `shrink eval`'s of the model it
//! came from; the file is much smaller than the dense one, and bad requests are one-line errors
//! that write nothing.
mod common;

use common::{assert_one_line_error, init_model_on, ok, shrink, tiny_mnist_dir};
use std::path::Path;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn shared_pruned_model_runs_from_a_small_deploy_file() {
    let (_tmp, data) = tiny_mnist_dir(64, 40);
    let dense = init_model_on(&data, "lenet-300-100", &data);
    let pruned = data.join("pruned.safetensors");
    let shared = data.join("shared.safetensors");
    ok(shrink(&["prune", p(&dense), "--method", "magnitude", "--sparsity", "0.9", "-o", p(&pruned)]));
    let out = ok(shrink(&["share", p(&pruned), "--bits", "4", "--json", "-o", p(&shared)]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for l in v["layers"].as_array().unwrap() {
        assert!(l["centroids"].as_u64().unwrap() <= 15, "a pruned layer keeps one of 16 codes for 0: {l}");
    }
    let (raw, packed) = (data.join("dense.shrink"), data.join("model.shrink"));
    ok(shrink(&["export", p(&dense), "--format", "shrink", "--encodings", "raw", "-o", p(&raw)]));
    let report = ok(shrink(&["export", p(&shared), "--format", "shrink", "--json", "-o", p(&packed)]));
    let r: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    let (raw_len, len) = (std::fs::metadata(&raw).unwrap().len(), std::fs::metadata(&packed).unwrap().len());
    assert_eq!(r["file_bytes"].as_u64().unwrap(), len);
    assert!(len * 20 < raw_len, "deploy file {len} B vs dense {raw_len} B");
    let (run_npy, eval_npy) = (data.join("run.npy"), data.join("eval.npy"));
    ok(shrink(&["run", p(&packed), "--data", p(&data), "--logits", p(&run_npy), "--json"]));
    ok(shrink(&["eval", p(&shared), "--data", p(&data), "--logits", p(&eval_npy), "--json"]));
    let (sa, a) = shrink_io::npy::read_npy(&run_npy).unwrap();
    let (sb, b) = shrink_io::npy::read_npy(&eval_npy).unwrap();
    assert_eq!(sa, sb);
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-4, "deploy file and model differ by {diff}");
}

#[test]
fn bad_share_and_deploy_requests_are_one_line_errors() {
    let (_tmp, data) = tiny_mnist_dir(8, 5);
    let dense = init_model_on(&data, "lenet-300-100", &data);
    let out = data.join("out.shrink");
    assert_one_line_error(&shrink(&["share", p(&dense), "--bits", "0", "-o", p(&out)]), "--bits");
    assert_one_line_error(
        &shrink(&["share", p(&dense), "--bits", "4", "--layer-bits", "nope=3", "-o", p(&out)]),
        "nope",
    );
    assert_one_line_error(
        &shrink(&["export", p(&dense), "--format", "shrink", "--encodings", "zip", "-o", p(&out)]),
        "zip",
    );
    assert!(!out.exists(), "a refused request wrote its output");
    let model = data.join("model.shrink");
    ok(shrink(&["export", p(&dense), "--format", "shrink", "-o", p(&model)]));
    let bytes = std::fs::read(&model).unwrap();
    let cut = data.join("cut.shrink");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert_one_line_error(&shrink(&["run", p(&cut), "--data", p(&data)]), "cut.shrink");
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 3] ^= 0x10;
    let bad = data.join("flipped.shrink");
    std::fs::write(&bad, &flipped).unwrap();
    assert_one_line_error(&shrink(&["run", p(&bad), "--data", p(&data)]), "flipped.shrink");
}
