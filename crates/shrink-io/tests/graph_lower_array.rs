//! Candle lowering of the `array` op family (`shrink_ir::graph_exec::array`): every onnxruntime
//! case of `fixtures/graph_ops/array` run through `GraphModel` (eval and train mode, which must
//! agree: no array op behaves differently in training), gradients of Slice, Concat, Pad,
//! Gather, Transpose, Reshape (and Flatten, Squeeze, Unsqueeze, Expand, Split) against central
//! finite differences, and one-line errors instead of panics.

mod graph_support;

use candle_core::{DType as CDType, Device, Tensor, Var};
use shrink_graph::ops::combine::{Concat, Gather, Pad, PadMode, Slice, Split};
use shrink_graph::ops::shape::{Expand, Flatten, Reshape, Squeeze, Transpose, Unsqueeze};
use shrink_graph::{DType, Dim, Fact, Graph, Op, ValueId};
use shrink_io::onnx::graph_import::load_graph;
use shrink_ir::graph_exec::{from_candle, to_candle, GraphModel};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph_ops/array")
}

/// Cases candle cannot run, with the reason (none so far).
const UNSUPPORTED: &[(&str, &str)] = &[];

/// The candle dtype that carries an IR dtype.
fn carrier(d: DType) -> CDType {
    match d {
        DType::F32 => CDType::F32,
        DType::I64 => CDType::I64,
        DType::Bool => CDType::U8,
        DType::I8 | DType::U8 | DType::I32 => CDType::I64,
    }
}

/// Run case `name` on candle in eval and train mode; compare with onnxruntime's outputs.
fn check_case(dir: &Path, name: &str) -> Result<(), String> {
    let case = graph_support::load(dir, name);
    let graph = load_graph(&case.onnx).map_err(|e| format!("import: {e}"))?;
    let out_dtypes: Vec<DType> = graph.outputs.iter().map(|&o| graph.values[o].fact.dtype).collect();
    let model = GraphModel::new(graph, &Device::Cpu).map_err(|e| format!("model: {e}"))?;
    let inputs: Vec<Tensor> = case
        .inputs
        .iter()
        .map(|t| to_candle(t, &Device::Cpu))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("inputs: {e}"))?;
    let eval = model.forward(&inputs, false).map_err(|e| format!("forward: {e}"))?;
    let train = model.forward(&inputs, true).map_err(|e| format!("forward (train): {e}"))?;
    if eval.len() != case.expected.len() {
        return Err(format!("{} outputs, onnxruntime has {}", eval.len(), case.expected.len()));
    }
    for (k, ((e, t), want)) in eval.iter().zip(&train).zip(&case.expected).enumerate() {
        if e.dtype() != carrier(out_dtypes[k]) {
            return Err(format!("output {k}: candle dtype {:?} for {:?}", e.dtype(), out_dtypes[k]));
        }
        let got = from_candle(e, want.dtype()).map_err(|e| e.to_string())?;
        let err = graph_support::max_rel_err(&format!("{name} output {k}"), &got, want);
        if err > 1e-4 {
            return Err(format!("output {k}: max relative error {err} > 1e-4"));
        }
        let got_train = from_candle(t, want.dtype()).map_err(|e| e.to_string())?;
        if got_train != got {
            return Err(format!("output {k}: train mode differs from eval mode"));
        }
    }
    Ok(())
}

#[test]
fn every_case_matches_onnxruntime_on_candle() {
    let dir = dir();
    let cases = graph_support::cases(&dir);
    assert!(cases.len() >= 50, "only {} cases in {}", cases.len(), dir.display());
    let cases: Vec<String> =
        cases.into_iter().filter(|name| !UNSUPPORTED.iter().any(|(n, _)| n == name)).collect();
    graph_support::check_all(&cases, |name| check_case(&dir, name));
}

/// Deterministic pseudo-random numbers (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` multiples of 1/64 in [-2, 2): exact in f32, and so are their sums with ±1/2.
    fn values(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| ((self.next() * 256.0).floor() - 128.0) as f32 / 64.0).collect()
    }
}

/// One f32 graph input of fixed shape.
fn f32_input(g: &mut Graph, name: &str, shape: &[usize]) -> ValueId {
    g.add_input(name, Fact::new(DType::F32, shape)).unwrap()
}

/// Add node `name` reading `inputs`; returns its outputs (named `name.K`).
fn node(g: &mut Graph, name: &str, op: Op, inputs: &[ValueId], outs: usize) -> Vec<ValueId> {
    let names: Vec<String> = (0..outs).map(|k| format!("{name}.{k}")).collect();
    g.add_node(name, op, inputs, &names).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Input values of a graph: f32 inputs as `Var`s of random values; i64 inputs from `ints`.
fn graph_inputs(g: &Graph, rng: &mut Lcg, ints: &[Vec<i64>], syms: &[(&str, usize)]) -> Vec<Tensor> {
    let mut ints = ints.iter();
    g.inputs
        .iter()
        .map(|&id| {
            let f = &g.values[id].fact;
            let shape: Vec<usize> = f
                .shape
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => *n,
                    Dim::Sym(s) => syms.iter().find(|(n, _)| n == s).expect("bound symbol").1,
                })
                .collect();
            let n = shape.iter().product();
            match f.dtype {
                DType::F32 => Var::from_vec(rng.values(n), shape, &Device::Cpu).unwrap().as_tensor().clone(),
                DType::I64 => {
                    Tensor::from_vec(ints.next().expect("i64 input").clone(), shape, &Device::Cpu).unwrap()
                }
                d => unreachable!("no {d:?} graph inputs in these cases"),
            }
        })
        .collect()
}

