//! Candle lowering of the `nn` op family (shrink_ir::graph_exec::nn): every fixture case of
//! tests/fixtures/graph_ops/nn run through `GraphModel` matches onnxruntime; batch norm in
//! train mode normalizes with the batch statistics and updates the running ones as PyTorch
//! does; autograd gradients match central finite differences of the lowered forward.
mod graph_support;

use candle_core::{Device, Tensor, Var};
use shrink_graph::ops::conv::{Conv, ConvTranspose};
use shrink_graph::ops::matmul::{Gemm, MatMul};
use shrink_graph::ops::norm::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm};
use shrink_graph::ops::pool::{CoordMode, GlobalPool, NearestMode, Pool, PoolKind, Resize};
use shrink_graph::{Op, ValueDef};
use shrink_ir::graph_exec::{from_candle, lower_op, to_candle, GraphModel, LowerCtx};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph_ops/nn")
}

/// Cases candle cannot run, with the reason (none so far).
const UNSUPPORTED: &[(&str, &str)] = &[];

/// Run case `name` through `GraphModel` (eval mode; also train mode when the graph has no batch
/// norm, where the modes must agree) and compare with onnxruntime's outputs.
fn run_case(dir: &Path, name: &str) -> Result<(), String> {
    let case = graph_support::load(dir, name);
    let graph = shrink_io::onnx::graph_import::load_graph(&case.onnx).map_err(|e| format!("import: {e}"))?;
    let has_bn = graph.nodes.iter().any(|n| matches!(n.op, Op::BatchNorm(_)));
    let model = GraphModel::new(graph, &Device::Cpu).map_err(|e| format!("model: {e}"))?;
    let inputs: Vec<Tensor> = case
        .inputs
        .iter()
        .map(|t| to_candle(t, &Device::Cpu))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("inputs: {e}"))?;
    let modes: &[bool] = if has_bn { &[false] } else { &[false, true] };
    for &train in modes {
        let outs = model.forward(&inputs, train).map_err(|e| format!("forward (train {train}): {e}"))?;
        if outs.len() != case.expected.len() {
            return Err(format!("{} outputs, onnxruntime gave {}", outs.len(), case.expected.len()));
        }
        for (k, (o, want)) in outs.iter().zip(&case.expected).enumerate() {
            let got = from_candle(o, want.dtype()).map_err(|e| format!("output {k}: {e}"))?;
            if got.shape != want.shape {
                return Err(format!("output {k}: shape {:?}, onnxruntime {:?}", got.shape, want.shape));
            }
            let err = graph_support::max_rel_err(&format!("{name} output {k}"), &got, want);
            if err > 1e-4 {
                return Err(format!("output {k} (train {train}): max relative error {err} > 1e-4"));
            }
        }
    }
    Ok(())
}

#[test]
fn every_nn_case_matches_onnxruntime_in_candle() {
    let dir = dir();
    let cases = graph_support::cases(&dir);
    assert!(cases.len() >= 60, "expected the nn fixtures, found {} cases", cases.len());
    let cases: Vec<String> =
        cases.into_iter().filter(|name| !UNSUPPORTED.iter().any(|(n, _)| n == name)).collect();
    graph_support::check_all(&cases, |name| run_case(&dir, name));
}

// ---------------------------------------------------------------------------------------------
// Helpers: random tensors, lowering one op.

