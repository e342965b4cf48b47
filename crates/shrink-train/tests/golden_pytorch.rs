//! Golden tests against PyTorch: fixtures in `fixtures/golden/`, written by `tools/golden.py`
//! (run by hand; CI never runs Python).
//!
//! Weights are not stored: every parameter comes from a formula implemented identically here and
//! in `tools/golden.py`. Parameters are numbered `k = 0, 1, ...` in PyTorch state_dict order
//! (= shrink graph order, each node's parameters in `Op::params()` order; checked against the
//! name list in `manifest.json`). Element `i` (flat, row-major) of tensor `k`, with
//! `u = sin(0.37 i + 1.3 k)` in f64, is cast to f32 from
//!
//! * conv / linear weight and bias: `u / sqrt(fan_in)`, `fan_in = prod(weight.shape[1..])`
//! * BatchNorm weight `1 + 0.1 u`, bias `0.1 u`, running_mean `0.1 u`, running_var `1 + 0.5 |u|`.
//!
//! References are PyTorch float64 runs on those f32 weights and the stored f32 inputs.
//!
//! Tolerances:
//! * logits: `max|got - ref| <= 1e-4 * max(1, max|ref|)` (absolute for logits up to 1, relative
//!   to the largest logit beyond; the deep ResNets reach |logit| ~ 4e5 with these weights);
//! * parameters after optimizer steps: `max|got - ref| <= 1e-5` absolute, losses too;
//! * BatchNorm running statistics: `max|got - ref| <= 1e-4` absolute;
//! * gradient: `max|got - ref| <= 1e-4 * max|ref|` (relative to the tensor's largest entry).
use candle_core::{DType, Device, Tensor};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use shrink_ir::{zoo, Mode, Model, ParamKind};
use shrink_train::{Optimizer, OptimizerConfig};
use std::collections::HashMap;
use std::path::PathBuf;

const LOGIT_TOL: f64 = 1e-4;
const PARAM_TOL: f64 = 1e-5;
const STATS_TOL: f64 = 1e-4;
const GRAD_REL_TOL: f64 = 1e-4;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/golden").join(name)
}

