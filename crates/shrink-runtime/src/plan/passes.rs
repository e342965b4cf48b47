//! Graph passes run by [`Plan::compile`](super::Plan::compile) on its own copy of the graph:
//! BatchNorm folded into the preceding Conv / Gemm / MatMul-with-constant-weight, Identity
//! removed. Each pass keeps the graph runnable by the reference executor, so "folded equals
//! unfolded" is a direct comparison. (ONNX Dropout is already an Identity after import.)

use shrink_graph::ops::matmul::Gemm;
use shrink_graph::{Graph, GraphError, Op, Tensor, ValueDef, ValueId};

/// Make every reader of `old` (nodes and graph outputs) read `new` instead.
pub fn replace_uses(g: &mut Graph, old: ValueId, new: ValueId) {
    for n in &mut g.nodes {
        n.inputs.iter_mut().filter(|v| **v == old).for_each(|v| *v = new);
    }
    g.outputs.iter_mut().filter(|v| **v == old).for_each(|v| *v = new);
}

/// Add a constant under a name derived from `base` that no value uses yet.
fn add_fresh_const(g: &mut Graph, base: &str, t: Tensor) -> Result<ValueId, GraphError> {
    let mut name = base.to_string();
    let mut k = 1;
    while g.find(&name).is_some() {
        name = format!("{base}.{k}");
        k += 1;
    }
    g.add_const(&name, t)
}

/// Remove Identity nodes (their readers read the Identity's input). Returns how many.
pub fn remove_identity(g: &mut Graph) -> usize {
    let ids: Vec<usize> = (0..g.nodes.len())
        .filter(|&k| {
            let n = &g.nodes[k];
            matches!(n.op, Op::Identity(_)) && n.inputs.len() == 1 && n.outputs.len() == 1
        })
        .collect();
    // In order, reading each input afresh: a chain of Identities collapses onto its source.
    for &k in &ids {
        let (out, input) = (g.nodes[k].outputs[0], g.nodes[k].inputs[0]);
        replace_uses(g, out, input);
    }
    if !ids.is_empty() {
        g.remove_dead();
    }
    ids.len()
}

/// Per-channel `(scale, shift)` of an inference BatchNorm: `y = x·scale + shift`.
fn bn_affine(g: &Graph, inputs: &[ValueId], eps: f32) -> Option<(Vec<f32>, Vec<f32>)> {
    if inputs.len() != 5 {
        return None;
    }
    let p: Vec<&[f32]> = inputs[1..].iter().map(|&v| g.const_value(v)?.as_f32()).collect::<Option<_>>()?;
    let c = p[0].len();
    if p.iter().any(|v| v.len() != c) {
        return None;
    }
    let scale: Vec<f32> = (0..c).map(|i| p[0][i] / (p[3][i] + eps).sqrt()).collect();
    let shift: Vec<f32> = (0..c).map(|i| p[1][i] - p[2][i] * scale[i]).collect();
    Some((scale, shift))
}

/// Fold every BatchNorm whose input is produced by a Conv, a Gemm or a MatMul with a constant
/// weight, and read by nothing else, into that producer's weight and bias. Returns how many.
pub fn fold_batchnorm(g: &mut Graph) -> Result<usize, GraphError> {
    let mut folded = 0;
    for k in 0..g.nodes.len() {
        let Op::BatchNorm(bn) = &g.nodes[k].op else { continue };
        let (x, y) = (g.nodes[k].inputs[0], g.nodes[k].outputs[0]);
        let Some((scale, shift)) = bn_affine(g, &g.nodes[k].inputs, bn.epsilon) else { continue };
        let ValueDef::Node { node: p, slot: 0 } = g.values[x].def else { continue };
        let consumers = g.consumers();
        if consumers[x] != [k] || g.outputs.contains(&x) {
            continue;
        }
        let done = match &g.nodes[p].op {
            Op::Conv(_) => fold_into_conv(g, p, &scale, &shift)?,
            Op::Gemm(op) => {
                let op = op.clone();
                g.values[x].fact.rank() == 2 && fold_into_gemm(g, p, &op, &scale, &shift)?
            }
            Op::MatMul(_) => {
                let ins = &g.nodes[p].inputs;
                let two_d = ins.len() == 2
                    && g.values[ins[0]].fact.rank() == 2
                    && g.const_value(ins[1]).is_some_and(|w| w.shape.len() == 2);
                let gemm = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: false };
                two_d && fold_into_gemm(g, p, &gemm, &scale, &shift)?
            }
            _ => false,
        };
        if done {
            replace_uses(g, y, x);
            folded += 1;
        }
    }
    if folded > 0 {
        g.remove_dead();
        g.check()?;
    }
    Ok(folded)
}

