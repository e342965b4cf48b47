//! `--arch lenet5-caffe` (Deep Compression's 431K-parameter LeNet-5) from the command line:
//! it trains, goes through Deep Compression (per-layer pruning, per-layer codebook bits, Huffman,
//! compact deploy file) and `shrink run` predicts like the model it came from; `shrink train
//! --teacher` distils (and refuses a teacher of another input shape, naming the flag).
mod common;

use common::{assert_one_line_error, init_model_on, ok, shrink, tiny_mnist_dir};
use std::path::Path;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn lenet5_caffe_trains_compresses_and_runs_from_a_deploy_file() {
    let (_tmp, data) = tiny_mnist_dir(600, 100);
    let d = p(&data);
    let dense = data.join("dense.safetensors");
    let args = ["--data", d, "--epochs", "1", "--val-size", "100", "--batch-size", "32", "--json"];
    let out = ok(shrink(&[&["train", "--arch", "lenet5-caffe", "-o", p(&dense)][..], &args].concat()));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["arch"], "lenet5-caffe");
    assert!(v["test_accuracy"].as_f64().unwrap() > 0.3, "one epoch on 500 digits: {v}");
    // 431,080 f32 parameters: the safetensors file holds 1,724,320 B of them plus its header.
    let size = std::fs::metadata(&dense).unwrap().len();
    assert!((1_724_320..1_724_320 + 4096).contains(&size), "fp32 file {size} B");
    // Deep Compression as in the paper: per-layer sparsity, 8-bit conv / 5-bit fc codebooks.
    let (pruned, shared) = (data.join("pruned.safetensors"), data.join("shared.safetensors"));
    let spec = "conv1=0.34,conv2=0.88,fc1=0.92,fc2=0.81";
    ok(shrink(&[
        "prune",
        p(&dense),
        "--method",
        "magnitude",
        "--sparsity",
        "0",
        "--layer-sparsity",
        spec,
        "--layers",
        "conv1,conv2,fc1,fc2",
        "-o",
        p(&pruned),
    ]));
    let tuned = data.join("tuned.safetensors");
    let teacher = ["--teacher", p(&dense)];
    ok(shrink(&[&["train", "--init", p(&pruned), "-o", p(&tuned)][..], &args, &teacher].concat()));
    ok(shrink(&["share", p(&tuned), "--bits", "5", "--layer-bits", "conv1=8,conv2=8", "-o", p(&shared)]));
    let deploy = data.join("model.shrink");
    let r = ok(shrink(&[
        "export",
        p(&shared),
        "--format",
        "shrink",
        "--encodings",
        "all",
        "--compact",
        "--json",
        "-o",
        p(&deploy),
    ]));
    let r: serde_json::Value = serde_json::from_str(r.trim()).unwrap();
    let bytes = r["file_bytes"].as_u64().unwrap();
    assert!(bytes * 30 < size, "deploy file {bytes} B vs fp32 {size} B");
    let (run_npy, eval_npy) = (data.join("run.npy"), data.join("eval.npy"));
    ok(shrink(&["run", p(&deploy), "--data", d, "--logits", p(&run_npy), "--json"]));
    ok(shrink(&["eval", p(&shared), "--data", d, "--logits", p(&eval_npy), "--json"]));
    let (sa, a) = shrink_io::npy::read_npy(&run_npy).unwrap();
    let (sb, b) = shrink_io::npy::read_npy(&eval_npy).unwrap();
    assert_eq!(sa, sb);
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-3, "deploy file and model differ by {diff}");
}

#[test]
fn a_teacher_of_another_shape_is_a_one_line_error() {
    let (_tmp, data) = tiny_mnist_dir(64, 16);
    let student = init_model_on(&data, "lenet-300-100", &data);
    let cifar = data.join("resnet20.safetensors");
    ok(shrink(&["train", "--arch", "resnet20", "--data", p(&data), "--epochs", "0", "-o", p(&cifar)]));
    let out = data.join("out.safetensors");
    let o = shrink(&[
        "train",
        "--init",
        p(&student),
        "--data",
        p(&data),
        "--epochs",
        "1",
        "--val-size",
        "8",
        "--teacher",
        p(&cifar),
        "-o",
        p(&out),
    ]);
    assert_one_line_error(&o, "--teacher");
    assert!(!out.exists());
    let o = shrink(&[
        "train",
        "--init",
        p(&student),
        "--data",
        p(&data),
        "--teacher",
        p(&student),
        "--kd-alpha",
        "2",
        "-o",
        p(&out),
    ]);
    assert_one_line_error(&o, "--kd-alpha");
    assert!(!out.exists());
}
