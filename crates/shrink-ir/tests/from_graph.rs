//! `Model::from_graph` inverts `Model::to_graph`: every zoo architecture converted to the open IR
//! and back has the same layers, parameters (names and bit-identical values) and outputs; a
//! graph the layer IR cannot express is a one-line error naming node and op.

use candle_core::{Device, Tensor};
use shrink_graph::ops::activation::LeakyRelu;
use shrink_graph::{DType, Dim, Fact};
use shrink_ir::{zoo, Mode, Model};

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn round_trip(arch: &str) {
    let model: Model = zoo::build(arch, 7, &Device::Cpu).unwrap();
    // Non-trivial batch-norm statistics, so every BN input is carried over.
    for (name, p) in model.params.iter() {
        if name.ends_with("running_var") || name.ends_with("running_mean") {
            let n = p.var.dims()[0];
            let v: Vec<f32> = (0..n).map(|i| 0.5 + (i % 7) as f32 * 0.1).collect();
            p.var.set(&Tensor::from_vec(v, n, &Device::Cpu).unwrap()).unwrap();
        }
    }
    let back = Model::from_graph(&model.to_graph().unwrap()).unwrap_or_else(|e| panic!("{arch}: {e}"));
    assert_eq!(back.graph, model.graph, "{arch}: layers");
    assert_eq!(back.meta, model.meta, "{arch}: metadata");
    let names = |m: &Model| m.params.iter().map(|(n, p)| (n.clone(), p.kind)).collect::<Vec<_>>();
    assert_eq!(names(&back), names(&model), "{arch}: parameter names");
    for (name, p) in model.params.iter() {
        assert_eq!(values(p.var.as_tensor()), values(&back.params.tensor(name).unwrap()), "{arch}: {name}");
    }
    let mut dims = vec![2];
    dims.extend_from_slice(&model.meta.input_shape);
    let len: usize = dims.iter().product();
    let x: Vec<f32> = (0..len).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    let x = Tensor::from_vec(x, dims, &Device::Cpu).unwrap();
    let want = values(&model.forward(&x, Mode::Eval).unwrap());
    let got = values(&back.forward(&x, Mode::Eval).unwrap());
    assert_eq!(got, want, "{arch}: outputs");
}

#[test]
fn every_zoo_architecture_round_trips() {
    for arch in zoo::ARCHS {
        round_trip(arch);
    }
}

#[test]
fn ops_outside_the_layer_ir_are_one_line_errors() {
    let mut g = shrink_graph::Graph::new();
    let x = g.add_input("x", Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(4)])).unwrap();
    let y = g.add_node("act1", LeakyRelu { alpha: 0.1 }, &[x], &["y".into()]).unwrap();
    g.set_outputs(y);
    let e = Model::from_graph(&g).unwrap_err().to_string();
    assert_eq!(e, "node `act1` (LeakyRelu) does not fit the layer IR; use --engine graph");
    // A second graph input.
    let mut g = shrink_graph::Graph::new();
    let a = g.add_input("a", Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(4)])).unwrap();
    g.add_input("b", Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(4)])).unwrap();
    g.set_outputs(vec![a]);
    let e = Model::from_graph(&g).unwrap_err().to_string();
    assert!(e.contains("2 inputs (a, b)") && e.contains("--engine graph") && !e.contains('\n'), "{e}");
}
