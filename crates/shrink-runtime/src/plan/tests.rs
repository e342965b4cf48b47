//! Plan against the reference executor on small hand-built graphs.

use super::session::pick_fastest;
use super::*;
use crate::exec::run;
use shrink_graph::ops::activation::{Clip, Unary, UnaryKind};
use shrink_graph::ops::conv::Conv;
use shrink_graph::ops::matmul::MatMul;
use shrink_graph::ops::pool::GlobalPool;
use shrink_graph::{DType, Dim, Fact};

fn seq(shape: Vec<usize>, k: f32) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::f32(shape, (0..n).map(|i| (i as f32 * k).sin()).collect())
}

fn close(a: &Tensor, b: &Tensor) {
    assert_eq!(a.shape, b.shape);
    for (x, y) in a.as_f32().unwrap().iter().zip(b.as_f32().unwrap()) {
        assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "{x} vs {y}");
    }
}

/// The fp32 kernel of a one-group stride-1 3×3 conv: the direct one on AVX-512.
fn direct_or_im2col() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        return "dense-f32-direct";
    }
    "dense-f32-im2col"
}

fn relu() -> Unary {
    Unary { kind: UnaryKind::Relu }
}

/// An MLP `in → hidden… → out` with ReLUs (Gemm with transposed weights and a bias).
pub(crate) fn mlp(sizes: &[usize]) -> Graph {
    let mut g = Graph::new();
    let mut h =
        g.add_input("x", Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(sizes[0])])).unwrap();
    for (l, w) in sizes.windows(2).enumerate() {
        let wt = g.add_const(&format!("fc{l}.weight"), seq(vec![w[1], w[0]], 0.37 + l as f32)).unwrap();
        let b = g.add_const(&format!("fc{l}.bias"), seq(vec![w[1]], 0.11)).unwrap();
        let op = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
        h = g.add_node(&format!("fc{l}"), op, &[h, wt, b], &[format!("h{l}")]).unwrap()[0];
        if l + 2 < sizes.len() {
            h = g.add_node(&format!("relu{l}"), relu(), &[h], &[format!("r{l}")]).unwrap()[0];
        }
    }
    g.set_outputs(vec![h]);
    g
}

fn conv(groups: usize, pad: usize) -> Conv {
    Conv { strides: vec![1, 1], pads: vec![pad; 4], dilations: vec![1, 1], groups }
}

/// conv3×3 → ReLU6 → depthwise 3×3 → ReLU → pointwise 1×1 → grouped conv → global pool → MatMul.
fn convnet() -> Graph {
    let mut g = Graph::new();
    let x = g
        .add_input(
            "x",
            Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(3), Dim::Fixed(9), Dim::Fixed(8)]),
        )
        .unwrap();
    let w0 = g.add_const("w0", seq(vec![8, 3, 3, 3], 0.7)).unwrap();
    let b0 = g.add_const("b0", seq(vec![8], 0.3)).unwrap();
    let c0 = g.add_node("c0", conv(1, 1), &[x, w0, b0], &["c0".into()]).unwrap()[0];
    let r0 = g.add_node("r0", Clip { min: Some(0.0), max: Some(6.0) }, &[c0], &["r0".into()]).unwrap()[0];
    let w1 = g.add_const("w1", seq(vec![8, 1, 3, 3], 0.9)).unwrap();
    let c1 = g.add_node("dw", conv(8, 1), &[r0, w1], &["c1".into()]).unwrap()[0];
    let r1 = g.add_node("r1", relu(), &[c1], &["r1".into()]).unwrap()[0];
    let w2 = g.add_const("w2", seq(vec![6, 8, 1, 1], 0.5)).unwrap();
    let c2 = g.add_node("pw", conv(1, 0), &[r1, w2], &["c2".into()]).unwrap()[0];
    let w3 = g.add_const("w3", seq(vec![4, 3, 3, 3], 0.2)).unwrap();
    let c3 = g.add_node("grouped", conv(2, 0), &[c2, w3], &["c3".into()]).unwrap()[0];
    let p = g
        .add_node("pool", GlobalPool { kind: shrink_graph::ops::pool::PoolKind::Avg }, &[c3], &["p".into()])
        .unwrap()[0];
    let f =
        g.add_node("flat", shrink_graph::ops::shape::Flatten { axis: 1 }, &[p], &["f".into()]).unwrap()[0];
    let wl = g.add_const("wl", seq(vec![4, 5], 0.6)).unwrap();
    let y = g.add_node("fc", MatMul {}, &[f, wl], &["y".into()]).unwrap()[0];
    g.set_outputs(vec![y]);
    g
}