/// xorshift64* numbers (reproducible, no dependency).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        (v as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| self.uniform()).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }
    /// Distinct values 0.05 apart in random order (no ties within a max-pool window).
    fn distinct(&mut self, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let mut v: Vec<f32> = (0..n).map(|k| k as f32 * 0.05 - n as f32 * 0.025).collect();
        for i in (1..n).rev() {
            let j = ((self.uniform() + 1.0) / 2.0 * (i + 1) as f32) as usize % (i + 1);
            v.swap(i, j);
        }
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Lower `op` on `ins`; returns its first output and the running-statistic updates.
fn lower(op: &Op, ins: &[Tensor], train: bool) -> (Tensor, Vec<(usize, Tensor)>) {
    let syms = HashMap::new();
    let dev = Device::Cpu;
    let ctx = LowerCtx { train, bn_momentum: 0.1, syms: &syms, device: &dev, updates: RefCell::new(vec![]) };
    let refs: Vec<&Tensor> = ins.iter().collect();
    let out = lower_op(op, &refs, &ctx).unwrap_or_else(|e| panic!("{op:?}: {e}")).remove(0);
    (out, ctx.updates.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Train mode

/// Batch norm by PyTorch's formulas in f64: (y, new running mean, new running var).
fn bn_reference(
    x: &[f32],
    shape: &[usize],
    p: [&[f32]; 4],
    eps: f64,
    momentum: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (n, c) = (shape[0], shape[1]);
    let plane: usize = shape[2..].iter().product();
    let count = (n * plane) as f64;
    let at = |b: usize, ch: usize, i: usize| x[(b * c + ch) * plane + i] as f64;
    let mut y = vec![0.0; x.len()];
    let (mut rm, mut rv) = (vec![0.0; c], vec![0.0; c]);
    for ch in 0..c {
        let vals: Vec<f64> =
            (0..n).flat_map(|b| (0..plane).map(move |i| (b, i))).map(|(b, i)| at(b, ch, i)).collect();
        let mean = vals.iter().sum::<f64>() / count;
        let ss = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
        let (biased, unbiased) = (ss / count, ss / (count - 1.0));
        for b in 0..n {
            for i in 0..plane {
                let k = (b * c + ch) * plane + i;
                y[k] = (x[k] as f64 - mean) / (biased + eps).sqrt() * p[0][ch] as f64 + p[1][ch] as f64;
            }
        }
        rm[ch] = (1.0 - momentum) * p[2][ch] as f64 + momentum * mean;
        rv[ch] = (1.0 - momentum) * p[3][ch] as f64 + momentum * unbiased;
    }
    (y, rm, rv)
}

fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g as f64 - w).abs() <= tol * w.abs().max(1.0), "{what}[{k}]: {g} vs {w}");
    }
}

#[test]
fn batch_norm_train_uses_batch_stats_and_updates_running_stats() {
    let mut rng = Rng(7);
    let shape = [3, 2, 2, 3];
    let x = rng.tensor(&shape).affine(2.0, 0.5).unwrap();
    let scale = rng.tensor(&[2]);
    let bias = rng.tensor(&[2]);
    let rm = rng.tensor(&[2]);
    let rv = rng.tensor(&[2]).affine(0.3, 1.0).unwrap();
    let op = Op::BatchNorm(BatchNorm { epsilon: 1e-5 });
    let ins = [x.clone(), scale.clone(), bias.clone(), rm.clone(), rv.clone()];
    let (y, updates) = lower(&op, &ins, true);
    let p = [flat(&scale), flat(&bias), flat(&rm), flat(&rv)];
    let (wy, wm, wv) = bn_reference(&flat(&x), &shape, [&p[0], &p[1], &p[2], &p[3]], 1e-5, 0.1);
    assert_close("train y", &flat(&y), &wy, 1e-5);
    assert_eq!(updates.iter().map(|u| u.0).collect::<Vec<_>>(), vec![3, 4], "updated inputs");
    assert_close("running mean", &flat(&updates[0].1), &wm, 1e-6);
    assert_close("running var", &flat(&updates[1].1), &wv, 1e-6);
    // Eval mode uses the running statistics and updates nothing.
    let (ye, none) = lower(&op, &ins, false);
    assert!(none.is_empty());
    let want: Vec<f64> = flat(&x)
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let ch = (k / 6) % 2;
            (v as f64 - p[2][ch] as f64) / (p[3][ch] as f64 + 1e-5).sqrt() * p[0][ch] as f64 + p[1][ch] as f64
        })
        .collect();
    assert_close("eval y", &flat(&ye), &want, 1e-5);
}

