//! `shrink mixed` end to end on a briefly trained lenet-300-100: the allocation meets the
//! average-bits budget, the report files are written, the `-o` model (fake quant or bit-packed)
//! evaluates with plain `shrink eval` to the reported accuracy, and bad input is a one-line error
//! that writes nothing.
mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A temp dir with tiny MNIST in `data/` and a briefly trained lenet-300-100 `model.safetensors`.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    trained_lenet(512, 256, 4, Some(32))
}

fn eval_accuracy(model: &Path, data: &Path) -> f64 {
    let out = ok(shrink(&["eval", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    v["accuracy"].as_f64().unwrap()
}

fn row<'a>(report: &'a Value, config: &str) -> &'a Value {
    report["comparison"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["config"] == config)
        .unwrap_or_else(|| panic!("no row {config}"))
}

#[test]
fn allocation_meets_the_budget_and_the_model_evaluates() {
    let (tmp, data, model) = setup();
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    for (avg, packed) in [("3", false), ("2.5", true)] {
        let out_dir = tmp.path().join(format!("mixed-{avg}"));
        let out = tmp.path().join(if packed { "mixed.shrink" } else { "mixed.safetensors" });
        let mut args = vec![
            "mixed",
            m,
            "--data",
            d,
            "--scheme",
            "symmetric",
            "--avg-bits",
            avg,
            "--candidates",
            "2,3,4,8",
            "--calib-samples",
            "256",
            "--metric",
            "loss",
            "--out-dir",
            out_dir.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--json",
        ];
        if packed {
            args.push("--packed");
        }
        let report: Value = serde_json::from_str(&ok(shrink(&args))).unwrap();
        for f in ["mixed.md", "mixed.json", "sensitivity.csv", "comparison.csv"] {
            assert!(out_dir.join(f).is_file(), "{f} missing");
        }
        assert_eq!(report["calib_samples"], 256);
        let layers = report["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 3, "lenet-300-100 has three weight tensors");
        let n: u64 = layers.iter().map(|l| l["params"].as_u64().unwrap()).sum();
        let used: u64 =
            layers.iter().map(|l| l["params"].as_u64().unwrap() * l["chosen"][0].as_u64().unwrap()).sum();
        let avg_f: f64 = avg.parse().unwrap();
        assert!(used as f64 <= avg_f * n as f64, "{used} bits over {n} weights exceeds {avg}");
        assert_eq!(report["budget_bits"][0].as_u64().unwrap(), (avg_f * n as f64).floor() as u64);

        let mixed = row(&report, "mixed");
        assert_eq!(mixed["within_budget"], true);
        assert!(mixed["average_bits"].as_f64().unwrap() <= avg_f + 1e-12);
        let chosen: Vec<u64> = layers.iter().map(|l| l["chosen"][0].as_u64().unwrap()).collect();
        let bits: Vec<u64> = mixed["bits"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap()).collect();
        assert_eq!(chosen, bits);
        // Uniform at the budget (3) is a candidate: the exact allocation's predicted cost is no worse.
        if avg == "3" {
            let u = row(&report, "uniform 3");
            assert_eq!(u["within_budget"], true);
            assert!(
                mixed["predicted_cost"].as_f64().unwrap() <= u["predicted_cost"].as_f64().unwrap() + 1e-9
            );
        } else {
            assert_eq!(row(&report, "uniform 2")["within_budget"], true);
            assert_eq!(row(&report, "uniform 3")["within_budget"], false);
        }
        // Quantized files are smaller than fp32 when packed.
        let fp32 = row(&report, "fp32");
        assert!(mixed["packed_bytes"].as_u64().unwrap() < fp32["packed_bytes"].as_u64().unwrap() / 4);
        // The written model evaluates with plain `shrink eval` to the reported test accuracy.
        let acc = eval_accuracy(&out, &data);
        assert!((acc - mixed["accuracy"].as_f64().unwrap()).abs() < 1e-9, "eval {acc} vs report {mixed}");
        if packed {
            assert_eq!(std::fs::metadata(&out).unwrap().len(), mixed["packed_bytes"].as_u64().unwrap());
        }
    }
    // Several budgets from one sensitivity sweep: one allocation per budget, each within it.
    let out_dir = tmp.path().join("mixed-list");
    let report: Value = serde_json::from_str(&ok(shrink(&[
        "mixed",
        m,
        "--data",
        d,
        "--scheme",
        "asymmetric",
        "--avg-bits",
        "2,3.5",
        "--candidates",
        "1,2,4,8",
        "--calib-samples",
        "128",
        "--metric",
        "kl",
        "--out-dir",
        out_dir.to_str().unwrap(),
        "--json",
    ])))
    .unwrap();
    assert_eq!(report["metric"], "kl");
    for l in report["layers"].as_array().unwrap() {
        assert_eq!(l["chosen"].as_array().unwrap().len(), 2);
        assert!(l["kl"].as_array().unwrap().iter().all(|k| k.as_f64().unwrap() >= -1e-9), "KL >= 0: {l}");
    }
    let rows = report["comparison"].as_array().unwrap();
    // fp32, then uniform 2 + mixed, then uniform 3 + uniform 4 + mixed.
    let configs: Vec<&str> = rows.iter().map(|r| r["config"].as_str().unwrap()).collect();
    assert_eq!(configs, ["fp32", "uniform 2", "mixed", "uniform 3", "uniform 4", "mixed"]);
    for r in rows.iter().filter(|r| r["config"] == "mixed") {
        assert_eq!(r["within_budget"], true);
        assert!(r["average_bits"].as_f64().unwrap() <= r["budget"].as_f64().unwrap() + 1e-12);
    }
}

#[test]
fn bad_input_is_one_line_error_and_writes_nothing() {
    let (tmp, data, model) = setup();
    let out = tmp.path().join("out.safetensors");
    let out_dir = tmp.path().join("report");
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let missing = tmp.path().join("nope-data");
    let missing = missing.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--data", d, "--scheme", "symmetric", "--avg-bits", "1.5"], "avg-bits"),
        (&["--data", d, "--scheme", "clip", "--avg-bits", "3", "--candidates", "4,8"], "avg-bits"),
        (&["--data", d, "--scheme", "clip", "--avg-bits", "20"], "avg-bits"),
        (&["--data", d, "--scheme", "clip", "--avg-bits", "nan"], "avg-bits"),
        (&["--data", d, "--scheme", "clip", "--avg-bits", "3", "--candidates", "0,4"], "candidates"),
        (&["--data", d, "--scheme", "clip", "--avg-bits", "3", "--candidates", "2,17"], "candidates"),
        (&["--data", d, "--scheme", "symmetric", "--avg-bits", "3", "--candidates", "1,4"], "candidates"),
        (&["--data", d, "--scheme", "clip", "--avg-bits", "3", "--calib-samples", "0"], "calib-samples"),
        (&["--data", d, "--scheme", "clip", "--avg-bits", "3", "--range", "0"], "range"),
        (&["--data", d, "--scheme", "float8", "--avg-bits", "3"], "float8"),
        (&["--data", d, "--scheme", "clip", "--avg-bits", "3,4"], "single --avg-bits"),
        (&["--data", missing, "--scheme", "clip", "--avg-bits", "3"], "nope-data"),
    ];
    for (args, needle) in cases {
        let mut full = vec!["mixed", m];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--out-dir", out_dir.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        let r = shrink(&full);
        assert_one_line_error(&r, needle);
        assert!(!out.exists() && !out_dir.exists(), "{args:?} wrote something");
    }
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "only data/ and the model: {leftovers:?}");
}
