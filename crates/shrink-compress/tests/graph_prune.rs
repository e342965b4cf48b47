//! Structured pruning of the ONNX model corpus through the open graph IR: filter-ln at 30 % on
//! every CNN and transformer; MACs fall; the pruned graph's outputs from shrink-runtime equal
//! onnxruntime's on the ONNX file shrink exported (fixtures: tools/onnx_corpus_pruned.py); the
//! export round-trips and the saved plan re-applies to the same result.

use safetensors::{Dtype, SafeTensors};
use shrink_compress::prune::graph::{apply_plan, plan_local, DepGraph, GroupImportance, PrunePlan};
use shrink_graph::{Graph, Op, Tensor};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus(name: &str) -> Graph {
    let p = root().join("../shrink-io/tests/fixtures/graph_corpus").join(format!("{name}.onnx"));
    shrink_io::onnx::graph_import::load_graph(&p).unwrap()
}

fn fixture(name: &str) -> (Tensor, Tensor) {
    let bytes =
        std::fs::read(root().join("tests/fixtures/graph_pruned").join(format!("{name}.io.safetensors")))
            .unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let get = |k: &str| {
        let v = st.tensor(k).unwrap();
        let shape = v.shape().to_vec();
        match v.dtype() {
            Dtype::F32 => Tensor::f32(
                shape,
                v.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
            ),
            Dtype::I64 => Tensor::i64(
                shape,
                v.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect(),
            ),
            d => panic!("{d:?}"),
        }
    };
    (get("in.0"), get("out.0"))
}

fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.shape, b.shape);
    a.as_f32()
        .unwrap()
        .iter()
        .zip(b.as_f32().unwrap())
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

fn prune(g: &Graph) -> (Graph, PrunePlan) {
    let deps = DepGraph::build(g);
    let plan = plan_local(g, &deps, 0.3, GroupImportance::Lp(2.0));
    let mut p = g.clone();
    apply_plan(&mut p, &plan).unwrap();
    (p, plan)
}

fn check(name: &str) {
    let dense = corpus(name);
    let (pruned, plan) = prune(&dense);
    assert!(pruned.cost().macs < dense.cost().macs, "{name}: MACs did not fall");
    assert!(pruned.params() < dense.params(), "{name}: params did not fall");
    let (x, want) = fixture(name);
    let got = shrink_runtime::run(&pruned, std::slice::from_ref(&x)).unwrap();
    let err = max_rel(&got[0], &want);
    assert!(err < 1e-4, "{name}: shrink vs onnxruntime on the pruned model: {err}");
    // The export re-imports to the same computation.
    let bytes = shrink_io::onnx::graph_export::graph_onnx_bytes(&pruned).unwrap();
    let back = shrink_io::onnx::graph_import::import_graph(&bytes).unwrap();
    let again = shrink_runtime::run(&back, std::slice::from_ref(&x)).unwrap();
    assert!(max_rel(&again[0], &got[0]) < 1e-6, "{name}: export round trip");
    // A saved plan re-applies to the same graph.
    let text = serde_json::to_string(&plan).unwrap();
    let mut replay = dense.clone();
    apply_plan(&mut replay, &serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(replay, pruned, "{name}: re-applied plan");
}

macro_rules! corpus_tests {
    ($($name:ident),*) => { $(#[test] fn $name() { check(stringify!($name)); })* };
}

corpus_tests!(
    mobilenet_v2,
    mobilenet_v3_small,
    efficientnet_b0,
    shufflenet_v2,
    squeezenet1_1,
    densenet_block,
    resnext_block,
    resnet18,
    vit_tiny,
    bert_tiny
);

/// Depthwise convolutions keep one group per channel; ResNeXt's grouped convs keep their group
/// count with every group the same (smaller) width.
#[test]
fn grouped_convs_stay_consistent() {
    for name in ["mobilenet_v2", "resnext_block"] {
        let dense = corpus(name);
        let (pruned, _) = prune(&dense);
        for (d, p) in dense.nodes.iter().zip(&pruned.nodes) {
            if let (Op::Conv(dc), Op::Conv(pc)) = (&d.op, &p.op) {
                let cin_d = dense.values[d.inputs[0]].fact.shape[1].fixed().unwrap();
                let cin_p = pruned.values[p.inputs[0]].fact.shape[1].fixed().unwrap();
                if dc.groups == cin_d && dc.groups > 1 {
                    assert_eq!(pc.groups, cin_p, "{name} {}: depthwise stays depthwise", d.name);
                } else {
                    assert_eq!(pc.groups, dc.groups, "{name} {}", d.name);
                }
            }
        }
    }
}

/// Residual streams are one group: every tensor added together loses the same channels.
#[test]
fn residual_adds_are_coupled() {
    let dense = corpus("resnet18");
    let (pruned, _) = prune(&dense);
    for n in pruned.nodes.iter().filter(|n| matches!(&n.op, Op::Binary(_))) {
        let a = &pruned.values[n.inputs[0]].fact.shape;
        let b = &pruned.values[n.inputs[1]].fact.shape;
        assert_eq!(a, b, "{}", n.name);
    }
}

/// A plan naming an unknown value or removing every channel is an error naming it.
#[test]
fn bad_plans_are_refused() {
    let g = corpus("resnet18");
    let mut p = g.clone();
    let plan: PrunePlan =
        serde_json::from_str(r#"{"cuts":[{"value":"no_such_value","axis":0,"remove":[0]}]}"#).unwrap();
    assert!(apply_plan(&mut p, &plan).unwrap_err().contains("no_such_value"));
    let (name, n) =
        g.consts().find(|(_, _, t)| t.shape.len() == 4).map(|(_, n, t)| (n.to_string(), t.shape[0])).unwrap();
    let all: Vec<usize> = (0..n).collect();
    let plan = PrunePlan {
        cuts: vec![shrink_compress::prune::graph::Cut { value: name.clone(), axis: 0, remove: all }],
    };
    assert!(apply_plan(&mut p, &plan).unwrap_err().contains("every index"));
}
