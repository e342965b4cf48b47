//! Sparse and int4 linear steps against the reference executor.

use super::tests::mlp;
use super::*;
use crate::exec::run;
use shrink_graph::ops::activation::{Unary, UnaryKind};
use shrink_graph::ops::matmul::MatMul;
use shrink_graph::ops::quant::DequantizeLinear;
use shrink_graph::{DType, Dim, Fact};

fn seq(shape: Vec<usize>, k: f32) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::f32(shape, (0..n).map(|i| (i as f32 * k).sin()).collect())
}

/// Positive scales `base + amp·|sin(i·k)|`.
fn scales(n: usize, k: f32, base: f32, amp: f32) -> Tensor {
    Tensor::f32(vec![n], (0..n).map(|i| base + amp * (i as f32 * k).sin().abs()).collect())
}

fn max_err(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.shape, b.shape);
    a.as_f32()
        .unwrap()
        .iter()
        .zip(b.as_f32().unwrap())
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

/// `mlp(sizes)` with all but one weight in `keep` of every weight matrix set to zero.
fn pruned_mlp(sizes: &[usize], keep: usize) -> Graph {
    let mut g = mlp(sizes);
    for id in 0..g.values.len() {
        let Some(t) = g.const_value(id) else { continue };
        if t.shape.len() != 2 {
            continue;
        }
        let w: Vec<f32> = t
            .as_f32()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, &v)| if (i * 7919) % keep == 0 { v } else { 0.0 })
            .collect();
        let shape = t.shape.clone();
        g.set_const(id, Tensor::f32(shape, w));
    }
    g
}

fn linear(plan: &Plan, i: usize) -> &LinearStep {
    match &plan.steps()[i].kind {
        StepKind::Linear(l) => l,
        k => panic!("step {i} is not linear: {k:?}"),
    }
}

#[test]
fn pruned_weights_get_sparse_candidates_that_match_the_reference() {
    let g = pruned_mlp(&[40, 64, 33, 5], 10);
    let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
    assert_eq!(plan.steps().len(), 3);
    for i in 0..3 {
        let LinearWeights::Sparse(s) = &linear(&plan, i).weights else { panic!("step {i} is not sparse") };
        assert!(s.density < 0.15, "{}", s.density);
    }
    for batch in [1, 7] {
        let x = seq(vec![batch, 40], 0.3);
        let want = run(&g, std::slice::from_ref(&x)).unwrap().remove(0);
        let mut s = plan.session(batch).unwrap();
        // 90 % zeros: the sparse kernel is the default at batch 1 and beyond.
        assert_eq!(s.kernel_name(0), "sparse-csr-f32");
        for &k in linear::candidates(&linear(&plan, 0).weights) {
            // The 5-output layer's dense copy is rows, not panels (fewer outputs than a panel).
            for i in 0..3 {
                if linear::candidates(&linear(&plan, i).weights).contains(&k) {
                    s.set_linear_kernel(i, k).unwrap();
                }
            }
            let e = max_err(&s.run(std::slice::from_ref(&x)).unwrap()[0], &want);
            assert!(e <= 1e-5, "{k:?} batch {batch}: {e}");
        }
    }
    // Tuning picks one of the four candidates per step.
    let tuned = Plan::compile(&g, &PlanOptions { tune: true }).unwrap();
    let s = tuned.session(1).unwrap();
    for i in 0..3 {
        assert!(linear::candidates(&linear(&tuned, i).weights).contains(&s.linear_kernel(i).unwrap()));
    }
    assert_eq!(linear::candidates(&linear(&tuned, 0).weights).len(), 4);
}

#[test]
fn dense_weights_stay_dense_and_moderate_sparsity_keeps_dense_for_batches() {
    let plan = Plan::compile(&mlp(&[20, 33, 5]), &PlanOptions::default()).unwrap();
    assert!(!matches!(linear(&plan, 0).weights, LinearWeights::Sparse(_)));
    // 50 % zeros: sparse at batch 1, the dense kernel for a batch of 64.
    let g = pruned_mlp(&[64, 64, 5], 2);
    let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
    assert!(matches!(linear(&plan, 0).weights, LinearWeights::Sparse(_)));
    assert!(plan.session(1).unwrap().kernel_name(0).starts_with("sparse"));
    assert!(plan.session(64).unwrap().kernel_name(0).starts_with("dense"));
}

