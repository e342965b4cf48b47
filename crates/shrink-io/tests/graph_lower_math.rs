//! Candle lowering of the `math` op family (issue 20 point 5: training of imported graphs).
//!
//! 1. Every case of `fixtures/graph_ops/math` (written by `tools/onnx_ops_math.py`), imported
//!    and run through `GraphModel::forward` in eval and in train mode, equals onnxruntime's
//!    outputs within 1e-4 relative (the math family has no train-mode behaviour of its own, so
//!    both modes must give onnxruntime's values).
//! 2. Gradients of the lowered ops (loss = sum(out · fixed random weights), `loss.backward()`)
//!    equal central finite differences of an f64 reference computed here, for every f32 input:
//!    graph inputs fed as `Var`s and trainable constants (`GraphModel::trainable_vars`).

mod graph_support;

use candle_core::{Device, Tensor as CTensor, Var};
use shrink_graph::ops::activation::{
    Clip, Elu, Gelu, HardSigmoid, LeakyRelu, LogSoftmax, Softmax, Unary, UnaryKind,
};
use shrink_graph::ops::binary::{Binary, BinaryKind, Where};
use shrink_graph::ops::reduce::{Reduce, ReduceKind};
use shrink_graph::{Graph, Op, Tensor};
use shrink_ir::graph_exec::{from_candle, to_candle, GraphModel};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph_ops/math")
}

/// Cases candle legitimately cannot run, with the reason (none).
const UNSUPPORTED: &[(&str, &str)] = &[];

/// Largest deviation of `got` from `want` relative to max(|want|, 1), or why they differ
/// (shape, dtype, integer/bool values, NaN or infinity placement).
fn deviation(got: &Tensor, want: &Tensor) -> Result<f32, String> {
    if got.shape != want.shape {
        return Err(format!("shape {:?}, expected {:?}", got.shape, want.shape));
    }
    if got.dtype() != want.dtype() {
        return Err(format!("dtype {:?}, expected {:?}", got.dtype(), want.dtype()));
    }
    let (Some(g), Some(w)) = (got.as_f32(), want.as_f32()) else {
        return if got.data == want.data { Ok(0.0) } else { Err("values differ".into()) };
    };
    let mut worst = 0f32;
    for (i, (&a, &b)) in g.iter().zip(w).enumerate() {
        if b.is_nan() || b.is_infinite() || a.is_nan() || a.is_infinite() {
            if !(a == b || (a.is_nan() && b.is_nan())) {
                return Err(format!("element {i} is {a}, expected {b}"));
            }
            continue;
        }
        worst = worst.max((a - b).abs() / b.abs().max(1.0));
    }
    Ok(worst)
}

/// Import case `name`, run it through candle in both modes and compare with onnxruntime.
fn run_case(dir: &Path, name: &str, tol: f32) -> Result<(), String> {
    let case = graph_support::load(dir, name);
    let graph = shrink_io::onnx::graph_import::load_graph(&case.onnx).map_err(|e| format!("import: {e}"))?;
    let dtypes: Vec<_> = graph.outputs.iter().map(|&o| graph.values[o].fact.dtype).collect();
    let model = GraphModel::new(graph, &Device::Cpu).map_err(|e| format!("model: {e}"))?;
    let inputs = case
        .inputs
        .iter()
        .map(|t| to_candle(t, &Device::Cpu))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    for train in [false, true] {
        let mode = if train { "train" } else { "eval" };
        let outs = model.forward(&inputs, train).map_err(|e| format!("{mode}: {e}"))?;
        if outs.len() != case.expected.len() {
            return Err(format!("{mode}: {} outputs, expected {}", outs.len(), case.expected.len()));
        }
        for (k, ((t, want), &dt)) in outs.iter().zip(&case.expected).zip(&dtypes).enumerate() {
            let got = from_candle(t, dt).map_err(|e| e.to_string())?;
            let err = deviation(&got, want).map_err(|e| format!("{mode} output {k}: {e}"))?;
            if err > tol {
                return Err(format!("{mode} output {k}: max relative error {err} > {tol}"));
            }
        }
    }
    Ok(())
}