#[test]
fn fused_relu_and_clip_equal_separate_steps() {
    let g = convnet();
    let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
    assert_eq!(plan.stats().activations_fused, 2);
    let ops: Vec<&str> = plan.steps().iter().map(|s| s.op.as_str()).collect();
    assert_eq!(ops[..4], ["Conv+clip", "Conv+relu", "Conv", "Conv"], "{ops:?}");
    for batch in [1, 3] {
        let x = seq(vec![batch, 3, 9, 8], 0.21);
        let mut s = plan.session(batch).unwrap();
        let kernels: Vec<&str> = (0..4).map(|i| s.kernel_name(i)).collect();
        assert_eq!(
            kernels,
            [direct_or_im2col(), "dense-f32-depthwise", "dense-f32-pointwise", "dense-f32-im2col"]
        );
        close(&s.run(std::slice::from_ref(&x)).unwrap()[0], &run(&g, &[x]).unwrap()[0]);
    }
}

#[test]
fn mlp_matches_the_reference_and_every_kernel_agrees() {
    let g = mlp(&[20, 33, 17, 5]);
    let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
    assert_eq!(plan.steps().len(), 3);
    for batch in [1, 7] {
        let x = seq(vec![batch, 20], 0.3);
        let want = run(&g, std::slice::from_ref(&x)).unwrap().remove(0);
        let mut s = plan.session(batch).unwrap();
        let StepKind::Linear(l) = &plan.steps()[0].kind else { panic!("not lowered") };
        for &k in linear::candidates(&l.weights) {
            // Steps of other layouts (the 5-output layer is kept as rows: fewer outputs than a
            // panel) keep their kernel.
            for i in 0..3 {
                let StepKind::Linear(li) = &plan.steps()[i].kind else { panic!("not lowered") };
                if linear::candidates(&li.weights).contains(&k) {
                    s.set_linear_kernel(i, k).unwrap();
                }
            }
            close(&s.run(std::slice::from_ref(&x)).unwrap()[0], &want);
        }
        // A kernel that cannot read these weights is refused.
        let other = [LinearKernel::DenseF32Gemm, LinearKernel::DenseF32Panel]
            .into_iter()
            .find(|k| !linear::candidates(&l.weights).contains(k))
            .unwrap();
        assert!(s.set_linear_kernel(0, other).is_err());
    }
}

#[test]
fn session_reuses_its_arena_and_allocates_it_once() {
    let g = mlp(&[16, 64, 64, 64, 8]);
    let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
    let mut s = plan.session(4).unwrap();
    // Four chained outputs share two slots (the last, a graph output, may take its own).
    assert!(s.arena_buffers().len() <= 3, "{:?}", s.arena_buffers());
    assert!(s.arena_len() < 4 * 64 * 4 + 4 * 8);
    let before = s.arena_buffers();
    let x = seq(vec![4, 16], 0.5);
    let a = s.run(std::slice::from_ref(&x)).unwrap();
    let b = s.run(std::slice::from_ref(&x)).unwrap();
    assert_eq!(s.arena_buffers(), before);
    assert_eq!(a, b);
    // Another input shape is an error naming the input, not a reallocation.
    let e = s.run(&[seq(vec![5, 16], 0.5)]).unwrap_err();
    assert!(e.to_string().contains("input `x`"), "{e}");
    assert_eq!(s.arena_buffers(), before);
}

#[test]
fn tuning_keeps_the_fastest_candidate() {
    // With a fake clock: the candidate reported fastest wins.
    let c = [LinearKernel::DenseF32Gemv, LinearKernel::DenseF32Gemm];
    assert_eq!(pick_fastest(&c, |k| if k == LinearKernel::DenseF32Gemm { 1.0 } else { 2.0 }), c[1]);
    assert_eq!(pick_fastest(&c, |k| if k == LinearKernel::DenseF32Gemm { 3.0 } else { 2.0 }), c[0]);
    // With the real clock: every step gets one of its candidates and the outputs still match.
    let g = mlp(&[64, 256, 10]);
    let plan = Plan::compile(&g, &PlanOptions { tune: true }).unwrap();
    for batch in [1, 32] {
        let mut s = plan.session(batch).unwrap();
        for (i, step) in plan.steps().iter().enumerate() {
            let StepKind::Linear(l) = &step.kind else { continue };
            assert!(linear::candidates(&l.weights).contains(&s.linear_kernel(i).unwrap()));
        }
        let x = seq(vec![batch, 64], 0.4);
        close(&s.run(std::slice::from_ref(&x)).unwrap()[0], &run(&g, &[x]).unwrap()[0]);
    }
}