/// x → Gemm(DQ(codes [N, K], per-output scale), transB) + bias → ReLU → MatMul(DQ(codes [K, M],
/// scale along axis 1)). Codes in `[-lim, lim - 1]`.
fn int4_graph(k: usize, n: usize, m: usize, lim: i8) -> Graph {
    let mut g = Graph::new();
    let x = g.add_input("x", Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(k)])).unwrap();
    let codes = |len: usize, s: usize| -> Vec<i8> {
        (0..len).map(|i| (((i * 31 + s) % (2 * lim as usize)) as i32 - lim as i32) as i8).collect()
    };
    let q0 = g.add_const("fc0.q", Tensor::i8(vec![n, k], codes(n * k, 3))).unwrap();
    let s0 = g.add_const("fc0.s", scales(n, 0.7, 0.01, 0.02)).unwrap();
    let w0 = g.add_node("dq0", DequantizeLinear { axis: 0 }, &[q0, s0], &["w0".into()]).unwrap()[0];
    let b0 = g.add_const("fc0.bias", seq(vec![n], 0.11)).unwrap();
    let gemm = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
    let h = g.add_node("fc0", gemm, &[x, w0, b0], &["h".into()]).unwrap()[0];
    let r = g.add_node("relu", Unary { kind: UnaryKind::Relu }, &[h], &["r".into()]).unwrap()[0];
    let q1 = g.add_const("fc1.q", Tensor::i8(vec![n, m], codes(n * m, 5))).unwrap();
    let s1 = g.add_const("fc1.s", scales(m, 0.3, 0.05, 0.01)).unwrap();
    let w1 = g.add_node("dq1", DequantizeLinear { axis: 1 }, &[q1, s1], &["w1".into()]).unwrap()[0];
    let y = g.add_node("fc1", MatMul {}, &[r, w1], &["y".into()]).unwrap()[0];
    g.set_outputs(vec![y]);
    g
}

#[test]
fn int4_dequantize_weights_run_as_int4_steps() {
    let g = int4_graph(300, 70, 9, 8);
    let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
    let ops: Vec<&str> = plan.steps().iter().map(|s| s.op.as_str()).collect();
    assert_eq!(ops, ["Gemm+relu", "MatMul"], "the DequantizeLinear nodes are absorbed");
    for i in 0..2 {
        assert!(matches!(linear(&plan, i).weights, LinearWeights::Int4(_)));
    }
    for batch in [1, 6] {
        let x = seq(vec![batch, 300], 0.37);
        let want = run(&g, std::slice::from_ref(&x)).unwrap().remove(0);
        let mut s = plan.session(batch).unwrap();
        assert_eq!(s.kernel_name(0), "int4-u8act");
        // W4A8: within the activations' u8 rounding.
        let e = max_err(&s.run(std::slice::from_ref(&x)).unwrap()[0], &want);
        assert!(e <= 0.02, "int4-u8act batch {batch}: {e}");
        // f32 activations: the reference up to f32 rounding.
        for i in 0..2 {
            s.set_linear_kernel(i, LinearKernel::Int4F32).unwrap();
        }
        let e = max_err(&s.run(std::slice::from_ref(&x)).unwrap()[0], &want);
        assert!(e <= 1e-4, "int4-f32act batch {batch}: {e}");
    }
}

#[test]
fn int8_codes_outside_int4_stay_on_the_reference_path() {
    let g = int4_graph(40, 8, 3, 9);
    let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
    assert!(plan.steps().iter().any(|s| s.op == "DequantizeLinear"));
    assert!(!plan
        .steps()
        .iter()
        .any(|s| matches!(&s.kind, StepKind::Linear(l) if matches!(l.weights, LinearWeights::Int4(_)))));
    let x = seq(vec![2, 40], 0.2);
    let got = plan.session(2).unwrap().run(std::slice::from_ref(&x)).unwrap().remove(0);
    assert!(max_err(&got, &run(&g, &[x]).unwrap()[0]) <= 1e-5);
}