#[test]
fn every_math_case_matches_onnxruntime_in_eval_and_train_mode() {
    let dir = dir();
    let cases = graph_support::cases(&dir);
    assert!(cases.len() >= 150, "expected the generated cases, found {}", cases.len());
    let mut failures = Vec::new();
    let mut unexpected_passes = Vec::new();
    for name in &cases {
        let r = run_case(&dir, name, 1e-4);
        match (UNSUPPORTED.iter().find(|(n, _)| n == name), r) {
            (None, Err(e)) => failures.push(format!("{name}: {e}")),
            (Some(_), Ok(())) => unexpected_passes.push(name.clone()),
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(unexpected_passes.is_empty(), "listed as unsupported but pass: {unexpected_passes:?}");
}

// ---------------------------------------------------------------------------------------------
// Gradients against finite differences of f64 references
// ---------------------------------------------------------------------------------------------

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n).map(|_| (lo + (hi - lo) * self.next()) as f32).collect()
    }
    /// Values in ±[lo, hi] (random signs): away from a kink at 0.
    fn signed(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n)
            .map(|_| ((lo + (hi - lo) * self.next()) * if self.next() < 0.5 { -1.0 } else { 1.0 }) as f32)
            .collect()
    }
}

/// `v` with every value moved at least 0.02 away from each kink.
fn avoid(mut v: Vec<f32>, kinks: &[f32]) -> Vec<f32> {
    for x in &mut v {
        for &k in kinks {
            if (*x - k).abs() < 0.02 {
                *x = k + if *x >= k { 0.02 } else { -0.02 };
            }
        }
    }
    v
}

/// One operand of a gradient case: a graph input (fed as a `Var`) or a named constant
/// (a `Var` of the model; `grad` says whether it is trained and checked).
struct Operand {
    name: &'static str,
    tensor: Tensor,
    is_const: bool,
    grad: bool,
}

fn input(name: &'static str, shape: &[usize], data: Vec<f32>) -> Operand {
    Operand { name, tensor: Tensor::f32(shape.to_vec(), data), is_const: false, grad: true }
}

fn constant(name: &'static str, tensor: Tensor, grad: bool) -> Operand {
    Operand { name, tensor, is_const: true, grad }
}

/// The op's output (flattened) from its operands in f64 (bools as 0/1).
type Reference = Box<dyn Fn(&[Vec<f64>]) -> Vec<f64>>;

struct GradCase {
    name: &'static str,
    op: Op,
    operands: Vec<Operand>,
    reference: Reference,
}

fn to_f64(t: &Tensor) -> Vec<f64> {
    match (t.as_f32(), t.as_bool()) {
        (Some(v), _) => v.iter().map(|&x| x as f64).collect(),
        (_, Some(b)) => b.iter().map(|&x| x as u8 as f64).collect(),
        _ => t.to_i64_vec().iter().map(|&x| x as f64).collect(),
    }
}

