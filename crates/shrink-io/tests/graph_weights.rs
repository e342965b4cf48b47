//! A PyTorch state_dict loaded into an imported ONNX graph by name (`--graph M.onnx`): fixtures
//! from tools/graph_weights_case.py (a small CNN exported with weights A and
//! do_constant_folding=False; a `.pt` state_dict with weights B and PyTorch's output for B).
use candle_core::{Device, Tensor};
use shrink_io::graph_weights::{fill_from_state_dict, load_graph_with_state_dict, read_state_dict};
use shrink_io::model_file::read_safetensors;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph_weights").join(name)
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn run(graph: &shrink_graph::Graph, x: &Tensor) -> Vec<f32> {
    let x = shrink_graph::Tensor::f32(x.dims().to_vec(), values(x));
    shrink_runtime::run(graph, &[x]).unwrap().remove(0).as_f32().unwrap().to_vec()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn state_dict_weights_give_pytorchs_outputs() {
    let io = read_safetensors(&fixture("io.safetensors")).unwrap();
    let (x, want) = (&io.tensors["x"], values(&io.tensors["y"]));
    let onnx_only = shrink_io::onnx::graph_import::load_graph(&fixture("net.onnx")).unwrap();
    // The graph's own weights (A) give other outputs: the check below can fail.
    assert!(max_diff(&run(&onnx_only, x), &want) > 1e-2);
    let graph = load_graph_with_state_dict(&fixture("net.onnx"), &fixture("weights.pt")).unwrap();
    let d = max_diff(&run(&graph, x), &want);
    assert!(d < 1e-4, "max |shrink - torch| = {d}");
    // Every weight and BatchNorm statistic came from the state_dict (num_batches_tracked aside).
    let sd = read_state_dict(&fixture("weights.pt")).unwrap();
    let mut g = onnx_only.clone();
    assert_eq!(fill_from_state_dict(&mut g, &sd).unwrap(), sd.len() - 2);
}

fn err(graph: &shrink_graph::Graph, sd: &std::collections::BTreeMap<String, Tensor>) -> String {
    let mut g = graph.clone();
    let e = fill_from_state_dict(&mut g, sd).unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e}");
    assert_eq!(&g, graph, "nothing changes when filling fails");
    e
}

#[test]
fn mismatches_are_one_line_errors() {
    let graph = shrink_io::onnx::graph_import::load_graph(&fixture("net.onnx")).unwrap();
    let sd = read_state_dict(&fixture("weights.pt")).unwrap();
    // A missing weight.
    let mut s = sd.clone();
    s.remove("bn2.running_var");
    let e = err(&graph, &s);
    assert!(e.contains("has no `bn2.running_var`"), "{e}");
    // A shape mismatch.
    let mut s = sd.clone();
    s.insert("fc.bias".into(), Tensor::zeros(11, candle_core::DType::F32, &Device::Cpu).unwrap());
    let e = err(&graph, &s);
    assert!(e.contains("`fc.bias` has shape [11]") && e.contains("expects [10]"), "{e}");
    // Keys that match nothing, listed on one line.
    let mut s = sd.clone();
    for k in ["head.weight", "head.bias"] {
        s.insert(k.into(), Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap());
    }
    let e = err(&graph, &s);
    assert!(
        e.contains("2 state_dict key(s) match no weight") && e.contains("`head.bias`, `head.weight`"),
        "{e}"
    );
}

#[test]
fn a_bn_folded_graph_says_so() {
    let e = load_graph_with_state_dict(&fixture("net_folded.onnx"), &fixture("weights.pt")).unwrap_err();
    let e = e.to_string();
    assert!(e.contains("weights.pt"), "{e}");
    assert!(e.contains("folded BatchNorm") && e.contains("`bn1.running_mean`"), "{e}");
    assert!(e.contains("do_constant_folding=False") && !e.contains('\n'), "{e}");
}