#[test]
fn per_step_times_cover_every_step() {
    let g = convnet();
    let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
    let mut s = plan.session(2).unwrap();
    let mut t = vec![0.0; plan.steps().len()];
    s.run_timed(&[seq(vec![2, 3, 9, 8], 0.1)], &mut t).unwrap();
    assert!(t.iter().all(|&x| x > 0.0), "{t:?}");
}

#[test]
fn an_output_that_is_an_input_or_read_twice_is_returned() {
    let mut g = Graph::new();
    let x = g.add_input("x", Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(3)])).unwrap();
    let id = g.add_node("id", shrink_graph::ops::combine::Identity {}, &[x], &["i".into()]).unwrap()[0];
    let w = g.add_const("w", seq(vec![3, 3], 0.3)).unwrap();
    let h = g.add_node("mm", MatMul {}, &[id, w], &["h".into()]).unwrap()[0];
    let r = g.add_node("r", relu(), &[h], &["r".into()]).unwrap()[0];
    g.set_outputs(vec![r, h, id]);
    let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
    // h is a graph output: the ReLU is not fused.
    assert_eq!(plan.stats().activations_fused, 0);
    let x = seq(vec![2, 3], 0.7);
    let got = plan.session(2).unwrap().run(std::slice::from_ref(&x)).unwrap();
    for (a, b) in got.iter().zip(run(&g, &[x]).unwrap()) {
        close(a, &b);
    }
}

/// A residual block `relu(conv(relu(conv(x))) + r)` on odd sizes (11 channels: a full and a
/// partial block of the direct kernel), where `r` is `x` itself or,
/// with `late`, `0.5·x` computed by a node placed after the second conv (the fused step must
/// move after it).
fn residual_block(late: bool) -> Graph {
    let mut g = Graph::new();
    let x = g
        .add_input(
            "x",
            Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(11), Dim::Fixed(7), Dim::Fixed(9)]),
        )
        .unwrap();
    let w0 = g.add_const("w0", seq(vec![11, 11, 3, 3], 0.7)).unwrap();
    let b0 = g.add_const("b0", seq(vec![11], 0.3)).unwrap();
    let c0 = g.add_node("c0", conv(1, 1), &[x, w0, b0], &["c0".into()]).unwrap()[0];
    let r0 = g.add_node("r0", relu(), &[c0], &["r0".into()]).unwrap()[0];
    let w1 = g.add_const("w1", seq(vec![11, 11, 3, 3], 0.4)).unwrap();
    let c1 = g.add_node("c1", conv(1, 1), &[r0, w1], &["c1".into()]).unwrap()[0];
    let r = if late {
        let half = g.add_const("half", Tensor::f32(vec![], vec![0.5])).unwrap();
        let mul = shrink_graph::ops::binary::Binary { kind: shrink_graph::ops::binary::BinaryKind::Mul };
        g.add_node("half_x", mul, &[x, half], &["hx".into()]).unwrap()[0]
    } else {
        x
    };
    let add = shrink_graph::ops::binary::Binary { kind: shrink_graph::ops::binary::BinaryKind::Add };
    let s = g.add_node("add", add, &[r, c1], &["s".into()]).unwrap()[0];
    let y = g.add_node("r1", relu(), &[s], &["y".into()]).unwrap()[0];
    g.set_outputs(vec![y]);
    g
}

#[test]
fn residual_add_and_relu_fuse_into_the_conv() {
    for late in [false, true] {
        let g = residual_block(late);
        let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
        assert_eq!(plan.stats().residuals_fused, 1);
        let ops: Vec<&str> = plan.steps().iter().map(|s| s.op.as_str()).collect();
        let want: &[&str] =
            if late { &["Conv+relu", "Binary", "Conv+add+relu"] } else { &["Conv+relu", "Conv+add+relu"] };
        assert_eq!(ops, want);
        assert_eq!(plan.steps().last().unwrap().inputs.len(), 2);
        for batch in [1, 3] {
            let x = seq(vec![batch, 11, 7, 9], 0.21);
            let mut s = plan.session(batch).unwrap();
            assert_eq!(s.kernel_name(plan.steps().len() - 1), direct_or_im2col());
            for _ in 0..2 {
                close(
                    &s.run(std::slice::from_ref(&x)).unwrap()[0],
                    &run(&g, std::slice::from_ref(&x)).unwrap()[0],
                );
            }
        }
    }
}