/// Run `case` through `GraphModel` in train mode, backpropagate sum(out · w), and compare the
/// output with the reference and each checked gradient with central differences.
fn check_grad(case: &GradCase, rng: &mut Rng) -> Result<(), String> {
    let mut g = Graph::new();
    let mut ids = Vec::new();
    for o in &case.operands {
        let id = if o.is_const {
            g.add_const(o.name, o.tensor.clone())
        } else {
            g.add_input(o.name, o.tensor.fact())
        };
        ids.push(id.map_err(|e| e.to_string())?);
    }
    let out = g.add_node("n", case.op.clone(), &ids, &["out".to_string()]).map_err(|e| e.to_string())?[0];
    g.set_outputs(vec![out]);
    let model = GraphModel::new(g, &Device::Cpu).map_err(|e| e.to_string())?;
    let trained = model.trainable_vars();
    let mut vars: Vec<Option<Var>> = Vec::new();
    let mut feed = Vec::new();
    for o in &case.operands {
        if o.is_const {
            let v = trained.iter().find(|(n, _)| n == o.name).map(|(_, v)| v.clone());
            if o.grad && v.is_none() {
                return Err(format!("constant `{}` is not trainable", o.name));
            }
            vars.push(v.filter(|_| o.grad));
        } else if let Some(d) = o.tensor.as_f32() {
            let v = Var::from_slice(d, o.tensor.shape.as_slice(), &Device::Cpu).map_err(|e| e.to_string())?;
            feed.push(v.as_tensor().clone());
            vars.push(Some(v));
        } else {
            feed.push(to_candle(&o.tensor, &Device::Cpu).map_err(|e| e.to_string())?);
            vars.push(None);
        }
    }
    let y = model.forward(&feed, true).map_err(|e| e.to_string())?.remove(0);
    let got_y: Vec<f32> = y.flatten_all().and_then(|t| t.to_vec1()).map_err(|e| e.to_string())?;
    let w = rng.vec(got_y.len(), -1.0, 1.0);
    let wt = CTensor::from_slice(&w, y.shape(), &Device::Cpu).map_err(|e| e.to_string())?;
    let grads = (y * wt).and_then(|p| p.sum_all()).and_then(|l| l.backward()).map_err(|e| e.to_string())?;

    let mut xs: Vec<Vec<f64>> = case.operands.iter().map(|o| to_f64(&o.tensor)).collect();
    let want_y = (case.reference)(&xs);
    if want_y.len() != got_y.len() {
        return Err(format!("output has {} values, the reference {}", got_y.len(), want_y.len()));
    }
    for (i, (&a, &b)) in got_y.iter().zip(&want_y).enumerate() {
        if (a as f64 - b).abs() > 1e-4 * b.abs().max(1.0) {
            return Err(format!("output {i} is {a}, the reference {b}"));
        }
    }
    let loss =
        |xs: &[Vec<f64>]| -> f64 { (case.reference)(xs).iter().zip(&w).map(|(a, &b)| a * b as f64).sum() };
    let h = 1e-5;
    for (k, (o, v)) in case.operands.iter().zip(&vars).enumerate() {
        let Some(v) = v else { continue };
        let grad = grads.get(v.as_tensor()).ok_or_else(|| format!("no gradient reached `{}`", o.name))?;
        let grad: Vec<f32> = grad.flatten_all().and_then(|t| t.to_vec1()).map_err(|e| e.to_string())?;
        for i in 0..xs[k].len() {
            let x0 = xs[k][i];
            xs[k][i] = x0 + h;
            let up = loss(&xs);
            xs[k][i] = x0 - h;
            let down = loss(&xs);
            xs[k][i] = x0;
            let fd = (up - down) / (2.0 * h);
            if (grad[i] as f64 - fd).abs() > 1e-3 * fd.abs().max(1.0) {
                return Err(format!("d loss / d {}[{i}] = {}, finite differences {fd}", o.name, grad[i]));
            }
        }
    }
    Ok(())
}

/// The flat index into a tensor of `shape` broadcast to `out` at output index `flat`.
fn bcast_index(out: &[usize], shape: &[usize], mut flat: usize) -> usize {
    let (mut idx, mut stride) = (0, 1);
    for k in (0..out.len()).rev() {
        let i = flat % out[k];
        flat /= out[k];
        let j = k as isize - (out.len() - shape.len()) as isize;
        if j >= 0 {
            let d = shape[j as usize];
            idx += (i % d) * stride;
            stride *= d;
        }
    }
    idx
}

fn broadcast(shapes: &[&[usize]]) -> Vec<usize> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1; rank];
    for s in shapes {
        for (k, &d) in s.iter().enumerate() {
            let o = &mut out[rank - s.len() + k];
            *o = (*o).max(d);
        }
    }
    out
}

