//! Batch norm in train mode on a graph whose exporter shared one constant between a layer's
//! scale and its running variance (equal initializers are deduplicated): the running-statistics
//! update must not overwrite the scale.
use candle_core::{Device, Tensor};
use shrink_graph::ops::norm::BatchNorm;
use shrink_graph::{DType, Dim, Fact, Graph, Tensor as GTensor};
use shrink_ir::graph_exec::GraphModel;

#[test]
fn shared_scale_and_running_var_are_untied() {
    let mut g = Graph::new();
    let x = g
        .add_input("x", Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(2), Dim::Fixed(3)]))
        .unwrap();
    let ones = g.add_const("ones", GTensor::f32(vec![2], vec![1.0, 1.0])).unwrap();
    let zeros = g.add_const("zeros", GTensor::f32(vec![2], vec![0.0, 0.0])).unwrap();
    let y =
        g.add_node("bn", BatchNorm { epsilon: 1e-5 }, &[x, ones, zeros, zeros, ones], &["y".into()]).unwrap();
    g.set_outputs(y);
    let model = GraphModel::new(g, &Device::Cpu).unwrap();
    let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
    let xt = Tensor::from_vec(data, (2, 2, 3), &Device::Cpu).unwrap();
    model.forward(&[xt], true).unwrap();
    let out = model.to_graph().unwrap();
    let scale = out.const_value(out.find("ones").unwrap()).unwrap().as_f32().unwrap().to_vec();
    assert_eq!(scale, vec![1.0, 1.0], "the scale must not take the running variance's update");
    let bn = &out.nodes[0];
    let var = out.const_value(bn.inputs[4]).unwrap().as_f32().unwrap().to_vec();
    let mean = out.const_value(bn.inputs[3]).unwrap().as_f32().unwrap().to_vec();
    assert!(var.iter().all(|&v| v != 1.0), "the running variance moved: {var:?}");
    assert!(mean.iter().any(|&v| v != 0.0), "the running mean moved: {mean:?}");
    // The bias (zeros) is untouched by the running-mean update.
    let bias = out.const_value(bn.inputs[2]).unwrap().as_f32().unwrap().to_vec();
    assert_eq!(bias, vec![0.0, 0.0]);
}
