//! `shrink qat` end to end: the written model keeps its quantizers (`shrink eval` reproduces
//! the reported accuracy, weights on the grid; its deploy file runs the same), a resumed run ends byte-identical to an
//! uninterrupted one, and bad flags are one-line errors that write nothing.
mod common;
use common::*;
use std::path::Path;

fn qat(model: &Path, data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "qat",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--batch-size",
        "64",
        "--json",
    ];
    args.extend(extra);
    shrink(&args)
}

#[test]
fn lsq_model_file_evaluates_like_the_run_reported() {
    let (tmp, data, model) = trained_lenet(256, 128, 1, None);
    let out = tmp.path().join("lsq.safetensors");
    let teacher = model.to_str().unwrap().to_string();
    let o = qat(
        &model,
        &data,
        &out,
        &["--method", "lsq", "--bits", "4,4", "--epochs", "1", "--teacher", &teacher],
    );
    let report: serde_json::Value = serde_json::from_str(&ok(o)).unwrap();
    let o = shrink(&["eval", out.to_str().unwrap(), "--data", data.to_str().unwrap(), "--json"]);
    let eval: serde_json::Value = serde_json::from_str(&ok(o)).unwrap();
    assert_eq!(eval["accuracy"], report["test_accuracy"]);
    assert!(report["compression_rate"].as_f64().unwrap() > 6.0, "{report}");
    // Three layers: weights at 4 bits, the inputs of fc2 and fc3 quantized.
    let layers = report["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert!(layers[0]["input"].is_null() && !layers[1]["input"].is_null());
    // The activation quantizers export as Q/DQ nodes: the deploy file runs like `shrink eval`,
    // and the ONNX file holds the same QuantizeLinear nodes.
    let deploy = tmp.path().join("lsq.shrink");
    ok(shrink(&["export", out.to_str().unwrap(), "--format", "shrink", "-o", deploy.to_str().unwrap()]));
    let o = shrink(&["run", deploy.to_str().unwrap(), "--data", data.to_str().unwrap(), "--json"]);
    let run: serde_json::Value = serde_json::from_str(&ok(o)).unwrap();
    assert_eq!(run["accuracy"], eval["accuracy"], "{run}");
    let onnx = tmp.path().join("lsq.onnx");
    ok(shrink(&["export", out.to_str().unwrap(), "--format", "onnx", "-o", onnx.to_str().unwrap()]));
    let bytes = std::fs::read(&onnx).unwrap();
    let quantize_nodes = bytes.windows(14).filter(|w| w == b"QuantizeLinear").count();
    assert!(quantize_nodes >= 2, "{quantize_nodes} QuantizeLinear in the ONNX file");
}

#[test]
fn resumed_run_ends_byte_identical() {
    let (tmp, data, model) = trained_lenet(256, 64, 1, None);
    let full = tmp.path().join("full.safetensors");
    let part = tmp.path().join("part.safetensors");
    let ck = tmp.path().join("part.ckpt");
    let flags = ["--method", "lsq", "--bits", "3,3", "--per-channel", "--schedule", "constant"];
    let two: Vec<&str> = flags.iter().copied().chain(["--epochs", "2"]).collect();
    ok(qat(&model, &data, &full, &two));
    let mut one: Vec<&str> = flags.iter().copied().chain(["--epochs", "1", "--keep-checkpoint"]).collect();
    one.extend(["--checkpoint", ck.to_str().unwrap()]);
    ok(qat(&model, &data, &part, &one));
    std::fs::remove_file(&part).unwrap();
    let mut resume = two.clone();
    resume.extend([
        "--resume",
        ck.to_str().unwrap(),
        "--checkpoint",
        ck.to_str().unwrap(),
        "--keep-checkpoint",
    ]);
    ok(qat(&model, &data, &part, &resume));
    assert!(std::fs::read(&full).unwrap() == std::fs::read(&part).unwrap(), "resumed run differs");
    // A resume with other quantization settings is refused, naming the flag.
    let mut bad = two.clone();
    bad[3] = "4,4";
    bad.extend(["--resume", ck.to_str().unwrap()]);
    assert_one_line_error(&qat(&model, &data, &tmp.path().join("x.safetensors"), &bad), "--bits");
}

#[test]
fn bad_flags_are_one_line_errors_and_write_nothing() {
    let (tmp, data, model) = trained_lenet(128, 64, 1, None);
    let out = tmp.path().join("out.safetensors");
    for (extra, needle) in [
        (&["--bits", "9"][..], "--bits"),
        (&["--bits", "4,x"][..], "--bits"),
        (&["--bits", "4", "--method", "pact"][..], "--method"),
        (&["--bits", "4", "--first-last-bits", "1"][..], "--first-last-bits"),
        (&["--bits", "4", "--kd-alpha", "2"][..], "--kd-alpha"),
        (&["--bits", "4", "--range", "sometimes"][..], "--range"),
    ] {
        assert_one_line_error(&qat(&model, &data, &out, extra), needle);
        assert!(!out.exists(), "{extra:?} wrote an output");
    }
}