#[test]
fn graph_model_train_step_writes_running_stats_back() {
    let dir = dir();
    let case = graph_support::load(&dir, "bn_4d");
    let graph = shrink_io::onnx::graph_import::load_graph(&case.onnx).unwrap();
    let node = graph.nodes.iter().find(|n| matches!(n.op, Op::BatchNorm(_))).expect("a batch norm").clone();
    let Op::BatchNorm(bn) = &node.op else { unreachable!() };
    let eps = bn.epsilon as f64;
    let konst = |g: &shrink_graph::Graph, k: usize| match &g.values[node.inputs[k]].def {
        ValueDef::Const(t) => t.as_f32().expect("f32 parameter").to_vec(),
        d => panic!("input {k} of the batch norm is not a constant: {d:?}"),
    };
    let p: Vec<Vec<f32>> = (1..5).map(|k| konst(&graph, k)).collect();
    let x = &case.inputs[0];
    let mut model = GraphModel::new(graph, &Device::Cpu).unwrap();
    model.bn_momentum = 0.25;
    let out = model.forward(&[to_candle(x, &Device::Cpu).unwrap()], true).unwrap();
    let (wy, wm, wv) = bn_reference(x.as_f32().unwrap(), &x.shape, [&p[0], &p[1], &p[2], &p[3]], eps, 0.25);
    assert_close("train output", &flat(&out[0]), &wy, 1e-4);
    let g = model.to_graph().unwrap();
    let (m, v) = (konst(&g, 3), konst(&g, 4));
    assert_close("running mean written back", &m, &wm, 1e-6);
    assert_close("running var written back", &v, &wv, 1e-6);
    // The running statistics are not trained parameters.
    let trained: Vec<String> = model.trainable_vars().into_iter().map(|(n, _)| n).collect();
    assert!(!trained.contains(&g.values[node.inputs[3]].name), "{trained:?}");
}

// ---------------------------------------------------------------------------------------------
// Gradients by central finite differences

/// Compare autograd gradients of `loss = Σ out·w` (w fixed random) w.r.t. the f32 inputs
/// `check` with central differences (step `h`) of the lowered forward, the loss summed in f64.
/// Returns the mismatches.
fn grad_check(name: &str, op: &Op, ins: &[Tensor], check: &[usize], train: bool, h: f32) -> Vec<String> {
    let mut rng = Rng(99);
    let vars: Vec<Option<Var>> = ins
        .iter()
        .enumerate()
        .map(|(k, t)| check.contains(&k).then(|| Var::from_tensor(t).unwrap()))
        .collect();
    let live: Vec<Tensor> = ins
        .iter()
        .zip(&vars)
        .map(|(t, v)| v.as_ref().map(|v| v.as_tensor().clone()).unwrap_or_else(|| t.clone()))
        .collect();
    let (out, _) = lower(op, &live, train);
    let w = rng.tensor(out.dims());
    let grads = (&out * &w).unwrap().sum_all().unwrap().backward().unwrap();
    let wv = flat(&w);
    let loss = |ins: &[Tensor]| -> f64 {
        let (o, _) = lower(op, ins, train);
        flat(&o).iter().zip(&wv).map(|(&a, &b)| a as f64 * b as f64).sum()
    };
    let mut failures = Vec::new();
    for &k in check {
        let var = vars[k].as_ref().unwrap();
        let Some(g) = grads.get(var.as_tensor()) else {
            failures.push(format!("{name}: input {k} got no gradient"));
            continue;
        };
        assert_eq!(g.dims(), ins[k].dims(), "{name}: gradient shape of input {k}");
        let g = flat(g);
        let x = flat(&ins[k]);
        for i in 0..x.len() {
            let at = |d: f32| {
                let mut v = x.clone();
                v[i] += d;
                let mut moved = ins.to_vec();
                moved[k] = Tensor::from_vec(v, ins[k].dims(), &Device::Cpu).unwrap();
                loss(&moved)
            };
            let fd = (at(h) - at(-h)) / (2.0 * h as f64);
            if (g[i] as f64 - fd).abs() > 1e-2 * fd.abs().max(1.0) {
                failures.push(format!(
                    "{name}: d/d input {k}[{i}]: autograd {} vs finite differences {fd}",
                    g[i]
                ));
            }
        }
    }
    failures
}

fn conv(strides: &[usize], pads: &[usize], dilations: &[usize], groups: usize) -> Op {
    Op::Conv(Conv { strides: strides.to_vec(), pads: pads.to_vec(), dilations: dilations.to_vec(), groups })
}

fn pool(
    kind: PoolKind,
    kernel: &[usize],
    strides: &[usize],
    pads: &[usize],
    dil: &[usize],
    ceil: bool,
    incl: bool,
) -> Op {
    Op::Pool(Pool {
        kind,
        kernel: kernel.to_vec(),
        strides: strides.to_vec(),
        pads: pads.to_vec(),
        dilations: dil.to_vec(),
        ceil_mode: ceil,
        count_include_pad: incl,
    })
}

