//! `Optimizer::step_in_backward` (weight matrices updated inside the backward pass) against
//! `backward` + `Optimizer::step`, on models with and without masks, for every optimizer.
use candle_core::{Device, Tensor};
use shrink_ir::{zoo, Mode, Model};
use shrink_train::{eval::loss_and_correct, Optimizer, OptimizerConfig};

fn batch(seed: u64, n: usize) -> (Tensor, Tensor) {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let x: Vec<f32> = (0..n * 784).map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32).collect();
    let y: Vec<u32> = (0..n).map(|_| (next() % 10) as u32).collect();
    (
        Tensor::from_vec(x, (n, 1, 28, 28), &Device::Cpu).unwrap(),
        Tensor::from_vec(y, n, &Device::Cpu).unwrap(),
    )
}

fn max_param_diff(a: &Model, b: &Model) -> f32 {
    let mut worst = 0f32;
    for (name, p) in a.params.trainable() {
        let q = b.params.tensor(&name).unwrap();
        let d = (p.as_tensor() - q).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        worst = worst.max(d.to_scalar::<f32>().unwrap());
    }
    worst
}

/// Trains two copies of `arch` for three steps, one per path, and compares every parameter.
fn compare(arch: &str, config: OptimizerConfig, mask: bool) -> usize {
    let mut reference = zoo::build(arch, 7, &Device::Cpu).unwrap();
    let mut fused = zoo::build(arch, 7, &Device::Cpu).unwrap();
    if mask {
        for m in [&mut reference, &mut fused] {
            let w = m.params.tensor("fc2.weight").unwrap();
            let keep = w.abs().unwrap().ge(0.02).unwrap().to_dtype(candle_core::DType::F32).unwrap();
            m.params.set_mask("fc2.weight", keep).unwrap();
            m.params.apply_masks().unwrap();
        }
    }
    let mut opt_ref = Optimizer::new(reference.params.trainable(), config, 0.05);
    let mut opt_fused = Optimizer::new(fused.params.trainable(), config, 0.05);
    let mut updated = 0;
    for step in 0..3 {
        let (x, y) = batch(step, 16);
        let logits = reference.forward(&x, Mode::Train { seed: step }).unwrap();
        let (loss_ref, _) = loss_and_correct(&logits, &y).unwrap();
        opt_ref.step(&shrink_ir::backward(&loss_ref).unwrap()).unwrap();
        let (loss, _) = opt_fused
            .step_in_backward(|| -> candle_core::Result<_> {
                let logits = fused.forward(&x, Mode::Train { seed: step }).unwrap();
                loss_and_correct(&logits, &y)
            })
            .unwrap();
        updated = opt_fused.updated_in_backward();
        if mask {
            reference.params.apply_masks().unwrap();
            fused.params.apply_masks().unwrap();
        }
        let (a, b) = (loss_ref.to_scalar::<f32>().unwrap(), loss.to_scalar::<f32>().unwrap());
        assert!((a - b).abs() < 1e-5, "{arch} {config:?} step {step}: loss {a} vs {b}");
    }
    let diff = max_param_diff(&reference, &fused);
    assert!(diff < 1e-5, "{arch} {config:?} (mask {mask}): parameters differ by {diff}");
    updated
}

#[test]
fn same_parameters_as_updating_after_backward() {
    let fused_kernel = shrink_ir::ops::weight_grad::available();
    let configs = [
        OptimizerConfig::Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0 },
        OptimizerConfig::Sgd { momentum: 0.9, nesterov: false, weight_decay: 5e-4 },
        OptimizerConfig::Sgd { momentum: 0.9, nesterov: true, weight_decay: 0.0 },
        OptimizerConfig::adam(1e-4),
    ];
    for config in configs {
        // lenet-300-100: three linear weights, all updated inside the backward pass.
        let updated = compare("lenet-300-100", config, false);
        assert_eq!(updated, if fused_kernel { 3 } else { 0 }, "{config:?}");
        // A masked weight reaches the layer as `w * mask` (not the variable): updated afterwards.
        let updated = compare("lenet-300-100", config, true);
        assert_eq!(updated, if fused_kernel { 2 } else { 0 }, "{config:?} with a mask");
    }
    // lenet5: conv weights and biases are updated afterwards, its three linear weights inside.
    let updated = compare("lenet5", OptimizerConfig::sgd(0.9, 1e-4), false);
    assert_eq!(updated, if fused_kernel { 3 } else { 0 });
}

/// A weight read twice by the forward must not be updated between its two backward uses.
#[test]
fn weight_used_twice_is_updated_after_backward() {
    use candle_core::Var;
    let w = Var::from_tensor(&Tensor::randn(0f32, 0.3, (8, 8), &Device::Cpu).unwrap()).unwrap();
    let w_ref = Var::from_tensor(&w.as_tensor().copy().unwrap()).unwrap();
    let x = Tensor::randn(0f32, 1.0, (4, 8), &Device::Cpu).unwrap();
    let loss_of = |w: &Tensor| -> candle_core::Result<Tensor> {
        let h = shrink_ir::ops::linear(&x, w, None, true)?;
        shrink_ir::ops::linear(&h, w, None, false)?.sqr()?.sum_all()
    };
    let config = OptimizerConfig::sgd(0.9, 0.0);
    let mut opt = Optimizer::new(vec![("w".into(), w.clone())], config, 0.1);
    let mut opt_ref = Optimizer::new(vec![("w".into(), w_ref.clone())], config, 0.1);
    for _ in 0..2 {
        opt.step_in_backward(|| -> candle_core::Result<_> { Ok((loss_of(w.as_tensor())?, ())) }).unwrap();
        assert_eq!(opt.updated_in_backward(), 0);
        opt_ref.step(&shrink_ir::backward(&loss_of(w_ref.as_tensor()).unwrap()).unwrap()).unwrap();
    }
    let d =
        (w.as_tensor() - w_ref.as_tensor()).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
    assert!(d.to_scalar::<f32>().unwrap() < 1e-6);
}
