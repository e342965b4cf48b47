//! Applying a [`PrunePlan`]: constants are sliced along the cut axes, shape attributes that
//! spell out sizes (Reshape, Expand, Split, a depthwise conv's groups) follow, and shape
//! inference re-runs over the whole graph, so an inconsistent plan is an error, not a broken
//! graph.

use super::plan::PrunePlan;
use shrink_graph::{Dim, Graph, Op, Tensor, TensorData};
use std::collections::HashMap;

/// Keep the indices of `axis` not in `remove`.
fn slice_axis(t: &Tensor, axis: usize, remove: &[usize]) -> Tensor {
    let size = t.shape[axis];
    let keep: Vec<usize> = (0..size).filter(|i| remove.binary_search(i).is_err()).collect();
    let inner: usize = t.shape[axis + 1..].iter().product();
    let outer: usize = t.shape[..axis].iter().product();
    let mut shape = t.shape.clone();
    shape[axis] = keep.len();
    fn pick<T: Copy>(d: &[T], outer: usize, size: usize, inner: usize, keep: &[usize]) -> Vec<T> {
        let mut out = Vec::with_capacity(outer * keep.len() * inner);
        for o in 0..outer {
            for &k in keep {
                let s = (o * size + k) * inner;
                out.extend_from_slice(&d[s..s + inner]);
            }
        }
        out
    }
    match &t.data {
        TensorData::F32(d) => Tensor::f32(shape, pick(d, outer, size, inner, &keep)),
        TensorData::I64(d) => Tensor::i64(shape, pick(d, outer, size, inner, &keep)),
        TensorData::Bool(d) => Tensor::bool(shape, pick(d, outer, size, inner, &keep)),
        TensorData::I8(d) => Tensor::i8(shape, pick(d, outer, size, inner, &keep)),
        TensorData::U8(d) => Tensor::u8(shape, pick(d, outer, size, inner, &keep)),
        TensorData::I32(d) => Tensor::i32(shape, pick(d, outer, size, inner, &keep)),
    }
}

/// Apply `plan` to `graph` in place.
pub fn apply_plan(graph: &mut Graph, plan: &PrunePlan) -> Result<(), String> {
    let mut cuts: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    for c in &plan.cuts {
        let v =
            graph.find(&c.value).ok_or_else(|| format!("prune plan: no value `{}` in the graph", c.value))?;
        let size = graph.values[v]
            .fact
            .shape
            .get(c.axis)
            .and_then(Dim::fixed)
            .ok_or_else(|| format!("prune plan: `{}` has no fixed axis {}", c.value, c.axis))?;
        if c.remove.iter().any(|&i| i >= size) || c.remove.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "prune plan: indices for `{}` axis {} must be sorted, unique and < {size}",
                c.value, c.axis
            ));
        }
        if c.remove.len() >= size {
            return Err(format!("prune plan removes every index of `{}` axis {}", c.value, c.axis));
        }
        cuts.insert((v, c.axis), c.remove.clone());
    }
    // New sizes of every cut axis, before facts change.
    let new_size = |graph: &Graph, v: usize, axis: usize| -> Option<usize> {
        let old = graph.values[v].fact.shape.get(axis)?.fixed()?;
        Some(old - cuts.get(&(v, axis)).map_or(0, Vec::len))
    };
    for k in 0..graph.nodes.len() {
        let node = &graph.nodes[k];
        let outs = node.outputs.clone();
        let ins = node.inputs.clone();
        let mut op = node.op.clone();
        match &mut op {
            Op::Reshape(r) => {
                for (axis, d) in r.shape.iter_mut().enumerate() {
                    if let (Dim::Fixed(_), Some(n)) = (&d, new_size(graph, outs[0], axis)) {
                        *d = Dim::Fixed(n);
                    }
                }
            }
            Op::Expand(e) => {
                let rank = graph.values[outs[0]].fact.rank();
                let off = rank - e.shape.len();
                for (k, d) in e.shape.iter_mut().enumerate() {
                    if let (Dim::Fixed(n), Some(m)) = (&d, new_size(graph, outs[0], k + off)) {
                        if *n != 1 {
                            *d = Dim::Fixed(m);
                        }
                    }
                }
            }
            Op::Split(s) => {
                let rank = graph.values[ins[0]].fact.rank() as i64;
                let axis = if s.axis < 0 { s.axis + rank } else { s.axis } as usize;
                for (j, &o) in outs.iter().enumerate() {
                    if let Some(n) = new_size(graph, o, axis) {
                        s.sizes[j] = n;
                    }
                }
            }
            Op::Conv(c) => {
                let cin = graph.values[ins[0]].fact.shape.get(1).and_then(Dim::fixed);
                if c.groups > 1 && cin == Some(c.groups) {
                    c.groups = new_size(graph, ins[0], 1).unwrap_or(c.groups);
                }
            }
            _ => {}
        }
        graph.nodes[k].op = op;
    }
    for (&(v, axis), remove) in &cuts {
        if let Some(t) = graph.const_value(v) {
            let t = slice_axis(t, axis, remove);
            graph.set_const(v, t);
        }
    }
    graph.check().map_err(|e| format!("the pruned graph is inconsistent: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slicing_keeps_the_complement() {
        let t = Tensor::f32(vec![2, 3], vec![0., 1., 2., 3., 4., 5.]);
        let s = slice_axis(&t, 1, &[1]);
        assert_eq!(s.shape, vec![2, 2]);
        assert_eq!(s.as_f32().unwrap(), &[0., 2., 3., 5.]);
        let s = slice_axis(&t, 0, &[0]);
        assert_eq!(s.as_f32().unwrap(), &[3., 4., 5.]);
    }
}
