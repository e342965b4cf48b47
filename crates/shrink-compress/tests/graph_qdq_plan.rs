//! The committed QDQ models (tests/fixtures/qdq/{conv,mlp}.qdq.onnx, which onnxruntime ran)
//! through shrink-runtime's compiled plan: every quantized Conv / Gemm becomes one int8 step,
//! no QuantizeLinear is left to the reference evaluation, and the int8 outputs match
//! * the reference executor's: same argmax on ≥ 99.9 % of rows, and every value within
//!   `1e-4 · max(1, max |output|)` except where a requantization rounds the other way (a value
//!   within an f32 rounding of a tie between two codes): at most 1 % of the values, each within
//!   two steps of the last activation's scale;
//! * onnxruntime's: same argmax on ≥ 99.9 % of rows, max |diff| within two steps of that scale
//!   (the bound graph_qdq.rs applies to the reference executor).
use shrink_graph::{Graph, Op, Tensor};
use shrink_runtime::plan::{Plan, PlanOptions, StepKind};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qdq")
}

/// The f32 tensor `key` of a safetensors file.
fn tensor(path: &Path, key: &str) -> Tensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let v = st.tensor(key).unwrap_or_else(|_| panic!("{} has no `{key}`", path.display()));
    assert_eq!(v.dtype(), safetensors::Dtype::F32);
    let data = v.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    Tensor::f32(v.shape().to_vec(), data)
}

fn argmax(t: &Tensor) -> Vec<usize> {
    let c = t.shape[1];
    t.as_f32()
        .unwrap()
        .chunks(c)
        .map(|r| {
            r.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0
        })
        .collect()
}

fn last_act_scale(g: &Graph) -> f32 {
    g.nodes
        .iter()
        .rev()
        .find(|n| matches!(n.op, Op::QuantizeLinear(_)))
        .and_then(|n| g.const_value(n.inputs[1]))
        .map(|t| t.as_f32().unwrap()[0])
        .unwrap()
}

fn check(name: &str, int8_convs: usize, int8_linears: usize) {
    let g = shrink_io::onnx::graph_import::load_graph(&dir().join(format!("{name}.qdq.onnx"))).unwrap();
    let x = tensor(&dir().join(format!("{name}.data.safetensors")), "x");
    let ort = tensor(&dir().join(format!("{name}.ort.safetensors")), "qdq");
    let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
    let count = |f: fn(&StepKind) -> bool| plan.steps().iter().filter(|s| f(&s.kind)).count();
    assert_eq!(count(|k| matches!(k, StepKind::Int8Conv(_))), int8_convs, "{name}: int8 conv steps");
    assert_eq!(count(|k| matches!(k, StepKind::Int8Linear(_))), int8_linears, "{name}: int8 linear steps");
    assert_eq!(count(|k| matches!(k, StepKind::Reference(Op::QuantizeLinear(_)))), 0, "{name}: Q left");
    let shapes = vec![x.shape.clone()];
    let got = plan.session_for_shapes(&shapes).unwrap().run(std::slice::from_ref(&x)).unwrap().remove(0);
    let reference = shrink_runtime::run(&g, std::slice::from_ref(&x)).unwrap().remove(0);
    let step = last_act_scale(&g);
    let rows = got.shape[0];
    for (what, want) in [("reference", &reference), ("onnxruntime", &ort)] {
        assert_eq!(got.shape, want.shape);
        let same = argmax(&got).iter().zip(argmax(want)).filter(|(a, b)| **a == *b).count();
        assert!(same as f64 >= 0.999 * rows as f64, "{name} vs {what}: argmax agrees on {same} of {rows}");
        let (g, w) = (got.as_f32().unwrap(), want.as_f32().unwrap());
        let diff = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        let scale = w.iter().fold(1f32, |m, v| m.max(v.abs()));
        let off = g.iter().zip(w).filter(|(a, b)| (*a - *b).abs() > 1e-4 * scale).count();
        eprintln!(
            "{name} vs {what}: max |diff| {diff} (step {step}), {off} of {} values off, argmax {same}/{rows}",
            g.len()
        );
        assert!(diff <= 2.0 * step, "{name} vs {what}: max |diff| {diff} > 2 steps of {step}");
        if what == "reference" {
            assert!(off * 100 <= g.len(), "{name}: {off} of {} values differ from the reference", g.len());
        }
    }
}

#[test]
fn conv_qdq_runs_as_int8_steps() {
    check("conv", 2, 1);
}

#[test]
fn mlp_qdq_runs_as_int8_steps() {
    check("mlp", 0, 2);
}