#[test]
fn convolution_gradients_match_finite_differences() {
    let mut r = Rng(1);
    let mut f = Vec::new();
    // 2-D: groups, per-axis stride, asymmetric pads, dilation, bias.
    let ins = [r.tensor(&[2, 4, 5, 6]), r.tensor(&[6, 2, 3, 2]), r.tensor(&[6])];
    f.extend(grad_check("conv2d", &conv(&[2, 1], &[1, 0, 0, 2], &[1, 2], 2), &ins, &[0, 1, 2], false, 1e-2));
    // Depthwise, symmetric pads (shrink's conv op as is).
    let ins = [r.tensor(&[1, 3, 5, 5]), r.tensor(&[3, 1, 3, 3])];
    f.extend(grad_check("depthwise", &conv(&[1, 1], &[1, 1, 1, 1], &[1, 1], 3), &ins, &[0, 1], false, 1e-2));
    // 1-D and 3-D.
    let ins = [r.tensor(&[2, 2, 7]), r.tensor(&[3, 2, 3]), r.tensor(&[3])];
    f.extend(grad_check("conv1d", &conv(&[2], &[2, 1], &[2], 1), &ins, &[0, 1, 2], false, 1e-2));
    let ins = [r.tensor(&[1, 2, 4, 3, 4]), r.tensor(&[2, 2, 2, 2, 3])];
    f.extend(grad_check(
        "conv3d",
        &conv(&[2, 1, 2], &[1, 0, 1, 0, 1, 1], &[1, 1, 1], 1),
        &ins,
        &[0, 1],
        false,
        1e-2,
    ));
    // Transposed: groups, stride, pads, output padding, dilation, bias.
    let op = Op::ConvTranspose(ConvTranspose {
        strides: vec![2, 1],
        pads: vec![1, 0, 0, 1],
        dilations: vec![1, 2],
        groups: 2,
        output_padding: vec![1, 0],
    });
    let ins = [r.tensor(&[1, 4, 3, 3]), r.tensor(&[4, 2, 3, 2]), r.tensor(&[4])];
    f.extend(grad_check("convT2d", &op, &ins, &[0, 1, 2], false, 1e-2));
    assert!(f.is_empty(), "{}", f.join("\n"));
}

#[test]
fn matrix_product_gradients_match_finite_differences() {
    let mut r = Rng(2);
    let mut f = Vec::new();
    let gemm = |alpha, beta, trans_a, trans_b| Op::Gemm(Gemm { alpha, beta, trans_a, trans_b });
    // transA, alpha, beta, a column C.
    let ins = [r.tensor(&[3, 4]), r.tensor(&[3, 5]), r.tensor(&[4, 1])];
    f.extend(grad_check("gemm transA", &gemm(0.5, 2.0, true, false), &ins, &[0, 1, 2], false, 1e-2));
    // A fully-connected layer (shrink's linear op).
    let ins = [r.tensor(&[3, 4]), r.tensor(&[5, 4]), r.tensor(&[5])];
    f.extend(grad_check("gemm linear", &gemm(1.0, 1.0, false, true), &ins, &[0, 1, 2], false, 1e-2));
    // Batched with broadcast batch axes, and a vector operand.
    let ins = [r.tensor(&[2, 1, 3, 4]), r.tensor(&[3, 4, 2])];
    f.extend(grad_check("matmul batched", &Op::MatMul(MatMul {}), &ins, &[0, 1], false, 1e-2));
    let ins = [r.tensor(&[4]), r.tensor(&[2, 4, 3])];
    f.extend(grad_check("matmul vector", &Op::MatMul(MatMul {}), &ins, &[0, 1], false, 1e-2));
    assert!(f.is_empty(), "{}", f.join("\n"));
}

#[test]
fn normalization_gradients_match_finite_differences() {
    let mut r = Rng(3);
    let mut f = Vec::new();
    let bn = Op::BatchNorm(BatchNorm { epsilon: 1e-5 });
    let var = r.tensor(&[3]).affine(0.2, 1.0).unwrap();
    let ins = [r.tensor(&[4, 3, 2, 2]), r.tensor(&[3]), r.tensor(&[3]), r.tensor(&[3]), var];
    f.extend(grad_check("batch norm train", &bn, &ins, &[0, 1, 2], true, 1e-2));
    f.extend(grad_check("batch norm eval", &bn, &ins, &[0, 1, 2], false, 1e-2));
    let ln = Op::LayerNorm(LayerNorm { axis: -2, epsilon: 1e-5 });
    let ins = [r.tensor(&[2, 3, 4]), r.tensor(&[3, 4]), r.tensor(&[4])];
    f.extend(grad_check("layer norm", &ln, &ins, &[0, 1, 2], false, 1e-2));
    let gn = Op::GroupNorm(GroupNorm { groups: 2, epsilon: 1e-5 });
    let ins = [r.tensor(&[2, 4, 3]), r.tensor(&[4]), r.tensor(&[4])];
    f.extend(grad_check("group norm", &gn, &ins, &[0, 1, 2], false, 1e-2));
    let inorm = Op::InstanceNorm(InstanceNorm { epsilon: 1e-5 });
    f.extend(grad_check("instance norm", &inorm, &ins, &[0, 1, 2], false, 1e-2));
    assert!(f.is_empty(), "{}", f.join("\n"));
}