/// Every tensor of a fixture file, as f32 CPU tensors.
fn load_tensors(name: &str) -> HashMap<String, Tensor> {
    let path = fixture_path(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    st.tensors()
        .into_iter()
        .map(|(n, view)| {
            assert_eq!(view.dtype(), Dtype::F32, "{name}: tensor {n} is not f32");
            let v: Vec<f32> =
                view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            (n, Tensor::from_vec(v, view.shape(), &Device::Cpu).unwrap())
        })
        .collect()
}

fn manifest() -> Value {
    let path = fixture_path("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn get<'a>(tensors: &'a HashMap<String, Tensor>, name: &str) -> &'a Tensor {
    tensors.get(name).unwrap_or_else(|| panic!("fixture has no tensor `{name}`"))
}

/// The formula value of element `i` of parameter `k`.
fn formula(k: usize, i: usize, kind: ParamKind, fan_in: usize) -> f32 {
    let u = (0.37 * i as f64 + 1.3 * k as f64).sin();
    let v = match kind {
        ParamKind::Weight | ParamKind::Bias => u * (1.0 / (fan_in as f64).sqrt()),
        ParamKind::BnWeight => 1.0 + 0.1 * u,
        ParamKind::BnBias | ParamKind::RunningMean => 0.1 * u,
        ParamKind::RunningVar => 1.0 + 0.5 * u.abs(),
    };
    v as f32
}

/// A zoo model with every parameter overwritten by the formula; also returns the parameter
/// names in formula order.
fn formula_model(arch: &str) -> (Model, Vec<String>) {
    let model = zoo::build(arch, 0, &Device::Cpu).unwrap();
    let mut names = Vec::new();
    for node in &model.graph.nodes {
        let specs = node.op.params();
        let fan_in: usize = specs
            .iter()
            .find(|s| s.kind == ParamKind::Weight)
            .map(|s| s.shape[1..].iter().product())
            .unwrap_or(1);
        for spec in specs {
            let k = names.len();
            let n: usize = spec.shape.iter().product();
            let values: Vec<f32> = (0..n).map(|i| formula(k, i, spec.kind, fan_in)).collect();
            let name = format!("{}.{}", node.name, spec.suffix);
            let t = Tensor::from_vec(values, spec.shape.as_slice(), &Device::Cpu).unwrap();
            model.params.set(&name, &t).unwrap();
            names.push(name);
        }
    }
    assert_eq!(names.len(), model.params.len(), "{arch}: graph parameters vs store");
    (model, names)
}

/// Checks the parameter order against PyTorch's state_dict order and the weight fingerprint
/// (sum and sum of |x|) against the one tools/golden.py computed.
fn check_formula(arch: &str, model: &Model, names: &[String], man: &Value) {
    let info = &man["forward"]["archs"][arch];
    let want: Vec<String> =
        info["params"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(names, want.as_slice(), "{arch}: parameter order differs from PyTorch's state_dict");
    let (mut sum, mut abs_sum) = (0.0f64, 0.0f64);
    for name in names {
        for v in model.params.tensor(name).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap() {
            sum += v as f64;
            abs_sum += (v as f64).abs();
        }
    }
    let fp = &info["fingerprint"];
    let (want_sum, want_abs) = (fp["sum"].as_f64().unwrap(), fp["abs_sum"].as_f64().unwrap());
    assert!((sum - want_sum).abs() <= 1e-9 * want_abs, "{arch}: weight sum {sum} vs PyTorch {want_sum}");
    assert!((abs_sum - want_abs).abs() <= 1e-9 * want_abs, "{arch}: weight |sum| {abs_sum} vs {want_abs}");
}

/// Max absolute difference of two equally shaped tensors, and the max |ref|.
fn max_abs_err(got: &Tensor, want: &Tensor, what: &str) -> (f64, f64) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let g = got.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let w = want.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let mut err = 0.0f64;
    for (a, b) in g.iter().zip(&w) {
        assert!(a.is_finite(), "{what}: non-finite value {a}");
        err = err.max((a - b).abs());
    }
    (err, w.iter().fold(0.0f64, |m, v| m.max(v.abs())))
}

fn labels(t: &Tensor) -> Tensor {
    t.to_dtype(DType::U32).unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. Eval-mode forward of every zoo architecture.
// ---------------------------------------------------------------------------------------------

fn check_forward(arch: &str) {
    let man = manifest();
    let fx = load_tensors("forward.safetensors");
    let (model, names) = formula_model(arch);
    check_formula(arch, &model, &names, &man);
    let input = if model.meta.input_shape == [1, 28, 28] { "input.mnist" } else { "input.cifar" };
    let logits = model.forward(get(&fx, input), Mode::Eval).unwrap();
    let want = get(&fx, &format!("logits.{arch}"));
    let (err, scale) = max_abs_err(&logits, want, arch);
    let scale = scale.max(1.0);
    println!(
        "forward {arch}: max abs err {err:.3e} (max |logit| {scale:.3e}, scaled err {:.3e})",
        err / scale
    );
    assert!(
        err <= LOGIT_TOL * scale,
        "{arch}: logits differ from PyTorch by {err:.3e} (> {LOGIT_TOL} * {scale:.3e})"
    );
}

#[test]
fn golden_forward_simple_dnn() {
    check_forward("simple-dnn");
}

#[test]
fn golden_forward_lenet_300_100() {
    check_forward("lenet-300-100");
}

#[test]
fn golden_forward_lenet5() {
    check_forward("lenet5");
}

#[test]
fn golden_forward_resnet20() {
    check_forward("resnet20");
}

#[test]
fn golden_forward_resnet32() {
    check_forward("resnet32");
}

#[test]
fn golden_forward_resnet44() {
    check_forward("resnet44");
}

#[test]
fn golden_forward_resnet56() {
    check_forward("resnet56");
}

#[test]
fn golden_forward_vgg11_bn() {
    check_forward("vgg11-bn");
}

#[test]
fn golden_forward_vgg16_bn() {
    check_forward("vgg16-bn");
}

// ---------------------------------------------------------------------------------------------
// 2. Two optimizer steps (cross-entropy mean, batch 8) of lenet5 (conv + max-pool) and
//    lenet-300-100 (linear only: checks the optimizer independently of the pooling backward).
// ---------------------------------------------------------------------------------------------

/// Rows `0, stride, 2*stride, ...` of `t` (how tools/golden.py stores large tensors).
fn stored_rows(t: &Tensor, stride: usize) -> Tensor {
    if stride == 1 {
        return t.clone();
    }
    let idx = Tensor::arange_step(0u32, t.dim(0).unwrap() as u32, stride as u32, &Device::Cpu).unwrap();
    t.index_select(&idx, 0).unwrap()
}

/// Runs [`check_optim_path`] with the update after the backward pass and inside it.
fn check_optim(arch: &str, key: &str) {
    check_optim_path(arch, key, false);
    check_optim_path(arch, key, true);
}

/// PyTorch's optimizer steps reproduced, with `Optimizer::step` after the backward pass or
/// with `Optimizer::step_in_backward` (weight matrices of linear layers updated inside it).
fn check_optim_path(arch: &str, key: &str, in_backward: bool) {
    let man = manifest();
    let arch_info = &man["optim"]["archs"][arch];
    let info = &arch_info["optimizers"][key];
    let cfg = &info["config"];
    let f = |k: &str| cfg[k].as_f64().unwrap_or_else(|| panic!("{key}: config has no {k}"));
    let config = match cfg["type"].as_str().unwrap() {
        "sgd" => OptimizerConfig::Sgd {
            momentum: f("momentum"),
            nesterov: cfg["nesterov"].as_bool().unwrap(),
            weight_decay: f("weight_decay"),
        },
        "adam" => OptimizerConfig::Adam {
            beta1: f("beta1"),
            beta2: f("beta2"),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
        },
        t => panic!("unknown optimizer type {t}"),
    };
    let fx = load_tensors("optim.safetensors");
    let (model, names) = formula_model(arch);
    let mut opt = Optimizer::new(model.params.trainable(), config, f("lr"));
    let steps = man["optim"]["steps"].as_u64().unwrap() as usize;
    let want_losses = info["losses"].as_array().unwrap();
    assert_eq!(want_losses.len(), steps, "{arch} {key}: one loss per step");
    let (xs, ys) = (get(&fx, "x"), get(&fx, "y"));
    let mut loss_err = 0.0f64;
    for (s, want) in want_losses.iter().enumerate() {
        let x = xs.get(s).unwrap();
        let y = labels(&ys.get(s).unwrap());
        let forward = || -> candle_core::Result<(candle_core::Tensor, ())> {
            let logits = model.forward(&x, Mode::Train { seed: 0 }).unwrap();
            Ok((candle_nn::loss::cross_entropy(&logits, &y)?, ()))
        };
        let loss = if in_backward {
            opt.step_in_backward(forward).unwrap().0
        } else {
            let (loss, ()) = forward().unwrap();
            opt.step(&shrink_ir::backward(&loss).unwrap()).unwrap();
            loss
        };
        let got = loss.to_scalar::<f32>().unwrap() as f64;
        let want = want.as_f64().unwrap();
        println!(
            "optim {arch} {key} (in backward: {in_backward}) step {}: loss {got:.7} (PyTorch {want:.7})",
            s + 1
        );
        loss_err = loss_err.max((got - want).abs());
    }
    let mut worst = (0.0f64, String::new());
    for name in &names {
        let stride = arch_info["row_stride"][name.as_str()].as_u64().unwrap_or(1) as usize;
        let got = stored_rows(&model.params.tensor(name).unwrap(), stride);
        let (err, _) = max_abs_err(&got, get(&fx, &format!("{arch}.{key}.{name}")), name);
        if err >= worst.0 {
            worst = (err, name.clone());
        }
    }
    println!(
        "optim {arch} {key} (in backward: {in_backward}): max abs param err {:.3e} ({}), max loss err {loss_err:.3e}",
        worst.0, worst.1
    );
    assert!(loss_err <= PARAM_TOL, "{arch} {key}: loss differs from PyTorch by {loss_err:.3e}");
    assert!(
        worst.0 <= PARAM_TOL,
        "{arch} {key}: after {steps} steps `{}` differs from PyTorch by {:.3e} (> {PARAM_TOL})",
        worst.1,
        worst.0
    );
}

/// Hint printed when lenet5 gradients drift: the regression this guards against.
const MAXPOOL_BUG: &str = "max-pool backward must route the whole gradient to the first maximum \
                           (candle's own max_pool2d backward scales it by #maxima/k^2)";

#[test]
fn golden_optim_lenet5_sgd_momentum() {
    check_optim("lenet5", "sgd");
}

#[test]
fn golden_optim_lenet5_sgd_nesterov() {
    check_optim("lenet5", "nesterov");
}

#[test]
fn golden_optim_lenet5_adam() {
    check_optim("lenet5", "adam");
}

#[test]
fn golden_optim_lenet_300_100_sgd_momentum() {
    check_optim("lenet-300-100", "sgd");
}

#[test]
fn golden_optim_lenet_300_100_sgd_nesterov() {
    check_optim("lenet-300-100", "nesterov");
}

#[test]
fn golden_optim_lenet_300_100_adam() {
    check_optim("lenet-300-100", "adam");
}

/// Gradients of the first step's loss for every lenet5 parameter, each within 1e-4 of the
/// tensor's largest reference entry.
#[test]
fn golden_grad_lenet5() {
    let fx = load_tensors("optim.safetensors");
    let (model, names) = formula_model("lenet5");
    let x = get(&fx, "x").get(0).unwrap();
    let y = labels(&get(&fx, "y").get(0).unwrap());
    let logits = model.forward(&x, Mode::Train { seed: 0 }).unwrap();
    let grads = shrink_ir::backward(&candle_nn::loss::cross_entropy(&logits, &y).unwrap()).unwrap();
    let mut failures = Vec::new();
    for name in &names {
        let g = grads.get(model.params.get(name).unwrap().var.as_tensor()).expect("missing gradient");
        let (err, scale) = max_abs_err(g, get(&fx, &format!("lenet5.grad.{name}")), name);
        println!(
            "grad lenet5 {name}: max abs err {err:.3e}, max |grad| {scale:.3e}, rel {:.3e}",
            err / scale
        );
        if err > GRAD_REL_TOL * scale {
            failures.push(format!("{name} (rel {:.3e})", err / scale));
        }
    }
    assert!(
        failures.is_empty(),
        "lenet5 gradients differ from PyTorch: {failures:?}; suspect: {MAXPOOL_BUG}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. BatchNorm train mode: resnet20, batch 8.
// ---------------------------------------------------------------------------------------------

struct BnRun {
    model: Model,
    logits: Tensor,
    loss: Tensor,
    fx: HashMap<String, Tensor>,
    man: Value,
}

fn bn_train_run() -> BnRun {
    let man = manifest();
    let fx = load_tensors("bn_train.safetensors");
    let (model, _) = formula_model("resnet20");
    let logits = model.forward(get(&fx, "x"), Mode::Train { seed: 0 }).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &labels(get(&fx, "y"))).unwrap();
    BnRun { model, logits, loss, fx, man }
}

#[test]
fn golden_bn_train_logits() {
    let r = bn_train_run();
    let (err, scale) = max_abs_err(&r.logits, get(&r.fx, "logits"), "train-mode logits");
    let scale = scale.max(1.0);
    let got = r.loss.to_scalar::<f32>().unwrap() as f64;
    let want = r.man["bn_train"]["loss_value"].as_f64().unwrap();
    println!("bn-train logits: max abs err {err:.3e} (max |logit| {scale:.3e}); loss {got:.7} vs {want:.7}");
    assert!(err <= LOGIT_TOL * scale, "train-mode logits differ from PyTorch by {err:.3e}");
    assert!((got - want).abs() <= LOGIT_TOL, "train-mode loss {got} vs PyTorch {want}");
}

#[test]
fn golden_bn_train_running_stats() {
    let r = bn_train_run();
    let mut worst = 0.0f64;
    for layer in r.man["bn_train"]["bn_layers"].as_array().unwrap() {
        for stat in ["running_mean", "running_var"] {
            let name = format!("{}.{stat}", layer.as_str().unwrap());
            let (err, _) = max_abs_err(&r.model.params.tensor(&name).unwrap(), get(&r.fx, &name), &name);
            println!("bn-train {name}: max abs err {err:.3e}");
            assert!(err <= STATS_TOL, "{name} after a train-mode forward differs from PyTorch by {err:.3e}");
            worst = worst.max(err);
        }
    }
    println!("bn-train running stats: max abs err {worst:.3e}");
}

#[test]
fn golden_bn_train_grad_conv1() {
    let r = bn_train_run();
    let grads = shrink_ir::backward(&r.loss).unwrap();
    let w = r.model.params.get("conv1.weight").unwrap();
    let g = grads.get(w.var.as_tensor()).expect("no gradient for conv1.weight");
    let (err, scale) = max_abs_err(g, get(&r.fx, "grad.conv1.weight"), "d loss / d conv1.weight");
    println!(
        "bn-train grad conv1.weight: max abs err {err:.3e}, max |grad| {scale:.3e}, rel {:.3e}",
        err / scale
    );
    assert!(scale > 1e-3, "reference gradient is degenerate");
    assert!(
        err <= GRAD_REL_TOL * scale,
        "d loss / d conv1.weight differs from PyTorch: max abs err {err:.3e}, relative {:.3e} (> {GRAD_REL_TOL}). \
         If logits and running stats pass and this is ~1e-3..1e-2, a ReLU input within f32 rounding of 0 may \
         have flipped (see BN_SEED in tools/golden.py); otherwise suspect the backward pass.",
        err / scale
    );
}

/// Minimal repro of the max-pool backward bug: PyTorch's `F.max_pool2d(x, 2).sum().backward()`
/// on `x = [[1, 2], [3, 4]]` gives `x.grad = [[0, 0], [0, 1]]`.
#[test]
fn golden_maxpool_backward_minimal() {
    let x = candle_core::Var::from_tensor(
        &Tensor::new(&[1f32, 2., 3., 4.], &Device::Cpu).unwrap().reshape((1, 1, 2, 2)).unwrap(),
    )
    .unwrap();
    let y = shrink_ir::ops::max_pool2d(x.as_tensor(), [2, 2], [2, 2], [0, 0]).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    let g = grads.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    println!("max-pool grad {g:?} (PyTorch [0, 0, 0, 1])");
    assert_eq!(g, [0.0, 0.0, 0.0, 1.0], "{MAXPOOL_BUG}");
}
