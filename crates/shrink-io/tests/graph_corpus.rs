//! The model corpus (tools/onnx_corpus.py): real architectures exported by both PyTorch ONNX
//! exporters at several opsets, imported into the open graph IR and run by shrink-runtime;
//! every output must equal onnxruntime's within 1e-4 relative (to max(|x|, 1)).
mod graph_support;

use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph_corpus")
}

macro_rules! corpus {
    ($($name:ident),* $(,)?) => {
        $(#[test]
        fn $name() {
            graph_support::check(&dir(), stringify!($name), 1e-4);
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

/// The symbolic batch of the exported graphs really is symbolic: another batch size runs.
#[test]
fn symbolic_batch_accepts_other_batch_sizes() {
    let case = graph_support::load(&dir(), "mobilenet_v2");
    let graph = shrink_io::onnx::graph_import::load_graph(&case.onnx).unwrap();
    let x = &case.inputs[0];
    let one = shrink_graph::Tensor::f32(
        [1].into_iter().chain(x.shape[1..].iter().copied()).collect(),
        x.as_f32().unwrap()[..x.len() / x.shape[0]].to_vec(),
    );
    let out = shrink_runtime::run(&graph, &[one]).unwrap();
    let want = &case.expected[0];
    let row = want.len() / want.shape[0];
    let err = graph_support::max_rel_err(
        "batch 1",
        &out[0],
        &shrink_graph::Tensor::f32(vec![1, row], want.as_f32().unwrap()[..row].to_vec()),
    );
    assert!(err < 1e-4, "{err}");
}