fn fold_into_conv(g: &mut Graph, p: usize, scale: &[f32], shift: &[f32]) -> Result<bool, GraphError> {
    let ins = g.nodes[p].inputs.clone();
    let Some(w) = g.const_value(ins[1]).and_then(|w| w.as_f32().map(|d| (w.shape.clone(), d.to_vec())))
    else {
        return Ok(false);
    };
    let (shape, mut wv) = w;
    let m = shape[0];
    if m != scale.len() || m == 0 {
        return Ok(false);
    }
    let bias: Vec<f32> = match ins.get(2) {
        Some(&b) => match g.const_value(b).and_then(Tensor::as_f32) {
            Some(b) if b.len() == m => b.to_vec(),
            _ => return Ok(false),
        },
        None => vec![0.0; m],
    };
    let per = wv.len() / m;
    for (oc, row) in wv.chunks_mut(per.max(1)).enumerate().take(m) {
        row.iter_mut().for_each(|v| *v *= scale[oc]);
    }
    let b: Vec<f32> = (0..m).map(|i| bias[i] * scale[i] + shift[i]).collect();
    let name = g.nodes[p].name.clone();
    let wid = add_fresh_const(g, &format!("{name}.weight.bn_folded"), Tensor::f32(shape, wv))?;
    let bid = add_fresh_const(g, &format!("{name}.bias.bn_folded"), Tensor::f32(vec![m], b))?;
    g.nodes[p].inputs = vec![ins[0], wid, bid];
    Ok(true)
}

