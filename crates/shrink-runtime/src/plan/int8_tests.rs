//! Int8 steps against the reference executor on small QDQ graphs (odd sizes, per-channel and
//! per-tensor weight scales, u8 and i8 activation codes, depthwise / strided / dilated /
//! asymmetrically padded / pointwise convolutions, fused ReLU and Clip).
//!
//! Tolerance: the int8 path's integer sums are exact and equal the reference's sums of
//! products of dequantized values; only the f32 arithmetic differs (the reference rounds every
//! product and partial sum, the int8 step rounds `acc · (sx · sw)` once). Outputs must agree
//! within `1e-5 · max(1, max |reference output|)` per tensor.

use super::*;
use crate::exec::run;
use shrink_graph::ops::activation::{Clip, Unary, UnaryKind};
use shrink_graph::ops::binary::{Binary, BinaryKind};
use shrink_graph::ops::combine::Slice;
use shrink_graph::ops::conv::Conv;
use shrink_graph::ops::matmul::MatMul;
use shrink_graph::ops::pool::{GlobalPool, PoolKind};
use shrink_graph::ops::quant::{DequantizeLinear, QuantizeLinear};
use shrink_graph::ops::shape::Flatten;
use shrink_graph::{DType, Dim, Fact};

fn seq(shape: Vec<usize>, k: f32) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::f32(shape, (0..n).map(|i| (i as f32 * k).sin()).collect())
}

/// `DequantizeLinear(QuantizeLinear(x))` per tensor with `scale` and zero point `zp` (u8 codes;
/// i8 codes with zero point `zp − 128` when `i8` is set).
fn qdq(g: &mut Graph, x: ValueId, tag: &str, scale: f32, zp: u8, i8: bool) -> ValueId {
    let s = g.add_const(&format!("{tag}.s"), Tensor::f32(vec![], vec![scale])).unwrap();
    let (z, dtype) = if i8 {
        (Tensor::i8(vec![], vec![(zp as i16 - 128) as i8]), DType::I8)
    } else {
        (Tensor::u8(vec![], vec![zp]), DType::U8)
    };
    let z = g.add_const(&format!("{tag}.z"), z).unwrap();
    let q =
        g.add_node(&format!("{tag}.q"), QuantizeLinear { axis: 1, dtype }, &[x, s, z], &[format!("{tag}.q")]);
    let q = q.unwrap()[0];
    g.add_node(&format!("{tag}.dq"), DequantizeLinear { axis: 1 }, &[q, s, z], &[format!("{tag}.dq")])
        .unwrap()[0]
}

/// Weight `w` as symmetric i8 codes + DequantizeLinear: per channel along `axis`, or per tensor;
/// `zp` is the (normally zero) weight zero point.
fn qweight(g: &mut Graph, tag: &str, w: &Tensor, axis: usize, per_channel: bool, zp: i8) -> ValueId {
    let d = w.as_f32().unwrap();
    let c = if per_channel { w.shape[axis] } else { 1 };
    let inner: usize = w.shape[axis + 1..].iter().product();
    let ch = |i: usize| if per_channel { (i / inner) % c } else { 0 };
    let mut amax = vec![0f32; c];
    d.iter().enumerate().for_each(|(i, v)| amax[ch(i)] = amax[ch(i)].max(v.abs()));
    let scales: Vec<f32> = amax.iter().map(|a| if *a > 0.0 { a / 127.0 } else { 1.0 }).collect();
    let codes: Vec<i8> =
        d.iter().enumerate().map(|(i, v)| (v / scales[ch(i)]).round().clamp(-127.0, 127.0) as i8).collect();
    let q = g.add_const(&format!("{tag}.wq"), Tensor::i8(w.shape.clone(), codes)).unwrap();
    let sshape = if per_channel { vec![c] } else { vec![] };
    let s = g.add_const(&format!("{tag}.ws"), Tensor::f32(sshape.clone(), scales)).unwrap();
    let z = g.add_const(&format!("{tag}.wz"), Tensor::i8(sshape, vec![zp; c])).unwrap();
    let dq = DequantizeLinear { axis: axis as i64 };
    g.add_node(&format!("{tag}.wdq"), dq, &[q, s, z], &[format!("{tag}.w")]).unwrap()[0]
}

