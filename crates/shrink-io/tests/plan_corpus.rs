//! The compiled runtime plan (shrink_runtime::plan) on the model corpus: every fixture imported,
//! compiled (BatchNorm folded, activations fused, conv / linear kernels, the reference
//! evaluation for the rest) and run through a session; every output equals onnxruntime's
//! within 1e-4 relative (to max(|x|, 1)), as the reference executor's do (graph_corpus.rs).
mod graph_support;

use shrink_runtime::plan::{Plan, PlanOptions, StepKind};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph_corpus")
}

/// Compile, run twice in one session (the arena reused), compare both runs with onnxruntime.
fn check(name: &str, tune: bool) {
    let case = graph_support::load(&dir(), name);
    let graph = shrink_io::onnx::graph_import::load_graph(&case.onnx)
        .unwrap_or_else(|e| panic!("{name}: import: {e}"));
    let plan =
        Plan::compile(&graph, &PlanOptions { tune }).unwrap_or_else(|e| panic!("{name}: compile: {e}"));
    let shapes: Vec<Vec<usize>> = case.inputs.iter().map(|t| t.shape.clone()).collect();
    let mut session = plan.session_for_shapes(&shapes).unwrap_or_else(|e| panic!("{name}: session: {e}"));
    for pass in 0..2 {
        let got = session.run(&case.inputs).unwrap_or_else(|e| panic!("{name}: run: {e}"));
        assert_eq!(got.len(), case.expected.len(), "{name}: output count");
        for (k, (g, w)) in got.iter().zip(&case.expected).enumerate() {
            let err = graph_support::max_rel_err(&format!("{name} output {k}"), g, w);
            assert!(err <= 1e-4, "{name} output {k} (run {pass}): max relative error {err} > 1e-4");
        }
    }
}

macro_rules! corpus {
    ($($name:ident),* $(,)?) => {
        $(#[test]
        fn $name() {
            check(stringify!($name), false);
        })*

        #[test]
        fn every_fixture_has_a_test() {
            let listed = [$(stringify!($name)),*];
            for case in graph_support::cases(&dir()) {
                assert!(listed.contains(&case.as_str()), "fixture `{case}` has no test");
            }
        }
    };
}

corpus! {
    mobilenet_v2,
    mobilenet_v2_dynamo,
    mobilenet_v3_small,
    efficientnet_b0,
    shufflenet_v2,
    squeezenet1_1,
    densenet_block,
    resnext_block,
    resnet18,
    vit_tiny,
    bert_tiny,
    lenet_bn1d_softmax,
    lenet_bn1d_batch10,
}

/// The passes and kernels really apply to the corpus: MobileNetV2's ReLU6 clips are fused (its
/// exporter already folded the BatchNorms), its convolutions run as kernels (depthwise and
/// pointwise ones included); LeNet's BatchNorm1d is folded into its Gemm.
#[test]
fn mobilenet_v2_is_folded_fused_and_lowered() {
    let case = graph_support::load(&dir(), "mobilenet_v2");
    let graph = shrink_io::onnx::graph_import::load_graph(&case.onnx).unwrap();
    let plan = Plan::compile(&graph, &PlanOptions::default()).unwrap();
    let s = plan.stats();
    assert!(s.activations_fused >= 30, "{s:?}");
    let convs = plan.steps().iter().filter(|st| matches!(st.kind, StepKind::Conv(_))).count();
    assert_eq!(convs, graph.nodes.iter().filter(|n| n.op.def().name() == "Conv").count());
    let shapes: Vec<Vec<usize>> = case.inputs.iter().map(|t| t.shape.clone()).collect();
    let session = plan.session_for_shapes(&shapes).unwrap();
    let kernels: Vec<&str> = (0..plan.steps().len()).map(|i| session.kernel_name(i)).collect();
    for k in ["dense-f32-depthwise", "dense-f32-pointwise", "dense-f32-im2col"] {
        assert!(kernels.contains(&k), "{k} not used: {kernels:?}");
    }
    let lenet = graph_support::load(&dir(), "lenet_bn1d_softmax");
    let graph = shrink_io::onnx::graph_import::load_graph(&lenet.onnx).unwrap();
    let plan = Plan::compile(&graph, &PlanOptions::default()).unwrap();
    assert_eq!(plan.stats().batchnorms_folded, 1);
    assert!(plan.steps().iter().all(|st| !st.op.starts_with("BatchNorm")));
}

/// Tuned plans (kernels chosen by timing) give the same outputs.
#[test]
fn tuned_plan_matches_onnxruntime() {
    check("lenet_bn1d_batch10", true);
    check("bert_tiny", true);
}