#[test]
fn pooling_gradients_match_finite_differences() {
    let mut r = Rng(4);
    let mut f = Vec::new();
    let x = [r.distinct(&[2, 2, 5, 6])];
    // shrink's 2-D pools (overlapping averages take the separable path).
    let op = pool(PoolKind::Max, &[3, 3], &[2, 2], &[1, 1, 1, 1], &[1, 1], false, false);
    f.extend(grad_check("max pool 2d", &op, &x, &[0], false, 1e-3));
    let op = pool(PoolKind::Avg, &[3, 2], &[2, 1], &[1, 0, 1, 0], &[1, 1], false, true);
    f.extend(grad_check("avg pool include pads", &op, &x, &[0], false, 1e-3));
    let op = pool(PoolKind::Avg, &[2, 3], &[2, 3], &[1, 0, 1, 0], &[1, 1], false, true);
    f.extend(grad_check("avg pool 2d", &op, &[r.distinct(&[2, 2, 6, 6])], &[0], false, 1e-3));
    // Non-overlapping windows that do not tile the input take the separable path.
    let op = pool(PoolKind::Avg, &[2, 2], &[2, 2], &[1, 0, 1, 0], &[1, 1], false, true);
    f.extend(grad_check("avg pool 2d, a partial tile", &op, &x, &[0], false, 1e-3));
    // Separable windows: ceil mode, dilation, asymmetric pads, excluded pads.
    let op = pool(PoolKind::Max, &[2, 2], &[2, 2], &[1, 0, 0, 1], &[1, 2], true, false);
    f.extend(grad_check("max pool ceil dilated", &op, &x, &[0], false, 1e-3));
    let op = pool(PoolKind::Avg, &[3, 3], &[2, 2], &[0, 1, 2, 1], &[1, 1], true, false);
    f.extend(grad_check("avg pool exclude pads", &op, &x, &[0], false, 1e-3));
    let x1 = [r.distinct(&[1, 2, 9])];
    let op = pool(PoolKind::Max, &[3], &[2], &[1, 1], &[1], false, false);
    f.extend(grad_check("max pool 1d", &op, &x1, &[0], false, 1e-3));
    for kind in [PoolKind::Avg, PoolKind::Max] {
        f.extend(grad_check("global pool", &Op::GlobalPool(GlobalPool { kind }), &x, &[0], false, 1e-3));
    }
    let rs = Op::Resize(Resize {
        scales: vec![1.0, 1.0, 2.0, 0.5],
        sizes: None,
        coord: CoordMode::Asymmetric,
        nearest: NearestMode::Floor,
    });
    f.extend(grad_check("resize nearest", &rs, &x, &[0], false, 1e-3));
    assert!(f.is_empty(), "{}", f.join("\n"));
}

