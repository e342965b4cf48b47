//! `shrink sweep quant` and `shrink histogram` end to end on a briefly trained lenet-300-100:
//! real outcomes (8 bits ≈ fp32, 1 bit collapses, every cell from the pristine weights, same
//! accuracy as `quantize` + `eval`), the files, and one-line errors that write nothing.
mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A temp dir with tiny MNIST in `data/` and a briefly trained lenet-300-100 `model.safetensors`.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    trained_lenet(512, 512, 10, Some(32))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn cell<'a>(report: &'a Value, method: &str, bits: u64, q: &str) -> &'a Value {
    report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["method"] == method && c["bits"] == bits && c["q"] == q)
        .unwrap_or_else(|| panic!("no cell {method} {bits} {q}"))
}

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

#[test]
fn sweep_quant_tables_figures_and_real_outcomes() {
    let (tmp, data, model) = setup();
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let out = tmp.path().join("sweep");
    let stdout = ok(shrink(&[
        "sweep",
        "quant",
        m,
        "--data",
        d,
        "--method",
        "clip,asymmetric",
        "--bits",
        "1,8",
        "--range",
        "max,0.5",
        "--out-dir",
        out.to_str().unwrap(),
    ]));
    assert!(stdout.contains("## clip") && stdout.contains("## asymmetric"), "{stdout}");
    for f in [
        "table.md",
        "table.csv",
        "table.json",
        "clip-accuracy-vs-bits.png",
        "clip-accuracy-vs-q.png",
        "asymmetric-accuracy-vs-bits.png",
        "asymmetric-accuracy-vs-q.png",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    assert_eq!(png_size(&out.join("clip-accuracy-vs-bits.png")), (960, 600));
    let csv = std::fs::read_to_string(out.join("table.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 8, "{csv}");
    let r = read_json(&out.join("table.json"));
    assert_eq!(r["cells"].as_array().unwrap().len(), 8);
    let fp32 = r["fp32_accuracy"].as_f64().unwrap();
    assert!(fp32 > 0.5, "the tiny model should learn: {fp32}");
    for method in ["clip", "asymmetric"] {
        let a8 = cell(&r, method, 8, "max")["accuracy"].as_f64().unwrap();
        let a1 = cell(&r, method, 1, "max")["accuracy"].as_f64().unwrap();
        assert!((a8 - fp32).abs() <= 0.005, "{method} 8 bits {a8} vs fp32 {fp32}");
        assert!(a1 < fp32 - 0.1, "{method} 1 bit should collapse: {a1} vs {fp32}");
    }

    // The last cells of the grid equal a fresh `quantize` + `eval` (nothing compounds), and the
    // baked-value path equals the fake-quant path `shrink eval` takes.
    for (method, bits, q) in [("asymmetric", "8", "0.5"), ("clip", "8", "max")] {
        let file = tmp.path().join(format!("{method}{bits}.safetensors"));
        ok(shrink(&[
            "quantize",
            m,
            "--scheme",
            method,
            "--bits",
            bits,
            "--range",
            q,
            "-o",
            file.to_str().unwrap(),
        ]));
        let e: Value =
            serde_json::from_str(&ok(shrink(&["eval", file.to_str().unwrap(), "--data", d, "--json"])))
                .unwrap();
        let want = e["accuracy"].as_f64().unwrap();
        let got = cell(&r, method, bits.parse().unwrap(), q)["accuracy"].as_f64().unwrap();
        assert!((want - got).abs() < 1e-9, "{method} {bits} {q}: sweep {got} vs quantize+eval {want}");
    }
    let fq = tmp.path().join("fq");
    ok(shrink(&[
        "sweep",
        "quant",
        m,
        "--data",
        d,
        "--method",
        "clip,asymmetric",
        "--bits",
        "1,8",
        "--range",
        "max,0.5",
        "--fake-quant",
        "--format",
        "svg",
        "--out-dir",
        fq.to_str().unwrap(),
    ]));
    assert!(fq.join("clip-accuracy-vs-q.svg").is_file());
    let f = read_json(&fq.join("table.json"));
    for (a, b) in r["cells"].as_array().unwrap().iter().zip(f["cells"].as_array().unwrap()) {
        let (x, y) = (a["correct"].as_i64().unwrap(), b["correct"].as_i64().unwrap());
        assert!((x - y).abs() <= 1, "baked {a} vs fake quant {b}");
    }
}

#[test]
fn bad_sweep_and_histogram_input_is_one_line_error_and_writes_nothing() {
    let (tmp, data, model) = setup();
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let sweeps: &[(&[&str], &str)] = &[
        (&["--bits", "0"], "--bits"),
        (&["--bits", "2,17"], "--bits"),
        (&["--bits", "-1"], "--bits"),
        (&["--bits", "x"], "--bits"),
        (&["--method", "symmetric", "--bits", "1,4"], "--bits"),
        (&["--q", "0"], "--range"),
        (&["--q", "0.5,-1"], "--range"),
        (&["--method", "float8"], "float8"),
        (&["--format", "jpg"], "--format"),
        (&["--batch-size", "0"], "--batch-size"),
    ];
    for (args, needle) in sweeps {
        let mut full = vec!["sweep", "quant", m, "--data", d, "--out-dir", o];
        full.extend_from_slice(args);
        assert_one_line_error(&shrink(&full), needle);
        assert!(!out.exists(), "{args:?} created {o}");
    }
    let hists: &[(&[&str], &str)] = &[
        (&["--quantized", "clip", "--bits", "0", "--q", "1"], "--bits"),
        (&["--quantized", "clip", "--bits", "17"], "--bits"),
        (&["--quantized", "clip"], "--bits"),
        (&["--bits", "4"], "--quantized"),
        (&["--quantized", "clip", "--bits", "4", "--q", "0"], "--range"),
        (&["--quantized", "clip", "--bits", "4", "--q", "0.5,1"], "--range"),
        (&["--q", "abc"], "--range"),
        (&["--bins", "0"], "--bins"),
        (&["--quantized", "float8", "--bits", "4"], "float8"),
    ];
    for (args, needle) in hists {
        let mut full = vec!["histogram", m, "-o", o];
        full.extend_from_slice(args);
        assert_one_line_error(&shrink(&full), needle);
        assert!(!out.exists(), "{args:?} created {o}");
    }
}

#[test]
fn histogram_writes_figures_and_the_fraction_inside_q() {
    let (tmp, _data, model) = setup();
    let m = model.to_str().unwrap();
    let out = tmp.path().join("hist");
    let stdout = ok(shrink(&["histogram", m, "-o", out.to_str().unwrap(), "--q", "0.01,0.05,1"]));
    assert!(stdout.contains("inside ±0.05"), "{stdout}");
    for f in ["all-weights.png", "fc1.weight.png", "fc2.weight.png", "fc3.weight.png", "summary.md"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    assert_eq!(png_size(&out.join("all-weights.png")), (960, 600));
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["tensors"].as_array().unwrap().len(), 3, "weights only by default");
    let all = &s["all"];
    assert_eq!(all["count"].as_u64().unwrap(), 784 * 300 + 300 * 100 + 100 * 10);
    let inside: Vec<f64> = all["inside"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).collect();
    assert_eq!(inside.len(), 3);
    assert!(inside[0] < inside[1] && inside[1] <= inside[2], "{inside:?}");
    assert_eq!(inside[2], 1.0, "freshly trained weights are all inside ±1");

    // Quantized overlay: 2-bit clip uses at most 4 levels per tensor.
    let qout = tmp.path().join("hist-q");
    ok(shrink(&[
        "histogram",
        m,
        "-o",
        qout.to_str().unwrap(),
        "--quantized",
        "clip",
        "--bits",
        "2",
        "--q",
        "0.05",
        "--format",
        "svg",
    ]));
    assert!(qout.join("all-weights.svg").is_file() && qout.join("fc1.weight.svg").is_file());
    let s = read_json(&qout.join("summary.json"));
    for t in s["tensors"].as_array().unwrap() {
        assert!(t["quantized_levels"].as_u64().unwrap() <= 4, "{t}");
    }
    assert!(s["quantized"].as_str().unwrap().contains("clip 2 bits"));
}