/// Element-wise `f` of broadcast operands.
fn elementwise(shapes: Vec<Vec<usize>>, f: impl Fn(&[f64]) -> f64 + 'static) -> Reference {
    Box::new(move |xs| {
        let refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
        let out = broadcast(&refs);
        let n: usize = out.iter().product();
        (0..n)
            .map(|i| {
                let args: Vec<f64> =
                    xs.iter().zip(&shapes).map(|(x, s)| x[bcast_index(&out, s, i)]).collect();
                f(&args)
            })
            .collect()
    })
}

fn unary_ref(f: fn(f64) -> f64) -> Reference {
    Box::new(move |xs| xs[0].iter().map(|&v| f(v)).collect())
}

/// Softmax (log-softmax) as the runtime lays it out: `outer × n × inner` blocks.
fn softmax_ref(shape: Vec<usize>, axis: usize, flatten: bool, log: bool) -> Reference {
    Box::new(move |xs| {
        let x = &xs[0];
        let outer: usize = shape[..axis].iter().product();
        let (n, inner): (usize, usize) = if flatten {
            (shape[axis..].iter().product(), 1)
        } else {
            (shape[axis], shape[axis + 1..].iter().product())
        };
        let mut y = vec![0.0; x.len()];
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| o * n * inner + j * inner + i;
                let m = (0..n).map(|j| x[at(j)]).fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = (0..n).map(|j| (x[at(j)] - m).exp()).sum();
                for j in 0..n {
                    y[at(j)] = if log { x[at(j)] - m - s.ln() } else { (x[at(j)] - m).exp() / s };
                }
            }
        }
        y
    })
}

fn reduce_ref(shape: Vec<usize>, axes: Vec<usize>, kind: ReduceKind) -> Reference {
    Box::new(move |xs| {
        let x = &xs[0];
        let kept: Vec<usize> =
            shape.iter().enumerate().map(|(k, &d)| if axes.contains(&k) { 1 } else { d }).collect();
        let count: usize = axes.iter().map(|&a| shape[a]).product();
        let init = match kind {
            ReduceKind::Prod => 1.0,
            ReduceKind::Max => f64::NEG_INFINITY,
            ReduceKind::Min => f64::INFINITY,
            _ => 0.0,
        };
        let mut acc = vec![init; kept.iter().product()];
        for (i, &v) in x.iter().enumerate() {
            // The output slot: the input's multi-index with the reduced axes at 0.
            let (mut rem, mut slot, mut stride) = (i, 0, 1);
            for k in (0..shape.len()).rev() {
                let c = rem % shape[k];
                rem /= shape[k];
                slot += if axes.contains(&k) { 0 } else { c * stride };
                stride *= kept[k];
            }
            let a = &mut acc[slot];
            *a = match kind {
                ReduceKind::Sum | ReduceKind::Mean => *a + v,
                ReduceKind::Prod => *a * v,
                ReduceKind::Max => a.max(v),
                ReduceKind::Min => a.min(v),
            };
        }
        if kind == ReduceKind::Mean {
            acc.iter_mut().for_each(|a| *a /= count as f64);
        }
        acc
    })
}

