//! Gradients do not depend on which backward is called: candle's own `loss.backward()` and
//! `shrink_ir::backward` (the fused ops' fast path) give every trainable weight the same
//! gradient, so no caller can lose the Linear gradients by picking the "wrong" one.
use candle_core::{Device, Tensor};
use shrink_ir::{zoo, Mode};

fn check_arch(arch: &str, shape: (usize, usize, usize, usize)) {
    let model = zoo::build(arch, 3, &Device::Cpu).unwrap();
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    let data: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 255.0 - 0.5).collect();
    let x = Tensor::from_vec(data, shape, &Device::Cpu).unwrap();
    let loss = || model.forward(&x, Mode::Train { seed: 1 }).unwrap().sqr().unwrap().sum_all().unwrap();
    let fast = shrink_ir::backward(&loss()).unwrap();
    let plain = loss().backward().unwrap();
    let trainable = model.params.trainable();
    assert!(trainable.iter().any(|(n, _)| n.starts_with("fc") || n.contains("linear")), "{arch}");
    for (name, var) in trainable {
        let a = fast.get(var.as_tensor()).unwrap_or_else(|| panic!("{arch}: {name} has no gradient (fast)"));
        let b =
            plain.get(var.as_tensor()).unwrap_or_else(|| panic!("{arch}: {name} has no gradient (candle)"));
        let scale = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        let d = (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        let d = d.to_scalar::<f32>().unwrap();
        assert!(d <= 1e-5 * scale.max(1.0), "{arch}: {name} gradients differ by {d} (scale {scale})");
    }
}

#[test]
fn candle_backward_and_shrink_backward_give_every_weight_the_same_gradient() {
    check_arch("lenet-300-100", (4, 1, 28, 28));
    check_arch("lenet5", (4, 1, 28, 28));
}
