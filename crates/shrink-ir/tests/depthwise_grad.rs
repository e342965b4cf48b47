//! shrink's conv2d on depthwise and grouped convolutions at realistic sizes: forward and
//! gradients equal candle's own grouped convolution.
use candle_core::{Device, Tensor, Var};

fn check(n: usize, c: usize, hw: usize, groups: usize, stride: usize) {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, c, hw, hw), &dev).unwrap()).unwrap();
    let w = Var::from_tensor(&Tensor::randn(0f32, 0.3, (c, c / groups, 3, 3), &dev).unwrap()).unwrap();
    let r =
        Tensor::randn(0f32, 1.0, (n, c, (hw + 2 - 3) / stride + 1, (hw + 2 - 3) / stride + 1), &dev).unwrap();
    let ours =
        shrink_ir::ops::conv2d(x.as_tensor(), w.as_tensor(), [stride, stride], [1, 1], groups).unwrap();
    let theirs = x.as_tensor().conv2d(w.as_tensor(), 1, stride, 1, groups).unwrap();
    let fwd = (&ours - &theirs).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(fwd < 1e-3, "forward {fwd}");
    let g1 = (ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let g2 = (theirs * &r).unwrap().sum_all().unwrap().backward().unwrap();
    for (what, v) in [("x", &x), ("w", &w)] {
        let a = g1.get(v.as_tensor()).expect("our grad");
        let b = g2.get(v.as_tensor()).expect("candle grad");
        let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let m = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(
            d <= 1e-3 * m.max(1.0),
            "groups {groups} stride {stride}: grad {what} differs by {d} (max {m})"
        );
    }
}

#[test]
fn depthwise_gradients_match() {
    check(8, 32, 16, 32, 1);
    check(8, 32, 16, 32, 2);
}

#[test]
fn grouped_gradients_match() {
    check(8, 32, 16, 4, 1);
}