fn relu(g: &mut Graph, x: ValueId, tag: &str) -> ValueId {
    g.add_node(tag, Unary { kind: UnaryKind::Relu }, &[x], &[tag.to_string()]).unwrap()[0]
}

fn clip(g: &mut Graph, x: ValueId, tag: &str) -> ValueId {
    g.add_node(tag, Clip { min: Some(0.0), max: Some(1.5) }, &[x], &[tag.to_string()]).unwrap()[0]
}

fn input(g: &mut Graph, dims: &[usize]) -> ValueId {
    let mut shape = vec![Dim::Sym("N".into())];
    shape.extend(dims.iter().map(|&d| Dim::Fixed(d)));
    g.add_input("x", Fact::dims(DType::F32, shape)).unwrap()
}

/// x[N, 7] → Gemm(Wᵀ per channel, bias) → ReLU → MatMul(W per tensor) → Clip → (i8 codes)
/// Gemm(W not transposed, alpha, beta·C).
fn qdq_mlp() -> Graph {
    let mut g = Graph::new();
    let x = input(&mut g, &[7]);
    let a = qdq(&mut g, x, "a0", 0.02, 120, false);
    let w = qweight(&mut g, "fc0", &seq(vec![13, 7], 0.37), 0, true, 0);
    let b = g.add_const("fc0.b", seq(vec![13], 0.11)).unwrap();
    let gemm = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
    let h = g.add_node("fc0", gemm, &[a, w, b], &["h0".into()]).unwrap()[0];
    let h = relu(&mut g, h, "r0");
    let a = qdq(&mut g, h, "a1", 0.03, 0, false);
    let w = qweight(&mut g, "fc1", &seq(vec![13, 5], 0.53), 1, false, 0);
    let h = g.add_node("fc1", MatMul {}, &[a, w], &["h1".into()]).unwrap()[0];
    let h = clip(&mut g, h, "c1");
    let a = qdq(&mut g, h, "a2", 0.007, 3, true);
    let w = qweight(&mut g, "fc2", &seq(vec![5, 3], 0.71), 1, true, 0);
    let c = g.add_const("fc2.c", seq(vec![3], 0.9)).unwrap();
    let gemm = Gemm { alpha: 0.5, beta: 2.0, trans_a: false, trans_b: false };
    let y = g.add_node("fc2", gemm, &[a, w, c], &["y".into()]).unwrap()[0];
    g.set_outputs(vec![y]);
    g
}

fn conv(strides: [usize; 2], pads: [usize; 4], dil: [usize; 2], groups: usize) -> Conv {
    Conv { strides: strides.to_vec(), pads: pads.to_vec(), dilations: dil.to_vec(), groups }
}

