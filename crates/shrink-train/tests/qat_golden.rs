//! Golden tests of quantization-aware training against PyTorch (`tools/qat_golden.py`, fixture
//! `fixtures/qat_golden.json`): one STE step (loss, gradients, updated weights), one LSQ step
//! (initial steps, loss, weight and step-size gradients), the distillation loss and gradient.
use candle_core::{Device, Tensor};
use serde_json::Value;
use shrink_compress::quant::Scheme;
use shrink_ir::{Graph, Mode, Model, ModelMeta, Op, ParamKind, ParamStore};
use shrink_train::kd::{kd_loss, KdConfig};
use shrink_train::qat::ste::RangeMode;
use shrink_train::qat::{Method, QatConfig, Quantizers};
use shrink_train::{Optimizer, OptimizerConfig};

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/qat_golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1e-3f32, |m, x| m.max(x.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * scale, "{what}[{i}]: got {g}, torch {w} (all: {got:?} vs {want:?})");
    }
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// fc1 Linear(4, 3) → relu1 → fc2 Linear(3, 2) with the fixture's weights.
fn tiny(f: &Value) -> Model {
    let mut g = Graph::new();
    let x = g.push("fc1", Op::Linear { in_features: 4, out_features: 3, bias: true }, vec![0]);
    let x = g.push("relu1", Op::Relu, vec![x]);
    g.push("fc2", Op::Linear { in_features: 3, out_features: 2, bias: true }, vec![x]);
    let mut params = ParamStore::new();
    let p = &f["params"];
    let dev = Device::Cpu;
    let t = |k: &str, shape: &[usize]| Tensor::from_vec(floats(&p[k]), shape, &dev).unwrap();
    params.insert("fc1.weight", t("w1", &[3, 4]), ParamKind::Weight).unwrap();
    params.insert("fc1.bias", t("b1", &[3]), ParamKind::Bias).unwrap();
    params.insert("fc2.weight", t("w2", &[2, 3]), ParamKind::Weight).unwrap();
    params.insert("fc2.bias", t("b2", &[2]), ParamKind::Bias).unwrap();
    let meta = ModelMeta {
        arch: "custom".into(),
        input_shape: vec![4],
        mean: vec![0.0],
        std: vec![1.0],
        classes: vec!["a".into(), "b".into()],
    };
    Model::new(g, params, meta).unwrap()
}

fn batch(f: &Value) -> (Tensor, Tensor) {
    let x = Tensor::from_vec(floats(&f["x"]), (6, 4), &Device::Cpu).unwrap();
    let y: Vec<u32> = f["y"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    (x, Tensor::from_vec(y, 6, &Device::Cpu).unwrap())
}

const NAMES: [(&str, &str); 4] =
    [("w1", "fc1.weight"), ("b1", "fc1.bias"), ("w2", "fc2.weight"), ("b2", "fc2.bias")];

fn config(method: Method, bits: (u32, u32), per_channel: bool) -> QatConfig {
    QatConfig {
        method,
        weight_bits: bits.0,
        act_bits: Some(bits.1),
        per_channel,
        first_last_bits: None,
        scheme: Scheme::Clip,
        range: RangeMode::Dynamic,
        act_momentum: 0.9,
        lsq_offset: false,
    }
}

#[test]
fn one_ste_step_matches_torch() {
    let f = fixture();
    let r = &f["ste"];
    let model = tiny(&f);
    let quant = Quantizers::new(&model, &config(Method::Ste, (3, 4), false)).unwrap();
    quant.set_training(true);
    let (x, y) = batch(&f);
    let logits = model.forward_hooked(&x, Mode::Train { seed: 0 }, &quant).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &y).unwrap();
    close("loss", &[loss.to_scalar::<f32>().unwrap()], &[r["loss"].as_f64().unwrap() as f32], 1e-5);
    let grads = shrink_ir::backward(&loss).unwrap();
    for (k, name) in NAMES {
        let var = model.params.get(name).unwrap().var.clone();
        close(
            &format!("grad {name}"),
            &values(grads.get(var.as_tensor()).unwrap()),
            &floats(&r["grads"][k]),
            1e-5,
        );
    }
    // The clip grid has no code for +q: fc1's largest weight (index 6, positive) is clamped,
    // its gradient is exactly zero while its neighbours' are not.
    let g1 = values(grads.get(model.params.get("fc1.weight").unwrap().var.as_tensor()).unwrap());
    assert_eq!(g1[6], 0.0);
    assert!(g1[5] != 0.0 && g1[7] != 0.0);
    let mut opt = Optimizer::new(model.params.trainable(), OptimizerConfig::sgd(0.0, 0.0), 0.1);
    opt.step(&grads).unwrap();
    for (k, name) in NAMES {
        close(
            &format!("updated {name}"),
            &values(&model.params.tensor(name).unwrap()),
            &floats(&r["updated"][k]),
            1e-5,
        );
    }
}

