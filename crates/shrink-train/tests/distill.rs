//! Knowledge distillation in the training loop (`train_distilled`, `shrink train --teacher`):
//! a student that already equals its teacher gets no gradient from the pure distillation loss
//! (α = 1) and stays put, while label training moves it; α = 0 is label training exactly; a
//! bad α is refused naming the flag.
use shrink_io::data::{load, make_batch, Dataset, Normalize, Split};
use shrink_ir::candle_core::{Device, Tensor};
use shrink_ir::{Mode, Model};
use shrink_train::kd::KdConfig;
use shrink_train::{train_distilled, train_with_hooks, OptimizerConfig, Schedule, TrainConfig};
use std::path::Path;

fn mnist(n: usize) -> Dataset {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    load(&root, Split::Train).expect("embedded MNIST").subset(&(0..n).collect::<Vec<_>>())
}

fn config() -> TrainConfig {
    TrainConfig {
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
        sparsity: None,
        share_weights: false,
        identity: Default::default(),
        warmup_steps: 0,
    }
}

/// The largest absolute difference between two models' parameters.
fn max_diff(a: &Model, b: &Model) -> f32 {
    let mut d = 0f32;
    for (name, p) in a.params.iter() {
        let x: Vec<f32> = p.var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let y: Vec<f32> = b.params.tensor(name).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        d = x.iter().zip(&y).map(|(x, y)| (x - y).abs()).fold(d, f32::max);
    }
    d
}

fn copy(m: &Model) -> Model {
    Model::new(m.graph.clone(), m.params.deep_clone().unwrap(), m.meta.clone()).unwrap()
}

#[test]
fn distillation_pulls_the_student_to_the_teacher_and_alpha_zero_is_plain_training() {
    let data = mnist(256);
    let cfg = config();
    let teacher = shrink_ir::zoo::build("lenet-300-100", 3, &Device::Cpu).unwrap();
    // A student equal to its teacher: the KL term's gradient is zero, nothing moves.
    let mut same = copy(&teacher);
    let kd = KdConfig { alpha: 1.0, temperature: 4.0 };
    train_distilled(&mut same, &data, None, &cfg, &mut [], Some((&teacher, kd))).unwrap();
    let still = max_diff(&same, &teacher);
    // Label training of the same start moves the weights.
    let mut plain = copy(&teacher);
    train_with_hooks(&mut plain, &data, None, &cfg, &mut []).unwrap();
    let moved = max_diff(&plain, &teacher);
    assert!(still < 1e-5 && moved > 1e-3, "distilled from itself moved {still}, label training {moved}");
    // α = 0: the labels alone, the same run as without a teacher.
    let mut zero = copy(&teacher);
    let kd0 = KdConfig { alpha: 0.0, temperature: 4.0 };
    train_distilled(&mut zero, &data, None, &cfg, &mut [], Some((&teacher, kd0))).unwrap();
    assert!(
        max_diff(&zero, &plain) < 1e-5,
        "α = 0 differs from label training by {}",
        max_diff(&zero, &plain)
    );
    // Another student distilled from this teacher ends closer to it than label training does.
    let other = shrink_ir::zoo::build("lenet-300-100", 4, &Device::Cpu).unwrap();
    let (mut kd_student, mut ce_student) = (copy(&other), copy(&other));
    train_distilled(&mut kd_student, &data, None, &cfg, &mut [], Some((&teacher, kd))).unwrap();
    train_with_hooks(&mut ce_student, &data, None, &cfg, &mut []).unwrap();
    // Distance of the logits to the teacher's on the training images.
    let mut buf = Vec::new();
    let idx: Vec<usize> = (0..128).collect();
    make_batch(&data, &idx, &config().normalize, None, &mut buf);
    let x = Tensor::from_slice(&buf, (128, 1, 28, 28), &Device::Cpu).unwrap();
    let t = teacher.forward(&x, Mode::Eval).unwrap();
    let dist = |m: &Model| {
        let d = (m.forward(&x, Mode::Eval).unwrap() - &t).unwrap();
        d.sqr().unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap()
    };
    let (d_kd, d_ce) = (dist(&kd_student), dist(&ce_student));
    assert!(d_kd < 0.5 * d_ce, "logit distance to the teacher: distilled {d_kd}, label-trained {d_ce}");
}

#[test]
fn bad_distillation_weights_name_the_flag() {
    let data = mnist(32);
    let teacher = shrink_ir::zoo::build("lenet-300-100", 3, &Device::Cpu).unwrap();
    let mut student = copy(&teacher);
    for (kd, flag) in [
        (KdConfig { alpha: 1.5, temperature: 4.0 }, "--kd-alpha"),
        (KdConfig { alpha: 0.5, temperature: 0.0 }, "--kd-temp"),
    ] {
        let e =
            train_distilled(&mut student, &data, None, &config(), &mut [], Some((&teacher, kd))).unwrap_err();
        assert!(e.to_string().contains(flag), "{e}");
    }
}