/// `Σ_k sum(out_k · w_k)` in f64 on the host.
fn host_loss(outs: &[Tensor], ws: &[Vec<f32>]) -> f64 {
    outs.iter()
        .zip(ws)
        .map(|(o, w)| {
            let o = o.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(o.len(), w.len());
            o.iter().zip(w).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>()
        })
        .sum()
}

/// Check the gradient of `Σ_k sum(out_k · w_k)` (fixed random `w_k`) w.r.t. every f32 graph
/// input and every trainable constant against central finite differences computed in f64.
/// Returns how many gradient elements were compared.
fn grad_check(g: Graph, ints: &[Vec<i64>], syms: &[(&str, usize)], seed: u64) -> usize {
    let mut rng = Lcg(seed);
    let inputs = graph_inputs(&g, &mut rng, ints, syms);
    let model = GraphModel::new(g, &Device::Cpu).unwrap();
    // Every f32 tensor that must receive a gradient: inputs, then trained constants.
    let mut vars: Vec<(String, Var)> = Vec::new();
    for (k, t) in inputs.iter().enumerate() {
        if t.dtype() == CDType::F32 {
            vars.push((format!("input {k}"), Var::from_tensor(t).unwrap()));
        }
    }
    let var_inputs: Vec<Tensor> =
        {
            let mut vs = vars.iter();
            inputs
                .iter()
                .map(|t| {
                    if t.dtype() == CDType::F32 {
                        vs.next().unwrap().1.as_tensor().clone()
                    } else {
                        t.clone()
                    }
                })
                .collect()
        };
    vars.extend(model.trainable_vars());
    assert!(!vars.is_empty(), "nothing to differentiate");
    let outs = model.forward(&var_inputs, false).unwrap();
    let ws: Vec<Vec<f32>> = outs.iter().map(|o| rng.values(o.elem_count())).collect();
    let mut loss = Tensor::zeros((), CDType::F32, &Device::Cpu).unwrap();
    for (o, w) in outs.iter().zip(&ws) {
        let w = Tensor::from_slice(w, o.dims(), &Device::Cpu).unwrap();
        loss = (loss + (o * w).unwrap().sum_all().unwrap()).unwrap();
    }
    let grads = loss.backward().unwrap();
    let eps = 0.5f32;
    let mut compared = 0;
    for (name, var) in &vars {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient reached {name}"))
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let x0 = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let shape = var.dims().to_vec();
        for j in 0..x0.len() {
            let at = |delta: f32| {
                let mut x = x0.clone();
                x[j] += delta;
                var.set(&Tensor::from_vec(x, shape.clone(), &Device::Cpu).unwrap()).unwrap();
                host_loss(&model.forward(&var_inputs, false).unwrap(), &ws)
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            let err = (g[j] as f64 - fd).abs() / fd.abs().max(1.0);
            assert!(err <= 1e-5, "{name}[{j}]: autograd {} vs finite differences {fd}", g[j]);
            compared += 1;
        }
        var.set(&Tensor::from_vec(x0, shape, &Device::Cpu).unwrap()).unwrap();
    }
    compared
}

#[test]
fn slice_gradient_with_steps_negative_steps_and_clamping() {
    let mut g = Graph::new();
    let x = f32_input(&mut g, "x", &[4, 5, 6]);
    // Axis 0: 1..3; axis 1: reversed by 2 from the end; axis 2: every other from 1, clamped end.
    let op = Slice {
        starts: vec![1, -1, 1],
        ends: vec![3, -100, 1 << 40],
        axes: vec![0, 1, -1],
        steps: vec![1, -2, 2],
    };
    let y = node(&mut g, "slice", Op::Slice(op), &[x], 1);
    g.set_outputs(y);
    assert_eq!(grad_check(g, &[], &[], 1), 120);
}

#[test]
fn concat_gradient_reaches_input_and_trained_constant() {
    let mut g = Graph::new();
    let x = f32_input(&mut g, "x", &[2, 3, 2]);
    let c = g.add_const("cls", shrink_graph::Tensor::f32(vec![2, 1, 2], vec![0.25, -0.5, 1.0, 2.0])).unwrap();
    let y = node(&mut g, "cat", Op::Concat(Concat { axis: -2 }), &[c, x, x], 1);
    g.set_outputs(y);
    assert_eq!(grad_check(g, &[], &[], 2), 12 + 4);
}

#[test]
fn pad_gradients_constant_reflect_edge_with_crops() {
    for (k, (mode, pads)) in [
        (PadMode::Constant, vec![1, -1, 2, 0, 2, -2]),
        (PadMode::Reflect, vec![0, 2, -1, 1, 3, 2]),
        (PadMode::Edge, vec![2, 0, 3, -1, 4, 1]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut g = Graph::new();
        let x = f32_input(&mut g, "x", &[2, 4, 5]);
        let y = node(&mut g, "pad", Op::Pad(Pad { pads, mode, value: 1.5 }), &[x], 1);
        g.set_outputs(y);
        assert_eq!(grad_check(g, &[], &[], 3 + k as u64), 40, "{mode:?}");
    }
}

#[test]
fn gather_gradients_embedding_rows_and_an_inner_axis() {
    // Embedding: a trained table indexed by token ids (repeated and negative ids accumulate).
    let mut g = Graph::new();
    let ids = g.add_input("ids", Fact::new(DType::I64, &[2, 3])).unwrap();
    let table: Vec<f32> = (0..18).map(|v| v as f32 / 8.0 - 1.0).collect();
    let t = g.add_const("embed.weight", shrink_graph::Tensor::f32(vec![6, 3], table)).unwrap();
    let y = node(&mut g, "embed", Op::Gather(Gather { axis: 0 }), &[t, ids], 1);
    g.set_outputs(y);
    assert_eq!(grad_check(g, &[vec![0, 5, 2, 2, -1, 3]], &[], 6), 18);
    // Axis 1 of an input, scalar-free 1-D indices with a negative one.
    let mut g = Graph::new();
    let x = f32_input(&mut g, "x", &[3, 4, 2]);
    let i = g.add_const("i", shrink_graph::Tensor::i64(vec![3], vec![3, -4, 3])).unwrap();
    let y = node(&mut g, "gather", Op::Gather(Gather { axis: -2 }), &[x, i], 1);
    g.set_outputs(y);
    assert_eq!(grad_check(g, &[], &[], 7), 24);
}

#[test]
fn transpose_gradient_and_a_reshape_of_the_transposed_view() {
    let mut g = Graph::new();
    let x = f32_input(&mut g, "x", &[2, 3, 4]);
    let y = node(&mut g, "t", Op::Transpose(Transpose { perm: vec![2, 0, 1] }), &[x], 1);
    // A reshape of the (non-contiguous) transposed view, as in attention head merging.
    let shape = vec![Dim::Fixed(4), Dim::Fixed(6)];
    let r = node(&mut g, "r", Op::Reshape(Reshape { shape }), &y, 1);
    g.set_outputs(vec![y[0], r[0]]);
    assert_eq!(grad_check(g, &[], &[], 8), 24);
}

#[test]
fn reshape_family_gradients_with_a_symbolic_batch() {
    // x[N, 2, 3] → Reshape [N, 6] → Unsqueeze 1 → Expand [N, 3, 6] → Flatten 1 → Split
    // [N, 8] + [N, 10] → Unsqueeze 0 / Squeeze 0 of the second piece.
    let n = || Dim::Sym("N".into());
    let mut g = Graph::new();
    let x = g.add_input("x", Fact::dims(DType::F32, vec![n(), Dim::Fixed(2), Dim::Fixed(3)])).unwrap();
    let r = node(&mut g, "reshape", Op::Reshape(Reshape { shape: vec![n(), Dim::Fixed(6)] }), &[x], 1);
    let u = node(&mut g, "unsq", Op::Unsqueeze(Unsqueeze { axes: vec![1] }), &r, 1);
    let e = node(&mut g, "expand", Op::Expand(Expand { shape: vec![Dim::Fixed(3), Dim::Fixed(1)] }), &u, 1);
    let f = node(&mut g, "flat", Op::Flatten(Flatten { axis: 1 }), &e, 1);
    let s = node(&mut g, "split", Op::Split(Split { axis: 1, sizes: vec![8, 10] }), &f, 2);
    let u2 = node(&mut g, "unsq2", Op::Unsqueeze(Unsqueeze { axes: vec![0] }), &s[1..], 1);
    let q = node(&mut g, "sq", Op::Squeeze(Squeeze { axes: vec![0] }), &u2, 1);
    g.set_outputs(vec![s[0], q[0]]);
    assert_eq!(grad_check(g, &[], &[("N", 3)], 9), 18);
}

#[test]
fn an_out_of_range_runtime_index_is_a_one_line_error() {
    let mut g = Graph::new();
    let ids = g.add_input("ids", Fact::new(DType::I64, &[2])).unwrap();
    let t = g.add_const("table", shrink_graph::Tensor::f32(vec![3, 2], vec![0.0; 6])).unwrap();
    let y = node(&mut g, "embed", Op::Gather(Gather { axis: 0 }), &[t, ids], 1);
    g.set_outputs(y);
    let model = GraphModel::new(g, &Device::Cpu).unwrap();
    let ids = Tensor::new(&[1i64, 3], &Device::Cpu).unwrap();
    let err = model.forward(&[ids], false).unwrap_err().to_string();
    assert!(!err.contains('\n'), "{err}");
    assert!(err.contains("node `embed`") && err.contains("index 3 is out of range"), "{err}");
}
