//! Every zoo architecture converted to the open graph IR and run by shrink-runtime gives the
//! layer model's eval-mode outputs (candle executor).

use candle_core::{Device, Tensor};
use shrink_ir::{Mode, Model};

fn check(arch: &str, hw: usize) {
    let model: Model = shrink_ir::zoo::build(arch, 7, &Device::Cpu).unwrap();
    // Non-trivial batch-norm statistics, so the conversion of every BN input is exercised.
    for (name, p) in model.params.iter() {
        if name.ends_with("running_var") || name.ends_with("running_mean") {
            let n = p.var.dims()[0];
            let v: Vec<f32> = (0..n).map(|i| 0.5 + (i % 7) as f32 * 0.1).collect();
            p.var.set(&Tensor::from_vec(v, n, &Device::Cpu).unwrap()).unwrap();
        }
    }
    let c = model.meta.input_shape[0];
    let n = 3;
    let len = n * c * hw * hw;
    let x: Vec<f32> = (0..len).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    let xt = Tensor::from_vec(x.clone(), (n, c, hw, hw), &Device::Cpu).unwrap();
    let want = model.forward(&xt, Mode::Eval).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let graph = model.to_graph().unwrap();
    let got = shrink_runtime::run(&graph, &[shrink_graph::Tensor::f32(vec![n, c, hw, hw], x)]).unwrap();
    let got = got[0].as_f32().unwrap();
    assert_eq!(got.len(), want.len(), "{arch}");
    let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0f32, f32::max);
    assert!(err < 1e-4, "{arch}: max relative error {err}");
    // MACs per example agree with the layer model's statistics (conv and linear layers).
    let stats = shrink_ir::stats::model_stats(&model).unwrap();
    assert_eq!(graph.cost().macs, stats.macs, "{arch} MACs");
}

#[test]
fn mlps_match() {
    check("lenet-300-100", 28);
}

#[test]
fn lenet5_matches() {
    check("lenet5", 28);
}

#[test]
fn resnet20_with_option_a_shortcuts_matches() {
    check("resnet20", 32);
}

#[test]
fn vgg11_bn_matches() {
    check("vgg11-bn", 32);
}

/// Activation quantizers (an unsigned 4-bit one, a signed 3-bit one with an offset, an 8-bit one)
/// become Q/DQ nodes whose output equals the fake-quantized forward pass.
#[test]
fn activation_quantizers_become_qdq_nodes() {
    let mut model: Model = shrink_ir::zoo::build("lenet5", 3, &Device::Cpu).unwrap();
    let relus: Vec<String> =
        model.graph.nodes.iter().filter(|n| n.name.starts_with("relu")).map(|n| n.name.clone()).collect();
    assert!(relus.len() >= 3, "{relus:?}");
    let slot = |bits: u32, scale: f32, off: f32, qmin: f32, qmax: f32| shrink_ir::QuantSlot {
        scheme: "lsq".into(),
        bits,
        scales: vec![scale],
        offsets: vec![off],
        qmin,
        qmax,
        axis: None,
    };
    model.set_act_quant(&relus[0], slot(4, 0.05, 0.0, 0.0, 15.0)).unwrap();
    model.set_act_quant(&relus[1], slot(3, 0.04, 0.02, -4.0, 3.0)).unwrap();
    model.set_act_quant(&relus[2], slot(8, 0.01, 0.0, 0.0, 255.0)).unwrap();
    let (n, len) = (4, 4 * 28 * 28);
    let x: Vec<f32> = (0..len).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    let xt = Tensor::from_vec(x.clone(), (n, 1, 28, 28), &Device::Cpu).unwrap();
    let want = model.forward(&xt, Mode::Eval).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let graph = model.to_graph().unwrap();
    let ops: Vec<&str> = graph.nodes.iter().map(|n| n.op.def().name()).collect();
    assert_eq!(ops.iter().filter(|&&o| o == "QuantizeLinear").count(), 3, "{ops:?}");
    assert_eq!(ops.iter().filter(|&&o| o == "Clip").count(), 2, "{ops:?}");
    let got = shrink_runtime::run(&graph, &[shrink_graph::Tensor::f32(vec![n, 1, 28, 28], x)]).unwrap();
    let got = got[0].as_f32().unwrap();
    let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0f32, f32::max);
    assert!(err < 1e-4, "max relative error {err}");
    // Without the quantizers the outputs differ: the Q/DQ nodes do something.
    let plain = shrink_ir::zoo::build("lenet5", 3, &Device::Cpu).unwrap();
    let fp = plain.forward(&xt, Mode::Eval).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(fp.iter().zip(&want).any(|(a, b)| (a - b).abs() > 1e-3));
    // More than 256 levels cannot be u8 codes: an error naming the node.
    model.set_act_quant(&relus[0], slot(9, 0.01, 0.0, 0.0, 511.0)).unwrap();
    let e = model.to_graph().unwrap_err().to_string();
    assert!(e.contains(&relus[0]) && e.contains("256"), "{e}");
}