/// x[N, 3, 11, 9] → conv 3×3 (+bias, ReLU) → depthwise 3×3 stride 2 (+bias, Clip) → conv 3×2
/// stride (2, 1), dilation (1, 2), pads (0, 1, 1, 0) → pointwise 1×1 (+ReLU) → global average
/// pool → flatten → Gemm. Then a grouped conv (2 groups, not depthwise) and a conv with a
/// nonzero weight zero point, which must keep the reference path.
fn qdq_convnet(extras: bool) -> Graph {
    let mut g = Graph::new();
    let x = input(&mut g, &[3, 11, 9]);
    let a = qdq(&mut g, x, "a0", 0.01, 128, false);
    let w = qweight(&mut g, "c0", &seq(vec![8, 3, 3, 3], 0.7), 0, true, 0);
    let b = g.add_const("c0.b", seq(vec![8], 0.3)).unwrap();
    let h = g.add_node("c0", conv([1, 1], [1; 4], [1, 1], 1), &[a, w, b], &["h0".into()]).unwrap()[0];
    let h = relu(&mut g, h, "r0");
    let a = qdq(&mut g, h, "a1", 0.02, 0, false);
    let w = qweight(&mut g, "dw", &seq(vec![8, 1, 3, 3], 0.9), 0, true, 0);
    let b = g.add_const("dw.b", seq(vec![8], 0.5)).unwrap();
    let h = g.add_node("dw", conv([2, 2], [1; 4], [1, 1], 8), &[a, w, b], &["h1".into()]).unwrap()[0];
    let h = clip(&mut g, h, "c1");
    let a = qdq(&mut g, h, "a2", 0.006, 0, true);
    let w = qweight(&mut g, "c2", &seq(vec![6, 8, 3, 2], 0.45), 0, true, 0);
    let h = g.add_node("c2", conv([2, 1], [0, 1, 1, 0], [1, 2], 1), &[a, w], &["h2".into()]).unwrap()[0];
    let a = qdq(&mut g, h, "a3", 0.03, 100, false);
    let w = qweight(&mut g, "pw", &seq(vec![5, 6, 1, 1], 0.8), 0, false, 0);
    let mut h = g.add_node("pw", conv([1, 1], [0; 4], [1, 1], 1), &[a, w], &["h3".into()]).unwrap()[0];
    h = relu(&mut g, h, "r3");
    if extras {
        // 5 channels do not split into 2 groups: slice 4 of them, after their Q/DQ.
        let a = qdq(&mut g, h, "a4", 0.02, 0, false);
        let sl = Slice { starts: vec![0], ends: vec![4], axes: vec![1], steps: vec![1] };
        let a = g.add_node("sl", sl, &[a], &["a4s".into()]).unwrap()[0];
        let w = qweight(&mut g, "grouped", &seq(vec![4, 2, 1, 1], 0.3), 0, true, 0);
        h = g.add_node("grouped", conv([1, 1], [0; 4], [1, 1], 2), &[a, w], &["h4".into()]).unwrap()[0];
        let a = qdq(&mut g, h, "a5", 0.02, 50, false);
        let w = qweight(&mut g, "asym", &seq(vec![4, 4, 1, 1], 0.6), 0, true, 3);
        h = g.add_node("asym", conv([1, 1], [0; 4], [1, 1], 1), &[a, w], &["h5".into()]).unwrap()[0];
    }
    let p = g.add_node("pool", GlobalPool { kind: PoolKind::Avg }, &[h], &["p".into()]).unwrap()[0];
    let f = g.add_node("flat", Flatten { axis: 1 }, &[p], &["f".into()]).unwrap()[0];
    let a = qdq(&mut g, f, "a6", 0.01, 0, false);
    let c = g.values[f].fact.shape[1].fixed().unwrap();
    let w = qweight(&mut g, "fc", &seq(vec![3, c], 0.6), 0, true, 0);
    let gemm = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
    let y = g.add_node("fc", gemm, &[a, w], &["y".into()]).unwrap()[0];
    g.set_outputs(vec![y]);
    g
}

/// The plan's outputs at several batch sizes (two runs per session) against the reference.
fn check_against_reference(g: &Graph, example: &[usize]) -> Plan {
    let plan = Plan::compile(g, &PlanOptions::default()).unwrap();
    for batch in [1, 2, 5] {
        let mut shape = vec![batch];
        shape.extend_from_slice(example);
        let x = seq(shape, 0.173 + batch as f32 * 0.01);
        let want = run(g, std::slice::from_ref(&x)).unwrap().remove(0);
        let mut s = plan.session(batch).unwrap();
        for pass in 0..2 {
            let got = s.run(std::slice::from_ref(&x)).unwrap().remove(0);
            assert_eq!(got.shape, want.shape);
            let w = want.as_f32().unwrap();
            let scale = w.iter().fold(1f32, |m, v| m.max(v.abs()));
            // Not a degenerate case (everything saturated or clipped to one value).
            assert!(w.iter().any(|v| (v - w[0]).abs() > 1e-2), "batch {batch}: constant output {w:?}");
            for (i, (a, b)) in got.as_f32().unwrap().iter().zip(w).enumerate() {
                assert!((a - b).abs() <= 1e-5 * scale, "batch {batch} run {pass} [{i}]: {a} vs {b}");
            }
        }
    }
    plan
}

fn count(plan: &Plan, f: impl Fn(&StepKind) -> bool) -> usize {
    plan.steps().iter().filter(|s| f(&s.kind)).count()
}

