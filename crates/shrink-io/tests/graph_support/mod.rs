//! Runs ONNX test cases written by `tools/onnx_cases.py`: `NAME.onnx` + `NAME.io.safetensors`
//! (`in.K` inputs, `out.K` onnxruntime's outputs) through the graph importer and the runtime.
#![allow(dead_code)]

use safetensors::{Dtype, SafeTensors};
use shrink_graph::Tensor;
use std::path::{Path, PathBuf};

/// Inputs and expected outputs of a case.
pub struct Case {
    pub onnx: PathBuf,
    pub inputs: Vec<Tensor>,
    pub expected: Vec<Tensor>,
}

fn to_tensor(v: safetensors::tensor::TensorView) -> Tensor {
    let shape = v.shape().to_vec();
    let b = v.data();
    match v.dtype() {
        Dtype::F32 => {
            Tensor::f32(shape, b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
        }
        Dtype::I64 => {
            Tensor::i64(shape, b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
        }
        Dtype::BOOL => Tensor::bool(shape, b.iter().map(|&x| x != 0).collect()),
        Dtype::I8 => Tensor::i8(shape, b.iter().map(|&x| x as i8).collect()),
        Dtype::U8 => Tensor::u8(shape, b.to_vec()),
        Dtype::I32 => {
            Tensor::i32(shape, b.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect())
        }
        d => panic!("unsupported fixture dtype {d:?}"),
    }
}

/// Load case `name` from `dir`.
pub fn load(dir: &Path, name: &str) -> Case {
    let io = std::fs::read(dir.join(format!("{name}.io.safetensors"))).expect("fixture io file");
    let st = SafeTensors::deserialize(&io).expect("fixture io parses");
    let get = |prefix: &str| {
        let mut v = Vec::new();
        while let Ok(t) = st.tensor(&format!("{prefix}.{}", v.len())) {
            v.push(to_tensor(t));
        }
        v
    };
    Case { onnx: dir.join(format!("{name}.onnx")), inputs: get("in"), expected: get("out") }
}

/// Largest deviation of `got` from `want`, relative to `max(|want|, 1)`; panics on shape/dtype
/// mismatch. Integers and bools must be equal.
pub fn max_rel_err(what: &str, got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.shape, want.shape, "{what}: shape");
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    match (got.as_f32(), want.as_f32()) {
        (Some(g), Some(w)) => {
            g.iter().zip(w).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0, f32::max)
        }
        _ => {
            assert_eq!(got.data, want.data, "{what}: values");
            0.0
        }
    }
}

/// Import, run and compare case `name`: every output within `tol` (relative to max(|x|, 1)).
pub fn check(dir: &Path, name: &str, tol: f32) {
    let case = load(dir, name);
    let graph = shrink_io::onnx::graph_import::load_graph(&case.onnx)
        .unwrap_or_else(|e| panic!("{name}: import: {e}"));
    let got = shrink_runtime::run(&graph, &case.inputs).unwrap_or_else(|e| panic!("{name}: run: {e}"));
    assert_eq!(got.len(), case.expected.len(), "{name}: output count");
    for (k, (g, w)) in got.iter().zip(&case.expected).enumerate() {
        let err = max_rel_err(&format!("{name} output {k}"), g, w);
        assert!(err <= tol, "{name} output {k}: max relative error {err} > {tol}");
    }
}

/// Every case name (file stem of `*.onnx`) in `dir`, sorted.
pub fn cases(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "onnx" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    v.sort();
    v
}

/// Run `check` on every case, catching panics, and fail once listing every case that failed
/// (its error or panic message), so one broken op does not hide the others.
pub fn check_all(cases: &[String], check: impl Fn(&str) -> Result<(), String>) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|name| match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(name))) {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{name}: {e}")),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Some(format!("{name}: panic: {msg}"))
            }
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
