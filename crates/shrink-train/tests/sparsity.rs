//! Sparsity-inducing training on a small MNIST subset: proximal group lasso zeroes whole hidden
//! units (weights and bias) but never the classifier's; proximal L1 zeroes single weights; the
//! subgradient form shrinks weights without exact zeros; a larger λ zeroes more.
use shrink_io::data::{load, Normalize, Split};
use shrink_ir::candle_core::Device;
use shrink_ir::Model;
use shrink_train::{OptimizerConfig, Penalty, Schedule, SparsityConfig, TrainConfig};
use std::path::Path;

fn mnist_subset(n: usize) -> shrink_io::data::Dataset {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    let full = load(&root, Split::Train).expect("embedded MNIST");
    full.subset(&(0..n).collect::<Vec<_>>())
}

fn train_with(sparsity: Option<SparsityConfig>) -> Model {
    let data = mnist_subset(2048);
    let mut model = shrink_ir::zoo::build("lenet-300-100", 0, &Device::Cpu).unwrap();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 64,
        lr: 0.05,
        optimizer: OptimizerConfig::sgd(0.9, 0.0),
        schedule: Schedule::Constant,
        seed: 0,
        normalize: Normalize { mean: vec![0.5], std: vec![0.5] },
        augment: None,
        eval_batch_size: 256,
        checkpoint: None,
        resume: None,
        progress: false,
        sparsity,
        share_weights: false,
        identity: Default::default(),
        warmup_steps: 0,
    };
    shrink_train::train(&mut model, &data, None, &cfg).unwrap();
    model
}

/// (zero units, units) of layer `name`: rows whose weights and bias are all exactly zero.
fn zero_units(model: &Model, name: &str) -> (usize, usize) {
    let w = model.params.get(&format!("{name}.weight")).unwrap().var.as_tensor().to_vec2::<f32>().unwrap();
    let b = model.params.get(&format!("{name}.bias")).unwrap().var.as_tensor().to_vec1::<f32>().unwrap();
    let zeros = w.iter().zip(&b).filter(|(row, b)| **b == 0.0 && row.iter().all(|v| *v == 0.0)).count();
    (zeros, w.len())
}

fn zero_weights(model: &Model) -> usize {
    ["fc1", "fc2", "fc3"]
        .iter()
        .map(|n| {
            let w = model.params.get(&format!("{n}.weight")).unwrap().var.as_tensor();
            w.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().filter(|v| **v == 0.0).count()
        })
        .sum()
}

fn gl(lambda: f64) -> Option<SparsityConfig> {
    Some(SparsityConfig { penalty: Penalty::GroupLasso, lambda, proximal: true })
}

#[test]
fn proximal_group_lasso_removes_hidden_units_only() {
    let dense = train_with(None);
    assert_eq!(zero_units(&dense, "fc1").0, 0);
    let weak = train_with(gl(0.05));
    let strong = train_with(gl(0.3));
    let (z1w, n1) = zero_units(&weak, "fc1");
    let (z1s, _) = zero_units(&strong, "fc1");
    let (z2s, n2) = zero_units(&strong, "fc2");
    println!("fc1 zero units: λ=0.05 {z1w}/{n1}, λ=0.3 {z1s}/{n1}; fc2 λ=0.3 {z2s}/{n2}");
    assert!(z1s > n1 / 4, "strong group lasso zeroed only {z1s}/{n1} units of fc1");
    assert!(z1s > z1w, "a larger λ must zero more units ({z1s} vs {z1w})");
    assert_eq!(zero_units(&strong, "fc3").0, 0, "the classifier's units are not regularized");
}

#[test]
fn l1_proximal_makes_exact_zeros_and_subgradient_does_not() {
    let prox = train_with(Some(SparsityConfig { penalty: Penalty::L1, lambda: 1e-2, proximal: true }));
    let sub = train_with(Some(SparsityConfig { penalty: Penalty::L1, lambda: 1e-2, proximal: false }));
    let total = 784 * 300 + 300 * 100 + 100 * 10;
    let (zp, zs) = (zero_weights(&prox), zero_weights(&sub));
    println!("exact zeros: proximal {zp}/{total}, subgradient {zs}/{total}");
    assert!(zp > total / 10, "proximal L1 left only {zp} zeros");
    assert!(zs < zp / 10);
}

#[test]
fn trimmed_l1_spares_the_largest_weights() {
    let keep = 0.2;
    let m = train_with(Some(SparsityConfig {
        penalty: Penalty::TrimmedL1 { keep },
        lambda: 0.01,
        proximal: true,
    }));
    let w =
        m.params.get("fc1.weight").unwrap().var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let nonzero = w.iter().filter(|v| **v != 0.0).count();
    println!("trimmed L1 fc1 nonzeros {nonzero}/{}", w.len());
    // Heavy thresholding leaves little more than the exempt fraction alive.
    assert!(nonzero >= (keep * w.len() as f64) as usize / 2 && nonzero < w.len() * 6 / 10);
}

#[test]
fn negative_lambda_is_a_config_error() {
    let data = mnist_subset(64);
    let mut model = shrink_ir::zoo::build("lenet-300-100", 0, &Device::Cpu).unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 32,
        lr: 0.05,
        optimizer: OptimizerConfig::sgd(0.9, 0.0),
        schedule: Schedule::Constant,
        seed: 0,
        normalize: Normalize { mean: vec![0.5], std: vec![0.5] },
        augment: None,
        eval_batch_size: 256,
        checkpoint: None,
        resume: None,
        progress: false,
        sparsity: Some(SparsityConfig { penalty: Penalty::L1, lambda: -1.0, proximal: true }),
        share_weights: false,
        identity: Default::default(),
        warmup_steps: 0,
    };
    let err = shrink_train::train(&mut model, &data, None, &cfg).unwrap_err().to_string();
    assert!(err.contains("--sparsity-lambda"), "{err}");
}