#[test]
fn one_lsq_step_matches_torch_step_size_gradients_included() {
    let f = fixture();
    let r = &f["lsq"];
    let model = tiny(&f);
    let quant = Quantizers::new(&model, &config(Method::Lsq, (3, 3), true)).unwrap();
    quant.set_training(true);
    let (x, y) = batch(&f);
    let logits = model.forward_hooked(&x, Mode::Train { seed: 0 }, &quant).unwrap();
    let vars: std::collections::BTreeMap<String, candle_core::Var> = quant.vars().into_iter().collect();
    let step = |n: &str| vars[&format!("{n}.lsq_step")].clone();
    close("init s_w1", &values(step("fc1.weight").as_tensor()), &floats(&r["init_steps"]["w1"]), 1e-6);
    close("init s_w2", &values(step("fc2.weight").as_tensor()), &floats(&r["init_steps"]["w2"]), 1e-6);
    close("init s_a", &values(step("relu1").as_tensor()), &floats(&r["init_steps"]["a"]), 1e-6);
    let loss = candle_nn::loss::cross_entropy(&logits, &y).unwrap();
    close("loss", &[loss.to_scalar::<f32>().unwrap()], &[r["loss"].as_f64().unwrap() as f32], 1e-5);
    let grads = shrink_ir::backward(&loss).unwrap();
    for (k, name) in NAMES {
        let var = model.params.get(name).unwrap().var.clone();
        close(
            &format!("grad {name}"),
            &values(grads.get(var.as_tensor()).unwrap()),
            &floats(&r["grads"][k]),
            1e-5,
        );
    }
    for (k, name) in [("s_w1", "fc1.weight"), ("s_w2", "fc2.weight"), ("s_a", "relu1")] {
        let g =
            grads.get(step(name).as_tensor()).unwrap_or_else(|| panic!("no gradient for the step of {name}"));
        close(&format!("grad {k}"), &values(g), &floats(&r["grads"][k]), 1e-4);
    }
}

#[test]
fn lsq_model_slots_reproduce_the_quantized_forward() {
    let f = fixture();
    let mut model = tiny(&f);
    let quant = Quantizers::new(&model, &config(Method::Lsq, (3, 3), true)).unwrap();
    let (x, _) = batch(&f);
    quant.set_training(true);
    model.forward_hooked(&x, Mode::Train { seed: 0 }, &quant).unwrap();
    quant.set_training(false);
    let hooked = values(&model.forward_hooked(&x, Mode::Eval, &quant).unwrap());
    quant.finish(&mut model).unwrap();
    assert_eq!(model.act_quant.len(), 1, "relu1's output is quantized");
    let plain = values(&model.forward(&x, Mode::Eval).unwrap());
    assert_eq!(hooked, plain, "the saved slots must give the trained quantized network");
    // Weights are on the grid: 3-bit signed codes.
    let slot = model.params.quant("fc1.weight").unwrap().clone();
    let w = model.params.tensor("fc1.weight").unwrap().to_vec2::<f32>().unwrap();
    for (c, row) in w.iter().enumerate() {
        for v in row {
            let code = v / slot.scales[c];
            assert!(
                (code - code.round()).abs() < 1e-4 && (-4.0..=3.0).contains(&code.round()),
                "{v} / {}",
                slot.scales[c]
            );
        }
    }
}

#[test]
fn kd_loss_and_gradient_match_torch() {
    let f = fixture();
    let k = &f["kd"];
    let dev = Device::Cpu;
    let zs = candle_core::Var::from_vec(floats(&k["student"]), (5, 4), &dev).unwrap();
    let zt = Tensor::from_vec(floats(&k["teacher"]), (5, 4), &dev).unwrap();
    let labels: Vec<u32> =
        k["labels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let labels = Tensor::from_vec(labels, 5, &dev).unwrap();
    let cfg =
        KdConfig { alpha: k["alpha"].as_f64().unwrap(), temperature: k["temperature"].as_f64().unwrap() };
    let loss = kd_loss(zs.as_tensor(), &zt, &labels, cfg).unwrap();
    close("kd loss", &[loss.to_scalar::<f32>().unwrap()], &[k["loss"].as_f64().unwrap() as f32], 1e-5);
    let grads = loss.backward().unwrap();
    close("kd grad", &values(grads.get(zs.as_tensor()).unwrap()), &floats(&k["grad"]), 1e-5);
    assert!(KdConfig { alpha: 1.5, temperature: 1.0 }
        .check()
        .unwrap_err()
        .to_string()
        .contains("--kd-alpha"));
}

#[test]
fn pruned_weights_stay_zero_through_ste_training_steps() {
    let f = fixture();
    let mut model = tiny(&f);
    let mask = Tensor::from_vec(vec![1f32, 0., 1., 0., 1., 1., 0., 1., 1., 1., 1., 0.], (3, 4), &Device::Cpu)
        .unwrap();
    model.params.set_mask("fc1.weight", mask.clone()).unwrap();
    model.params.apply_masks().unwrap();
    let mut cfg = config(Method::Ste, (2, 2), false);
    cfg.scheme = Scheme::Asymmetric; // its grid has no exact zero: the mask must still hold
    let quant = Quantizers::new(&model, &cfg).unwrap();
    let (x, y) = batch(&f);
    let mut opt = Optimizer::new(model.params.trainable(), OptimizerConfig::sgd(0.9, 1e-2), 0.5);
    quant.set_training(true);
    for _ in 0..3 {
        let logits = model.forward_hooked(&x, Mode::Train { seed: 0 }, &quant).unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &y).unwrap();
        opt.step(&shrink_ir::backward(&loss).unwrap()).unwrap();
        model.params.apply_masks().unwrap();
    }
    quant.finish(&mut model).unwrap();
    let w = values(&model.params.tensor("fc1.weight").unwrap());
    for (v, m) in w.iter().zip(values(&mask)) {
        if m == 0.0 {
            assert_eq!(*v, 0.0);
        }
    }
}