#[test]
fn add_relu_and_clip_run_as_native_steps() {
    // x + c (broadcast [7, 1]), ReLU on the graph input, x + y of equal shapes, Clip.
    let mut g = Graph::new();
    let x = g
        .add_input(
            "x",
            Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(3), Dim::Fixed(7), Dim::Fixed(5)]),
        )
        .unwrap();
    let add = || shrink_graph::ops::binary::Binary { kind: shrink_graph::ops::binary::BinaryKind::Add };
    let c = g.add_const("c", seq(vec![7, 1], 1.3)).unwrap();
    let a = g.add_node("bias", add(), &[x, c], &["a".into()]).unwrap()[0];
    let r = g.add_node("relu_x", relu(), &[x], &["r".into()]).unwrap()[0];
    let s = g.add_node("sum", add(), &[a, r], &["s".into()]).unwrap()[0];
    let y = g.add_node("clip", Clip { min: Some(-0.2), max: Some(0.9) }, &[s], &["y".into()]).unwrap()[0];
    let b = g.add_node("back", add(), &[c, y], &["b".into()]).unwrap()[0];
    g.set_outputs(vec![b, y]);
    let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
    let ops: Vec<&str> = plan.steps().iter().map(|s| s.op.as_str()).collect();
    // The Clip fuses into `sum` (its only reader); the ReLU of the input has no producer step.
    assert_eq!(ops, ["Binary", "Unary", "Binary+clip", "Binary"]);
    for batch in [1, 4] {
        let xin = seq(vec![batch, 3, 7, 5], 0.37);
        let mut s = plan.session(batch).unwrap();
        let kernels: Vec<&str> = (0..plan.steps().len()).map(|i| s.kernel_name(i)).collect();
        assert!(kernels.iter().all(|k| k.starts_with("f32-")), "{kernels:?}");
        assert!(kernels.contains(&"f32-activation") && kernels.contains(&"f32-add"));
        let want = run(&g, std::slice::from_ref(&xin)).unwrap();
        let got = s.run(std::slice::from_ref(&xin)).unwrap();
        for (a, b) in got.iter().zip(&want) {
            close(a, b);
        }
    }
}

#[test]
fn slices_with_steps_and_constant_pads_run_natively() {
    use shrink_graph::ops::combine::{Pad, PadMode, Slice};
    // The option-A shortcut (x[:, :, ::2, ::2] then channels padded), a reversed slice, a crop.
    let mut g = Graph::new();
    let x = g
        .add_input(
            "x",
            Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(3), Dim::Fixed(7), Dim::Fixed(5)]),
        )
        .unwrap();
    let s1 = Slice { starts: vec![0, 1], ends: vec![7, 5], axes: vec![2, 3], steps: vec![2, 2] };
    let a = g.add_node("sub", s1, &[x], &["a".into()]).unwrap()[0];
    let p = Pad { pads: vec![0, 2, 0, 1, 0, 1, 1, -1], mode: PadMode::Constant, value: 0.5 };
    let b = g.add_node("pad", p, &[a], &["b".into()]).unwrap()[0];
    let s2 = Slice { starts: vec![-1], ends: vec![-100], axes: vec![1], steps: vec![-2] };
    let c = g.add_node("rev", s2, &[b], &["c".into()]).unwrap()[0];
    let e = Pad { pads: vec![0, 0, 0, 0, 0, 0, 0, 0], mode: PadMode::Edge, value: 0.0 };
    let d = g.add_node("edge", e, &[c], &["d".into()]).unwrap()[0];
    g.set_outputs(vec![d, b]);
    let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
    for batch in [1, 2] {
        let xin = seq(vec![batch, 3, 7, 5], 0.41);
        let mut s = plan.session(batch).unwrap();
        let kernels: Vec<&str> = (0..plan.steps().len()).map(|i| s.kernel_name(i)).collect();
        // An edge pad keeps the reference path.
        assert_eq!(kernels, ["f32-slice", "f32-pad", "f32-slice", "reference"]);
        let want = run(&g, std::slice::from_ref(&xin)).unwrap();
        for _ in 0..2 {
            let got = s.run(std::slice::from_ref(&xin)).unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert_eq!(a.shape, b.shape);
                assert_eq!(a.as_f32().unwrap(), b.as_f32().unwrap());
            }
        }
    }
}