#[test]
fn qdq_mlp_runs_int8_and_equals_the_reference() {
    let plan = check_against_reference(&qdq_mlp(), &[7]);
    assert_eq!(count(&plan, |k| matches!(k, StepKind::Int8Linear(_))), 3);
    // Every Quantize/Dequantize node was absorbed: three int8 steps and nothing else.
    assert_eq!(plan.steps().len(), 3, "{:?}", plan.steps().iter().map(|s| &s.op).collect::<Vec<_>>());
    let ops: Vec<&str> = plan.steps().iter().map(|s| s.op.as_str()).collect();
    assert_eq!(ops, ["Gemm+relu", "MatMul+clip", "Gemm"]);
    let s = plan.session(4).unwrap();
    assert!((0..3).all(|i| s.kernel_name(i) == "int8-gemm"));
}

#[test]
fn qdq_convnet_runs_int8_and_equals_the_reference() {
    let plan = check_against_reference(&qdq_convnet(false), &[3, 11, 9]);
    assert_eq!(count(&plan, |k| matches!(k, StepKind::Int8Conv(_))), 4);
    assert_eq!(count(&plan, |k| matches!(k, StepKind::Int8Linear(_))), 1);
    let s = plan.session(2).unwrap();
    let kernels: Vec<&str> = (0..plan.steps().len()).map(|i| s.kernel_name(i)).collect();
    assert_eq!(
        kernels,
        [
            direct_or("int8-im2col"),
            "int8-depthwise",
            "int8-im2col",
            direct_or("int8-pointwise"),
            "reference",
            "reference",
            "int8-gemm"
        ]
    );
    let ops: Vec<&str> = plan.steps().iter().map(|s| s.op.as_str()).collect();
    assert_eq!(ops[..4], ["Conv+relu", "Conv+clip", "Conv", "Conv+relu"]);
}

#[test]
fn unsupported_patterns_keep_the_reference_path() {
    // A grouped (not depthwise) conv and a conv whose weights have a zero point run as before.
    let plan = check_against_reference(&qdq_convnet(true), &[3, 11, 9]);
    assert_eq!(count(&plan, |k| matches!(k, StepKind::Int8Conv(_))), 4);
    let reference_convs = plan
        .steps()
        .iter()
        .filter(|s| matches!(&s.kind, StepKind::Reference(Op::Conv(_))))
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>();
    assert_eq!(reference_convs, ["grouped", "asym"]);
    // Their activations are still quantized by the reference operators.
    assert!(count(&plan, |k| matches!(k, StepKind::Reference(Op::QuantizeLinear(_)))) >= 2);
}

#[test]
fn a_shared_quantized_activation_is_kept_for_its_other_readers() {
    // The dequantized activation also feeds an Add: its Q/DQ nodes stay (reference steps), the
    // Gemm still runs int8.
    let mut g = Graph::new();
    let x = input(&mut g, &[6]);
    let a = qdq(&mut g, x, "a0", 0.02, 128, false);
    let w = qweight(&mut g, "fc", &seq(vec![6, 6], 0.4), 0, true, 0);
    let gemm = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
    let h = g.add_node("fc", gemm, &[a, w], &["h".into()]).unwrap()[0];
    let add = Binary { kind: BinaryKind::Add };
    let y = g.add_node("add", add, &[h, a], &["y".into()]).unwrap()[0];
    g.set_outputs(vec![y]);
    let plan = check_against_reference(&g, &[6]);
    assert_eq!(count(&plan, |k| matches!(k, StepKind::Int8Linear(_))), 1);
    assert_eq!(count(&plan, |k| matches!(k, StepKind::Reference(Op::QuantizeLinear(_)))), 1);
}