#[test]
fn unsupported_geometry_is_a_one_line_error() {
    let x = Tensor::zeros((1, 1, 2, 2, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
    let w = Tensor::zeros((1, 1, 1, 1, 1, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
    let syms = HashMap::new();
    let ctx = LowerCtx {
        train: false,
        bn_momentum: 0.1,
        syms: &syms,
        device: &Device::Cpu,
        updates: RefCell::new(vec![]),
    };
    let op = conv(&[1; 4], &[0; 8], &[1; 4], 1);
    let e = lower_op(&op, &[&x, &w], &ctx).unwrap_err().to_string();
    assert!(e.contains("Conv with 4 spatial axes is not supported") && !e.contains('\n'), "{e}");
    let op = conv(&[1; 3], &[0; 6], &[1; 3], 1);
    let e = lower_op(&op, &[&x, &w], &ctx).unwrap_err().to_string();
    assert!(e.contains("strides") && !e.contains('\n'), "{e}");
    // Zero strides or kernels are errors, never a division by zero.
    let x3 = Tensor::zeros((1, 1, 2, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
    let w3 = Tensor::zeros((1, 1, 1, 1, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
    let e = lower_op(&conv(&[0, 1, 1], &[0; 6], &[1; 3], 1), &[&x3, &w3], &ctx).unwrap_err().to_string();
    assert!(e.contains("strides [0, 1, 1] has a zero entry"), "{e}");
    let op = pool(PoolKind::Max, &[0, 1, 1], &[1; 3], &[0; 6], &[1; 3], false, false);
    let e = lower_op(&op, &[&x3], &ctx).unwrap_err().to_string();
    assert!(e.contains("MaxPool: kernel_shape [0, 1, 1] has a zero entry"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Whole graphs

#[test]
fn symbolic_batch_cases_run_with_another_batch_size() {
    // The same graph on a batch of 3 (the first example tiled): each example's outputs equal
    // onnxruntime's for the first example (symbolic sizes resolve through the context).
    let dir = dir();
    let names = ["conv2d_depthwise", "bn_4d", "maxpool2d_pads_strides", "layernorm_last_axis"];
    for name in names {
        let case = graph_support::load(&dir, name);
        let graph = shrink_io::onnx::graph_import::load_graph(&case.onnx).unwrap();
        let x = to_candle(&case.inputs[0], &Device::Cpu).unwrap();
        let first = x.narrow(0, 0, 1).unwrap();
        let tiled = Tensor::cat(&[&first, &first, &first], 0).unwrap();
        let got = GraphModel::new(graph, &Device::Cpu)
            .unwrap()
            .forward(&[tiled], false)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = to_candle(&case.expected[0], &Device::Cpu).unwrap().narrow(0, 0, 1).unwrap();
        assert_eq!(got[0].dim(0).unwrap(), 3, "{name}");
        let w = flat(&want);
        for k in 0..3 {
            let g = flat(&got[0].narrow(0, k, 1).unwrap());
            for (a, b) in g.iter().zip(&w) {
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{name}: example {k}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn every_trained_parameter_of_an_imported_graph_gets_a_gradient() {
    let dir = dir();
    for name in
        ["conv2d_pads_bias", "gemm_transB_bias", "convT2d_stride_pads_outpad_bias", "layernorm_last_axis"]
    {
        let case = graph_support::load(&dir, name);
        let graph = shrink_io::onnx::graph_import::load_graph(&case.onnx).unwrap();
        let model = GraphModel::new(graph, &Device::Cpu).unwrap();
        let vars = model.trainable_vars();
        assert!(!vars.is_empty(), "{name}: no trained parameters");
        let inputs: Vec<Tensor> = case.inputs.iter().map(|t| to_candle(t, &Device::Cpu).unwrap()).collect();
        let out = model.forward(&inputs, true).unwrap();
        let grads = out[0].sqr().unwrap().sum_all().unwrap().backward().unwrap();
        for (pname, v) in &vars {
            let g = grads.get(v.as_tensor()).unwrap_or_else(|| panic!("{name}: `{pname}` got no gradient"));
            assert_eq!(g.dims(), v.dims(), "{name}: `{pname}`");
            assert!(flat(g).iter().any(|x| *x != 0.0), "{name}: `{pname}` has a zero gradient");
        }
    }
}

#[test]
fn resize_resolves_symbolic_sizes() {
    let x = Tensor::from_vec(vec![1f32, 2., 3., 4., 5., 6.], (2, 3), &Device::Cpu).unwrap();
    let op = Op::Resize(Resize {
        scales: vec![1.0, 2.0 / 3.0],
        sizes: Some(vec![shrink_graph::Dim::Sym("N".into()), shrink_graph::Dim::Fixed(2)]),
        coord: CoordMode::Asymmetric,
        nearest: NearestMode::Floor,
    });
    let syms = HashMap::from([("N".to_string(), 2)]);
    let ctx = LowerCtx {
        train: false,
        bn_momentum: 0.1,
        syms: &syms,
        device: &Device::Cpu,
        updates: RefCell::new(vec![]),
    };
    let y = lower_op(&op, &[&x], &ctx).unwrap().remove(0);
    assert_eq!(y.to_vec2::<f32>().unwrap(), vec![vec![1.0, 2.0], vec![4.0, 5.0]]);
    let unbound = HashMap::new();
    let ctx = LowerCtx { syms: &unbound, ..ctx };
    let e = lower_op(&op, &[&x], &ctx).unwrap_err().to_string();
    assert!(e.contains("`N` is not bound"), "{e}");
}