/// Fold into `alpha·A·op(B) + beta·C` (a MatMul is the Gemm with alpha = beta = 1, no C): the
/// node becomes a Gemm with B's output columns scaled and C the folded per-column bias.
fn fold_into_gemm(
    g: &mut Graph,
    p: usize,
    op: &Gemm,
    scale: &[f32],
    shift: &[f32],
) -> Result<bool, GraphError> {
    let ins = g.nodes[p].inputs.clone();
    let Some(b) = g.const_value(ins[1]) else { return Ok(false) };
    let (bshape, mut bv) = match b.as_f32() {
        Some(d) if b.shape.len() == 2 => (b.shape.clone(), d.to_vec()),
        _ => return Ok(false),
    };
    let n = if op.trans_b { bshape[0] } else { bshape[1] };
    if n != scale.len() {
        return Ok(false);
    }
    // beta·C per output column (C must not vary along the rows).
    let c: Vec<f32> = match ins.get(2) {
        None => vec![0.0; n],
        Some(&cv) => match g.const_value(cv) {
            Some(t) if t.shape.iter().rev().skip(1).all(|&d| d == 1) => {
                let d = t.as_f32().unwrap_or(&[]);
                match d.len() {
                    1 => vec![op.beta * d[0]; n],
                    l if l == n => d.iter().map(|v| op.beta * v).collect(),
                    _ => return Ok(false),
                }
            }
            _ => return Ok(false),
        },
    };
    for (i, v) in bv.iter_mut().enumerate() {
        let col = if op.trans_b { i / bshape[1] } else { i % bshape[1] };
        *v *= scale[col];
    }
    let bias: Vec<f32> = (0..n).map(|j| c[j] * scale[j] + shift[j]).collect();
    let name = g.nodes[p].name.clone();
    let wid = add_fresh_const(g, &format!("{name}.weight.bn_folded"), Tensor::f32(bshape, bv))?;
    let bid = add_fresh_const(g, &format!("{name}.bias.bn_folded"), Tensor::f32(vec![n], bias))?;
    g.nodes[p].inputs = vec![ins[0], wid, bid];
    g.nodes[p].op = Op::Gemm(Gemm { beta: 1.0, ..op.clone() });
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::run;
    use shrink_graph::ops::{combine::Identity, conv::Conv, matmul::MatMul, norm::BatchNorm};
    use shrink_graph::{DType, Dim, Fact};

    pub(crate) fn seq(shape: Vec<usize>, k: f32) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::f32(shape, (0..n).map(|i| (i as f32 * k).sin()).collect())
    }

    fn bn(g: &mut Graph, x: ValueId, c: usize, tag: &str) -> ValueId {
        let p = |g: &mut Graph, n: &str, v: Vec<f32>| {
            g.add_const(&format!("{tag}.{n}"), Tensor::f32(vec![c], v)).unwrap()
        };
        let s = p(g, "s", (0..c).map(|i| 0.5 + i as f32 * 0.25).collect());
        let b = p(g, "b", (0..c).map(|i| i as f32 * 0.1 - 0.2).collect());
        let m = p(g, "m", (0..c).map(|i| (i as f32).cos()).collect());
        let v = p(g, "v", (0..c).map(|i| 1.0 + i as f32 * 0.3).collect());
        g.add_node(tag, BatchNorm { epsilon: 1e-5 }, &[x, s, b, m, v], &[format!("{tag}.y")]).unwrap()[0]
    }

    fn close(a: &Tensor, b: &Tensor) {
        assert_eq!(a.shape, b.shape);
        for (x, y) in a.as_f32().unwrap().iter().zip(b.as_f32().unwrap()) {
            assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{x} vs {y}");
        }
    }

    fn nchw() -> Fact {
        Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(3), Dim::Fixed(6), Dim::Fixed(5)])
    }

    #[test]
    fn folded_conv_bn_equals_unfolded() {
        for bias in [false, true] {
            let mut g = Graph::new();
            let x = g.add_input("x", nchw()).unwrap();
            let w = g.add_const("w", seq(vec![4, 3, 3, 3], 0.7)).unwrap();
            let mut ins = vec![x, w];
            if bias {
                ins.push(g.add_const("b", seq(vec![4], 1.3)).unwrap());
            }
            let conv = Conv { strides: vec![1, 1], pads: vec![1, 1, 1, 1], dilations: vec![1, 1], groups: 1 };
            let c = g.add_node("conv", conv, &ins, &["c".into()]).unwrap()[0];
            let y = bn(&mut g, c, 4, "bn");
            g.set_outputs(vec![y]);
            let mut f = g.clone();
            assert_eq!(fold_batchnorm(&mut f).unwrap(), 1);
            assert!(f.nodes.iter().all(|n| !matches!(n.op, Op::BatchNorm(_))));
            let xin = seq(vec![2, 3, 6, 5], 0.31);
            close(&run(&f, std::slice::from_ref(&xin)).unwrap()[0], &run(&g, &[xin]).unwrap()[0]);
        }
    }

    #[test]
    fn folded_linear_bn_equals_unfolded() {
        // Gemm with transposed B and a C, and a MatMul with a constant weight.
        for matmul in [false, true] {
            let mut g = Graph::new();
            let x =
                g.add_input("x", Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(5)])).unwrap();
            let h = if matmul {
                let w = g.add_const("w", seq(vec![5, 4], 0.9)).unwrap();
                g.add_node("mm", MatMul {}, &[x, w], &["h".into()]).unwrap()[0]
            } else {
                let w = g.add_const("w", seq(vec![4, 5], 0.9)).unwrap();
                let c = g.add_const("c", seq(vec![4], 0.4)).unwrap();
                let op = Gemm { alpha: 0.5, beta: 2.0, trans_a: false, trans_b: true };
                g.add_node("fc", op, &[x, w, c], &["h".into()]).unwrap()[0]
            };
            let y = bn(&mut g, h, 4, "bn");
            g.set_outputs(vec![y]);
            let mut f = g.clone();
            assert_eq!(fold_batchnorm(&mut f).unwrap(), 1);
            assert_eq!(f.nodes.len(), 1);
            let xin = seq(vec![3, 5], 0.37);
            close(&run(&f, std::slice::from_ref(&xin)).unwrap()[0], &run(&g, &[xin]).unwrap()[0]);
        }
    }

    #[test]
    fn bn_with_another_reader_of_its_input_is_kept() {
        let mut g = Graph::new();
        let x = g.add_input("x", nchw()).unwrap();
        let w = g.add_const("w", seq(vec![3, 3, 1, 1], 0.7)).unwrap();
        let conv = Conv { strides: vec![1, 1], pads: vec![0; 4], dilations: vec![1, 1], groups: 1 };
        let c = g.add_node("conv", conv, &[x, w], &["c".into()]).unwrap()[0];
        let y = bn(&mut g, c, 3, "bn");
        g.set_outputs(vec![y, c]);
        assert_eq!(fold_batchnorm(&mut g).unwrap(), 0);
    }

    #[test]
    fn identity_is_removed() {
        let mut g = Graph::new();
        let x = g.add_input("x", Fact::new(DType::F32, &[2])).unwrap();
        let a = g.add_node("id", Identity {}, &[x], &["a".into()]).unwrap()[0];
        let b = g.add_node("id2", Identity {}, &[a], &["b".into()]).unwrap()[0];
        g.set_outputs(vec![b]);
        assert_eq!(remove_identity(&mut g), 2);
        assert!(g.nodes.is_empty());
        assert_eq!(g.outputs, g.inputs);
    }
}