/// The direct kernel runs the stride-1 one-group convs on a CPU with VNNI; the GEMM otherwise.
fn direct_or(other: &'static str) -> &'static str {
    if shrink_kernels::Isa::detect() == shrink_kernels::Isa::Avx512Vnni {
        "int8-direct"
    } else {
        other
    }
}

/// x[N, 5, 7, 9] → int8 conv 3×3 + ReLU → int8 conv 3×3 → Add x → ReLU (a residual block,
/// odd sizes) → int8 conv 3×3 dilation (2, 1), pads (2, 1, 1, 0) + Add of `0.5·x` computed
/// after it → global pool → Gemm.
fn qdq_residual() -> Graph {
    let mut g = Graph::new();
    let x = input(&mut g, &[5, 7, 9]);
    let a = qdq(&mut g, x, "a0", 0.01, 128, false);
    let w = qweight(&mut g, "c0", &seq(vec![5, 5, 3, 3], 0.7), 0, true, 0);
    let b = g.add_const("c0.b", seq(vec![5], 0.3)).unwrap();
    let h = g.add_node("c0", conv([1, 1], [1; 4], [1, 1], 1), &[a, w, b], &["h0".into()]).unwrap()[0];
    let h = relu(&mut g, h, "r0");
    let a = qdq(&mut g, h, "a1", 0.02, 0, false);
    let w = qweight(&mut g, "c1", &seq(vec![5, 5, 3, 3], 0.45), 0, true, 0);
    let h = g.add_node("c1", conv([1, 1], [1; 4], [1, 1], 1), &[a, w], &["h1".into()]).unwrap()[0];
    let add = Binary { kind: BinaryKind::Add };
    let s = g.add_node("add1", add.clone(), &[h, x], &["s1".into()]).unwrap()[0];
    let r = relu(&mut g, s, "r1");
    let a = qdq(&mut g, r, "a2", 0.02, 10, true);
    let w = qweight(&mut g, "c2", &seq(vec![5, 5, 3, 3], 0.8), 0, false, 0);
    let b = g.add_const("c2.b", seq(vec![5], 0.9)).unwrap();
    let h = g.add_node("c2", conv([1, 1], [2, 1, 1, 0], [2, 1], 1), &[a, w, b], &["h2".into()]).unwrap()[0];
    let half = g.add_const("half", Tensor::f32(vec![], vec![0.5])).unwrap();
    let hx = g.add_node("half_x", Binary { kind: BinaryKind::Mul }, &[x, half], &["hx".into()]).unwrap()[0];
    // The conv's output is 6×8 (rows 7 + 3 − 5 + 1, columns 9 + 1 − 3 + 1): slice x to fit.
    let sl = Slice { starts: vec![0, 0], ends: vec![6, 8], axes: vec![2, 3], steps: vec![1, 1] };
    let hx = g.add_node("hx_sl", sl, &[hx], &["hxs".into()]).unwrap()[0];
    let s = g.add_node("add2", add, &[hx, h], &["s2".into()]).unwrap()[0];
    let p = g.add_node("pool", GlobalPool { kind: PoolKind::Avg }, &[s], &["p".into()]).unwrap()[0];
    let f = g.add_node("flat", Flatten { axis: 1 }, &[p], &["f".into()]).unwrap()[0];
    let wl = g.add_const("wl", seq(vec![3, 5], 0.6)).unwrap();
    let gemm = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
    let y = g.add_node("fc", gemm, &[f, wl], &["y".into()]).unwrap()[0];
    g.set_outputs(vec![y]);
    g
}

#[test]
fn residual_adds_fuse_into_int8_convs() {
    let g = qdq_residual();
    let h2 = &g.values[g.find("h2").unwrap()].fact.shape;
    assert_eq!(h2[2..], [Dim::Fixed(6), Dim::Fixed(8)]);
    let plan = check_against_reference(&g, &[5, 7, 9]);
    assert_eq!(plan.stats().residuals_fused, 2);
    let ops: Vec<&str> = plan.steps().iter().map(|s| s.op.as_str()).collect();
    assert_eq!(
        ops,
        ["Conv+relu", "Conv+add+relu", "Binary", "Slice", "Conv+add", "GlobalAveragePool", "Flatten", "Gemm"]
    );
    let s = plan.session(3).unwrap();
    for i in [0, 1, 4] {
        assert_eq!(s.kernel_name(i), direct_or("int8-im2col"), "step {i}");
    }
    assert_eq!(s.kernel_name(2), "reference");
}
