//! `shrink quantize` end to end: bad input gives a one-line error, a non-zero exit and no output
//! file; a bit-packed model evaluates exactly like the fake-quant model and is ~bits/32 the size.
mod common;
use common::*;
use std::path::{Path, PathBuf};

/// A temp dir with tiny MNIST in `data/` and a briefly trained lenet-300-100 `model.safetensors`.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    trained_lenet(256, 256, 1, None)
}

fn eval_json(model: &Path, data: &Path) -> serde_json::Value {
    let o = shrink(&["eval", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "eval: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn bad_input_is_one_line_error_and_writes_nothing() {
    let (tmp, data, model) = setup();
    let out = tmp.path().join("out.safetensors");
    let (m, o, d) = (model.to_str().unwrap(), out.to_str().unwrap(), data.to_str().unwrap());
    let cases: &[(&[&str], &str)] = &[
        (&["--scheme", "clip", "--bits", "0", "--range", "1"], "bits"),
        (&["--scheme", "clip", "--bits", "17", "--range", "1"], "bits"),
        (&["--scheme", "asymmetric", "--bits", "-3"], "bits"),
        (&["--scheme", "symmetric", "--bits", "1"], "bits"),
        (&["--scheme", "clip", "--bits", "4", "--range", "0"], "range"),
        (&["--scheme", "clip", "--bits", "4", "--range", "-1"], "range"),
        (&["--scheme", "clip", "--bits", "4", "--range", "p0"], "percentile"),
        (&["--scheme", "float8", "--bits", "4"], "float8"),
        (&["--scheme", "symmetric", "--bits", "4", "--per-channel", "--include", "bias"], "per-channel"),
        (&["--scheme", "symmetric", "--bits", "4", "--include", "gamma"], "gamma"),
        (&["--scheme", "symmetric", "--bits", "8", "--activations", "0", "--data", d], "activations"),
        (&["--scheme", "symmetric", "--bits", "8", "--activations", "17", "--data", d], "activations"),
        (&["--scheme", "symmetric", "--bits", "8", "--activations", "8"], "--data"),
        (
            &["--scheme", "symmetric", "--bits", "8", "--activations", "8", "--data", d, "--act-range", "p0"],
            "act-range",
        ),
        (&["--scheme", "symmetric", "--bits", "8", "--activations", "8", "--data", "nope/"], "nope"),
    ];
    for (args, needle) in cases {
        let mut full = vec!["quantize", m];
        full.extend_from_slice(args);
        full.extend_from_slice(&["-o", o]);
        let r = shrink(&full);
        assert_one_line_error(&r, needle);
        assert!(!out.exists(), "{args:?} wrote {o}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "only data/ and the model: {leftovers:?}");
}

#[test]
fn packed_file_evaluates_like_fake_quant_and_is_small() {
    let (tmp, data, model) = setup();
    let fp32 = eval_json(&model, &data);
    for (scheme, bits, range, pc) in
        [("asymmetric", "4", "max", true), ("clip", "4", "0.3", false), ("symmetric", "8", "mse", false)]
    {
        let fake = tmp.path().join(format!("{scheme}.safetensors"));
        let packed = tmp.path().join(format!("{scheme}.shrinkpack"));
        for (out, extra) in [(&fake, None), (&packed, Some("--packed"))] {
            let mut args = vec![
                "quantize",
                model.to_str().unwrap(),
                "--scheme",
                scheme,
                "--bits",
                bits,
                "--range",
                range,
                "-o",
                out.to_str().unwrap(),
            ];
            if pc {
                args.push("--per-channel");
            }
            args.extend(extra);
            let o = shrink(&args);
            assert!(o.status.success(), "quantize {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        }
        let (a, b) = (eval_json(&fake, &data), eval_json(&packed, &data));
        assert_eq!(a["accuracy"], b["accuracy"], "{scheme}");
        assert_eq!(a["loss"], b["loss"], "{scheme}: packed must give the fake-quant model's exact outputs");
        if bits == "8" {
            let d = (a["accuracy"].as_f64().unwrap() - fp32["accuracy"].as_f64().unwrap()).abs();
            assert!(d <= 0.02, "8-bit accuracy {a} vs fp32 {fp32}");
        }
        let size = |p: &Path| std::fs::metadata(p).unwrap().len() as f64;
        let ratio = size(&model) / size(&packed);
        let bound = if bits == "4" { 7.5 } else { 3.7 };
        assert!(ratio >= bound, "{scheme} {bits}-bit packed file is only {ratio:.2}x smaller than fp32");
    }
}

#[test]
fn activation_quantization_is_calibrated_stored_and_packed() {
    let (tmp, data, model) = setup();
    let fp32 = eval_json(&model, &data);
    let mut acc = Vec::new();
    for (bits, range) in [("8", "minmax"), ("2", "mse")] {
        let fake = tmp.path().join(format!("a{bits}.safetensors"));
        let packed = tmp.path().join(format!("a{bits}.shrinkpack"));
        for (out, extra) in [(&fake, None), (&packed, Some("--packed"))] {
            let mut args = vec![
                "quantize",
                model.to_str().unwrap(),
                "--scheme",
                "symmetric",
                "--bits",
                "8",
                "--activations",
                bits,
                "--act-range",
                range,
                "--data",
                data.to_str().unwrap(),
                "--calib-batches",
                "2",
                "--json",
                "-o",
                out.to_str().unwrap(),
            ];
            args.extend(extra);
            let o = shrink(&args);
            assert!(o.status.success(), "quantize {args:?}: {}", String::from_utf8_lossy(&o.stderr));
            let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            // lenet-300-100: fc1 reads the (signed) input, fc2 and fc3 read ReLUs.
            assert_eq!(j["activation_points"].as_array().unwrap().len(), 3, "{j}");
            assert_eq!(j["activation_bits"], bits.parse::<u64>().unwrap());
        }
        let (a, b) = (eval_json(&fake, &data), eval_json(&packed, &data));
        assert_eq!(a["loss"], b["loss"], "a{bits}: packed must keep the activation quantizers");
        acc.push(a["loss"].as_f64().unwrap());
    }
    let fp32_loss = fp32["loss"].as_f64().unwrap();
    assert!((acc[0] - fp32_loss).abs() < 0.02, "8-bit activations: loss {} vs fp32 {fp32_loss}", acc[0]);
    assert!(acc[1] != acc[0], "2-bit activations must change the outputs");
}
