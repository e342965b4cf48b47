//! The quant op fixtures (tests/fixtures/graph_ops/quant, onnxruntime's outputs) through the
//! compiled runtime plan: Quantize/Dequantize nodes that feed no int8 layer keep the reference
//! evaluation inside the plan, and every output equals onnxruntime's exactly, as the reference
//! executor's do (graph_ops_quant.rs).
mod graph_support;

use shrink_runtime::plan::{Plan, PlanOptions, StepKind};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph_ops/quant")
}

#[test]
fn every_quant_case_runs_through_the_plan_exactly() {
    let dir = dir();
    let cases = graph_support::cases(&dir);
    assert!(cases.len() >= 14, "expected the quant fixtures, found {} cases", cases.len());
    for name in &cases {
        let case = graph_support::load(&dir, name);
        let g = shrink_io::onnx::graph_import::load_graph(&case.onnx).unwrap();
        let plan = Plan::compile(&g, &PlanOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        // No Conv / Gemm / MatMul here: nothing becomes an int8 step (an `Add` may run as a
        // native element-wise step; its output must still equal onnxruntime's exactly).
        let int8 = |k: &StepKind| matches!(k, StepKind::Int8Conv(_) | StepKind::Int8Linear(_));
        assert!(plan.steps().iter().all(|s| !int8(&s.kind)), "{name}");
        let shapes: Vec<Vec<usize>> = case.inputs.iter().map(|t| t.shape.clone()).collect();
        let mut session = plan.session_for_shapes(&shapes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = session.run(&case.inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.len(), case.expected.len(), "{name}");
        for (k, (a, b)) in got.iter().zip(&case.expected).enumerate() {
            assert_eq!(graph_support::max_rel_err(&format!("{name} output {k}"), a, b), 0.0, "{name}");
        }
    }
}
