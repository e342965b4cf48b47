//! The model corpus through the candle backend (what `shrink finetune` trains): eval-mode
//! outputs equal onnxruntime's, and a few SGD steps in train mode lower the loss of a real
//! architecture (gradients reach every trained constant).
mod graph_support;

use candle_core::{Device, Tensor};
use shrink_ir::graph_exec::{from_candle, to_candle, GraphModel};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph_corpus")
}

fn check(name: &str) {
    let case = graph_support::load(&dir(), name);
    let graph = shrink_io::onnx::graph_import::load_graph(&case.onnx).unwrap();
    let model = GraphModel::new(graph, &Device::Cpu).unwrap();
    let ins: Vec<Tensor> = case.inputs.iter().map(|t| to_candle(t, &Device::Cpu).unwrap()).collect();
    let outs = model.forward(&ins, false).unwrap_or_else(|e| panic!("{name}: {e}"));
    for (k, (got, want)) in outs.iter().zip(&case.expected).enumerate() {
        let got = from_candle(got, want.dtype()).unwrap();
        let err = graph_support::max_rel_err(&format!("{name} output {k}"), &got, want);
        assert!(err <= 1e-4, "{name} output {k}: max relative error {err} on candle");
    }
}

macro_rules! corpus {
    ($($name:ident),*) => { $(#[test] fn $name() { check(stringify!($name)); })* };
}

corpus!(
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
    lenet_bn1d_batch10
);

/// Ten SGD steps on one fixed batch of MobileNetV2 (batch norm in train mode, ReLU6 clips,
/// depthwise convs) lower its cross-entropy: gradients flow through the whole graph.
#[test]
fn sgd_steps_lower_the_loss_of_mobilenet_v2() {
    let case = graph_support::load(&dir(), "mobilenet_v2");
    let graph = shrink_io::onnx::graph_import::load_graph(&case.onnx).unwrap();
    let model = GraphModel::new(graph, &Device::Cpu).unwrap();
    let vars = model.trainable_vars();
    assert!(vars.len() > 100, "trainable constants: {}", vars.len());
    let x = to_candle(&case.inputs[0], &Device::Cpu).unwrap();
    let y = Tensor::new(&[3u32, 7], &Device::Cpu).unwrap();
    let loss_of = |train: bool| {
        let logits = model.forward(std::slice::from_ref(&x), train).unwrap().remove(0);
        candle_nn::loss::cross_entropy(&logits, &y).unwrap()
    };
    let before = loss_of(true).to_scalar::<f32>().unwrap();
    for _ in 0..10 {
        let loss = loss_of(true);
        let grads = loss.backward().unwrap();
        let mut reached = 0;
        for (_, v) in &vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                reached += 1;
                v.set(&(v.as_tensor() - (g * 0.05).unwrap()).unwrap()).unwrap();
            }
        }
        assert_eq!(reached, vars.len(), "every trained constant gets a gradient");
    }
    let after = loss_of(true).to_scalar::<f32>().unwrap();
    assert!(after < 0.5 * before, "loss {before} -> {after}");
}
