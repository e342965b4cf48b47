//! Candle lowering of the `quant` op family (shrink_ir::graph_exec::quant): every fixture case
//! of tests/fixtures/graph_ops/quant run through `GraphModel` matches onnxruntime (codes and
//! dequantized values exactly); QuantizeLinear → DequantizeLinear on an activation passes a
//! straight-through gradient (1 inside the code range, 0 where it saturates).
mod graph_support;

use candle_core::{Device, Tensor, Var};
use shrink_graph::ops::quant::{DequantizeLinear, QuantizeLinear};
use shrink_graph::{DType, Fact, Graph};
use shrink_ir::graph_exec::{from_candle, to_candle, GraphModel};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph_ops/quant")
}

#[test]
fn every_quant_case_matches_onnxruntime_in_candle() {
    let dir = dir();
    let cases = graph_support::cases(&dir);
    assert!(cases.len() >= 14, "expected the quant fixtures, found {} cases", cases.len());
    for name in &cases {
        let case = graph_support::load(&dir, name);
        let graph = shrink_io::onnx::graph_import::load_graph(&case.onnx).unwrap();
        let model = GraphModel::new(graph, &Device::Cpu).unwrap();
        let inputs: Vec<Tensor> = case.inputs.iter().map(|t| to_candle(t, &Device::Cpu).unwrap()).collect();
        for train in [false, true] {
            let outs = model.forward(&inputs, train).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(outs.len(), case.expected.len(), "{name}");
            for (k, (o, want)) in outs.iter().zip(&case.expected).enumerate() {
                let got = from_candle(o, want.dtype()).unwrap();
                let err = graph_support::max_rel_err(&format!("{name} output {k}"), &got, want);
                assert_eq!(err, 0.0, "{name} output {k} (train {train})");
            }
        }
    }
}

#[test]
fn fake_quantization_passes_a_straight_through_gradient() {
    // scale 0.5, uint8 zero point 10: codes 0..=255 cover x in [-5, 122.5].
    let mut g = Graph::new();
    let x = g.add_input("x", Fact::new(DType::F32, &[6])).unwrap();
    let s = g.add_const("s", shrink_graph::Tensor::f32(vec![], vec![0.5])).unwrap();
    let z = g.add_const("z", shrink_graph::Tensor::u8(vec![], vec![10])).unwrap();
    let q = g.add_node("q", QuantizeLinear { axis: 1, dtype: DType::U8 }, &[x, s, z], &["q".into()]).unwrap();
    let y = g.add_node("dq", DequantizeLinear { axis: 1 }, &[q[0], s, z], &["y".into()]).unwrap();
    g.set_outputs(y);
    let model = GraphModel::new(g, &Device::Cpu).unwrap();
    let xs = [-6.0f32, -4.9, 0.26, 1.25, 100.0, 200.0];
    let xv = Var::from_vec(xs.to_vec(), 6, &Device::Cpu).unwrap();
    let out = model.forward(&[xv.as_tensor().clone()], true).unwrap().remove(0);
    assert_eq!(out.to_vec1::<f32>().unwrap(), vec![-5.0, -5.0, 0.5, 1.0, 100.0, 122.5]);
    let grads = out.sum_all().unwrap().backward().unwrap();
    let gx = grads.get(xv.as_tensor()).expect("gradient reaches x").to_vec1::<f32>().unwrap();
    assert_eq!(gx, vec![0.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
}