/// erf in f64 (Maclaurin series below 3, continued fraction above), as the runtime's.
fn erf(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 3.0 {
        let (mut term, mut sum, mut n) = (a, a, 0.0);
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -a * a / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else {
        let mut f = a;
        for k in (1..60).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * f)
    };
    r.copysign(x)
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

fn unary(kind: UnaryKind) -> Op {
    Op::Unary(Unary { kind })
}

fn binary(kind: BinaryKind) -> Op {
    Op::Binary(Binary { kind })
}

fn grad_cases(rng: &mut Rng) -> Vec<GradCase> {
    let s234 = [2usize, 3, 4];
    let mut v = Vec::new();
    let un = |name, kind, data: Vec<f32>, f: fn(f64) -> f64| GradCase {
        name,
        op: unary(kind),
        operands: vec![input("x", &s234, data)],
        reference: unary_ref(f),
    };
    use UnaryKind as K;
    v.push(un("relu", K::Relu, rng.signed(24, 0.05, 2.0), |x| x.max(0.0)));
    v.push(un("sigmoid", K::Sigmoid, rng.vec(24, -6.0, 6.0), sigmoid));
    v.push(un("tanh", K::Tanh, rng.vec(24, -3.0, 3.0), f64::tanh));
    v.push(un("erf", K::Erf, rng.vec(24, -2.5, 2.5), erf));
    v.push(un("exp", K::Exp, rng.vec(24, -2.0, 2.0), f64::exp));
    v.push(un("log", K::Log, rng.vec(24, 0.2, 3.0), f64::ln));
    v.push(un("sqrt", K::Sqrt, rng.vec(24, 0.2, 3.0), f64::sqrt));
    v.push(un("neg", K::Neg, rng.vec(24, -2.0, 2.0), |x| -x));
    v.push(un("abs", K::Abs, rng.signed(24, 0.05, 2.0), f64::abs));
    v.push(un("reciprocal", K::Reciprocal, rng.signed(24, 0.3, 2.0), |x| 1.0 / x));
    v.push(un("hardswish", K::HardSwish, avoid(rng.vec(24, -4.0, 4.0), &[-3.0, 3.0]), |x| {
        x * (x + 3.0).clamp(0.0, 6.0) / 6.0
    }));
    v.push(un("silu", K::Silu, rng.vec(24, -6.0, 6.0), |x| x * sigmoid(x)));
    v.push(un("softplus", K::Softplus, rng.vec(24, -6.0, 6.0), |x| x.exp().ln_1p()));
    v.push(un("sin", K::Sin, rng.vec(24, -3.0, 3.0), f64::sin));
    v.push(un("cos", K::Cos, rng.vec(24, -3.0, 3.0), f64::cos));

    let one = |name, op: Op, data: Vec<f32>, reference: Reference| GradCase {
        name,
        op,
        operands: vec![input("x", &s234, data)],
        reference,
    };
    v.push(one(
        "leaky_relu",
        Op::LeakyRelu(LeakyRelu { alpha: 0.1 }),
        rng.signed(24, 0.05, 2.0),
        unary_ref(|x| if x < 0.0 { 0.1f32 as f64 * x } else { x }),
    ));
    v.push(one(
        "hard_sigmoid",
        Op::HardSigmoid(HardSigmoid { alpha: 0.2, beta: 0.5 }),
        avoid(rng.vec(24, -4.0, 4.0), &[-2.5, 2.5]),
        unary_ref(|x| (0.2f32 as f64 * x + 0.5).clamp(0.0, 1.0)),
    ));
    v.push(one(
        "elu",
        Op::Elu(Elu { alpha: 0.7 }),
        rng.signed(24, 0.05, 2.0),
        unary_ref(|x| if x < 0.0 { 0.7f32 as f64 * x.exp_m1() } else { x }),
    ));
    v.push(one(
        "gelu_erf",
        Op::Gelu(Gelu { tanh: false }),
        rng.vec(24, -3.0, 3.0),
        unary_ref(|x| 0.5 * x * (1.0 + erf(x / 2f64.sqrt()))),
    ));
    v.push(one(
        "gelu_tanh",
        Op::Gelu(Gelu { tanh: true }),
        rng.vec(24, -3.0, 3.0),
        unary_ref(|x| {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
        }),
    ));
    v.push(one(
        "clip",
        Op::Clip(Clip { min: Some(-0.5), max: Some(0.7) }),
        avoid(rng.vec(24, -1.5, 1.5), &[-0.5, 0.7]),
        unary_ref(|x| x.max(-0.5).min(0.7f32 as f64)),
    ));
    v.push(one(
        "clip_max_only",
        Op::Clip(Clip { min: None, max: Some(6.0) }),
        avoid(rng.vec(24, -8.0, 8.0), &[6.0]),
        unary_ref(|x| x.min(6.0)),
    ));
    v.push(one(
        "softmax_axis1",
        Op::Softmax(Softmax { axis: 1, flatten: false }),
        rng.vec(24, -3.0, 3.0),
        softmax_ref(s234.to_vec(), 1, false, false),
    ));
    v.push(one(
        "softmax_flatten_axis1",
        Op::Softmax(Softmax { axis: 1, flatten: true }),
        rng.vec(24, -3.0, 3.0),
        softmax_ref(s234.to_vec(), 1, true, false),
    ));
    v.push(one(
        "log_softmax_last",
        Op::LogSoftmax(LogSoftmax { axis: -1, flatten: false }),
        rng.vec(24, -3.0, 3.0),
        softmax_ref(s234.to_vec(), 2, false, true),
    ));
    for (name, kind, axes, keep) in [
        ("reduce_mean", ReduceKind::Mean, vec![0i64, 2], false),
        ("reduce_mean_keep", ReduceKind::Mean, vec![-1], true),
        ("reduce_sum", ReduceKind::Sum, vec![1], false),
        ("reduce_max", ReduceKind::Max, vec![0, 2], true),
        ("reduce_min", ReduceKind::Min, vec![2], false),
        ("reduce_prod", ReduceKind::Prod, vec![1], false),
        ("reduce_mean_all", ReduceKind::Mean, vec![], false),
    ] {
        let resolved: Vec<usize> = if axes.is_empty() {
            vec![0, 1, 2]
        } else {
            axes.iter().map(|&a| if a < 0 { (a + 3) as usize } else { a as usize }).collect()
        };
        v.push(one(
            name,
            Op::Reduce(Reduce { kind, axes, keepdims: keep }),
            rng.vec(24, -2.0, 2.0),
            reduce_ref(s234.to_vec(), resolved, kind),
        ));
    }

    // Binary ops with broadcasting: graph inputs and trainable constants both get gradients.
    let bin = |name, kind, a: Operand, b: Operand, f: fn(f64, f64) -> f64| {
        let shapes = vec![a.tensor.shape.clone(), b.tensor.shape.clone()];
        GradCase {
            name,
            op: binary(kind),
            operands: vec![a, b],
            reference: elementwise(shapes, move |x| f(x[0], x[1])),
        }
    };
    let t = |shape: &[usize], data: Vec<f32>| Tensor::f32(shape.to_vec(), data);
    v.push(bin(
        "add_channel_bias",
        BinaryKind::Add,
        input("x", &s234, rng.vec(24, -2.0, 2.0)),
        constant("bias", t(&[3, 1], rng.vec(3, -1.0, 1.0)), true),
        |a, b| a + b,
    ));
    v.push(bin(
        "sub_rows",
        BinaryKind::Sub,
        input("a", &[3, 1], rng.vec(3, -2.0, 2.0)),
        input("b", &[2, 1, 4], rng.vec(8, -2.0, 2.0)),
        |a, b| a - b,
    ));
    v.push(bin(
        "mul_scale",
        BinaryKind::Mul,
        input("x", &s234, rng.vec(24, -2.0, 2.0)),
        constant("scale", t(&[4], rng.vec(4, -1.0, 1.0)), true),
        |a, b| a * b,
    ));
    v.push(bin(
        "div_broadcast",
        BinaryKind::Div,
        input("a", &s234, rng.vec(24, -2.0, 2.0)),
        input("b", &[2, 1, 4], rng.signed(8, 0.5, 2.0)),
        |a, b| a / b,
    ));
    let (ma, mb) = (rng.vec(24, -2.0, 2.0), rng.vec(4, -2.0, 2.0));
    v.push(bin(
        "max_broadcast",
        BinaryKind::Max,
        input("a", &s234, ma.clone()),
        input("b", &[4], mb.clone()),
        f64::max,
    ));
    v.push(bin("min_broadcast", BinaryKind::Min, input("a", &s234, ma), input("b", &[4], mb), f64::min));
    v.push(bin(
        "pow_trainable_exponent",
        BinaryKind::Pow,
        input("x", &s234, rng.vec(24, 0.3, 2.0)),
        constant("p", t(&[1], vec![3.0]), true),
        f64::powf,
    ));
    v.push(bin(
        "pow_square_negative_base",
        BinaryKind::Pow,
        input("x", &s234, rng.vec(24, -2.0, 2.0)),
        constant("two", Tensor::f32(vec![], vec![2.0]), false),
        f64::powf,
    ));
    v.push(bin(
        "pow_tensor_exponent",
        BinaryKind::Pow,
        input("x", &[2, 3], rng.vec(6, 0.3, 2.0)),
        input("y", &[3], rng.vec(3, -1.5, 2.5)),
        f64::powf,
    ));
    // Where: both branches get the gradient of the elements they supply.
    let cond = Tensor::bool(vec![2, 1], vec![true, false]);
    let shapes = vec![vec![2, 1], vec![2, 3], vec![3]];
    v.push(GradCase {
        name: "where_broadcast",
        op: Op::Where(Where {}),
        operands: vec![
            constant("c", cond, false),
            input("a", &[2, 3], rng.vec(6, -2.0, 2.0)),
            input("b", &[3], rng.vec(3, -2.0, 2.0)),
        ],
        reference: elementwise(shapes, |x| if x[0] != 0.0 { x[1] } else { x[2] }),
    });
    v
}

#[test]
fn gradients_match_finite_differences_of_f64_references() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let cases = grad_cases(&mut rng);
    assert!(cases.len() >= 40, "{} gradient cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check_grad(c, &mut rng).err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} gradient checks failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The harness can fail on gradients alone: a reference within 1e-5 of Tanh whose derivative
/// differs by up to 0.1 (a small fast ripple) passes the output check and fails the gradient one.
#[test]
fn the_gradient_harness_detects_a_wrong_gradient() {
    let mut rng = Rng(7);
    let case = GradCase {
        name: "tanh_vs_ripple",
        op: unary(UnaryKind::Tanh),
        operands: vec![input("x", &[2, 3], rng.vec(6, -2.0, 2.0))],
        reference: Box::new(|xs: &[Vec<f64>]| {
            xs[0].iter().map(|&v| v.tanh() + 1e-5 * (1e4 * v).sin()).collect()
        }),
    };
    let e = check_grad(&case, &mut rng).unwrap_err();
    assert!(e.contains("finite differences"), "{e}");
}

/// Integer and bool paths carry no gradient but must not panic (candle has no integer unary
/// kernels) and equal the runtime: i64 Neg/Abs/Relu, integer Div/Mod/Pow, integer Clip and
/// reductions, bool Not/And/Or, Cast.
#[test]
fn integer_and_bool_ops_equal_the_runtime() {
    let a = Tensor::i64(vec![2, 3], vec![7, -7, 0, 9, -3, 4]);
    let b = Tensor::i64(vec![3], vec![2, -2, 3]);
    let p = Tensor::bool(vec![2, 2], vec![true, false, true, true]);
    let q = Tensor::bool(vec![2], vec![false, true]);
    let f = Tensor::f32(vec![8], vec![-2.7, -2.5, 0.5, 1.5, 2.5, 0.0, f32::NAN, 3.499_999]);
    let mut ops: Vec<(Op, Vec<&Tensor>)> = vec![
        (unary(UnaryKind::Neg), vec![&a]),
        (unary(UnaryKind::Abs), vec![&a]),
        (unary(UnaryKind::Relu), vec![&a]),
        (unary(UnaryKind::Not), vec![&p]),
        (unary(UnaryKind::Round), vec![&f]),
        (Op::Clip(Clip { min: Some(-2.5), max: Some(5.5) }), vec![&a]),
        (binary(BinaryKind::And), vec![&p, &q]),
        (binary(BinaryKind::Or), vec![&p, &q]),
        (binary(BinaryKind::Equal), vec![&p, &q]),
        (Op::Cast(shrink_graph::ops::binary::Cast { to: shrink_graph::DType::I64 }), vec![&f]),
        (Op::Cast(shrink_graph::ops::binary::Cast { to: shrink_graph::DType::Bool }), vec![&f]),
        (Op::Cast(shrink_graph::ops::binary::Cast { to: shrink_graph::DType::F32 }), vec![&p]),
    ];
    for kind in [
        BinaryKind::Add,
        BinaryKind::Sub,
        BinaryKind::Mul,
        BinaryKind::Div,
        BinaryKind::Mod,
        BinaryKind::Fmod,
        BinaryKind::Pow,
        BinaryKind::Max,
        BinaryKind::Min,
        BinaryKind::Less,
        BinaryKind::GreaterOrEqual,
    ] {
        ops.push((binary(kind), vec![&a, &b]));
    }
    for kind in [ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max, ReduceKind::Min, ReduceKind::Prod] {
        ops.push((Op::Reduce(Reduce { kind, axes: vec![1], keepdims: false }), vec![&a]));
    }
    for (op, ins) in ops {
        let mut g = Graph::new();
        let ids: Vec<_> =
            ins.iter().enumerate().map(|(k, t)| g.add_input(&format!("i{k}"), t.fact()).unwrap()).collect();
        let out = g.add_node("n", op.clone(), &ids, &["y".to_string()]).unwrap()[0];
        g.set_outputs(vec![out]);
        let want =
            shrink_runtime::run(&g, &ins.iter().map(|t| (*t).clone()).collect::<Vec<_>>()).unwrap().remove(0);
        let dt = g.values[out].fact.dtype;
        let model = GraphModel::new(g, &Device::Cpu).unwrap();
        let feed: Vec<_> = ins.iter().map(|t| to_candle(t, &Device::Cpu).unwrap()).collect();
        let got = model.forward(&feed, false).unwrap_or_else(|e| panic!("{op:?}: {e}")).remove(0);
        let got = from_candle(&got, dt).unwrap();
        assert_eq!(deviation(&got, &want), Ok(0.0), "{op:?}");
    }
}

/// Ops on wrong element types and integer division by zero are one-line errors, not panics.
#[test]
fn refused_inputs_are_one_line_errors() {
    let a = Tensor::i64(vec![2], vec![4, 5]);
    let z = Tensor::i64(vec![2], vec![1, 0]);
    let mut g = Graph::new();
    let ia = g.add_input("a", a.fact()).unwrap();
    let iz = g.add_input("z", z.fact()).unwrap();
    let out = g.add_node("div", binary(BinaryKind::Div), &[ia, iz], &["y".to_string()]).unwrap()[0];
    g.set_outputs(vec![out]);
    let model = GraphModel::new(g, &Device::Cpu).unwrap();
    let feed = [to_candle(&a, &Device::Cpu).unwrap(), to_candle(&z, &Device::Cpu).unwrap()];
    let e = model.forward(&feed, false).unwrap_err().to_string();
    assert!(e.contains("node `div`") && e.contains("division by zero") && !e.contains('\n'), "{e}");
    // Inputs that bypass the graph's type check (an f32 tensor where i64 is declared).
    let mut g = Graph::new();
    let ia = g.add_input("a", a.fact()).unwrap();
    let out = g.add_node("abs", unary(UnaryKind::Sqrt), &[ia], &["y".to_string()]);
    assert!(out.is_err(), "the graph refuses Sqrt of i64");
    let out = g.add_node("abs", unary(UnaryKind::Abs), &[ia], &["y".to_string()]).unwrap()[0];
    g.set_outputs(vec![out]);
    let model = GraphModel::new(g, &Device::Cpu).unwrap();
    let wrong = CTensor::new(&[1u32, 2], &Device::Cpu).unwrap();
    let e = model.forward(&[wrong], false).unwrap_err().to_string();
    assert!(e.contains("node `abs`") && e.contains("U32") && !e.contains('\n'), "{e}");
}
