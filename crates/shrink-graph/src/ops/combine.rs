//! Combining and indexing: Concat, Split, Slice, Pad, Gather, Identity.

use super::{check_arity, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{fmt_shape, normalize_axis, DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// Concatenate the inputs along `axis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concat {
    pub axis: i64,
}

/// Split along `axis` into pieces of `sizes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub axis: i64,
    pub sizes: Vec<usize>,
}

/// ONNX Slice with constant starts/ends/axes/steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
    pub axes: Vec<i64>,
    pub steps: Vec<i64>,
}

/// Padding mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
}

/// Pad every axis: `pads` = begin of each axis, then end of each axis (may be negative: crop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pad {
    pub pads: Vec<i64>,
    pub mode: PadMode,
    pub value: f32,
}

/// Index `data` along `axis` with an i64 `indices` tensor; inputs `[data, indices]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gather {
    pub axis: i64,
}

/// Pass-through (also Dropout in inference).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {}

impl OpDef for Identity {
    fn name(&self) -> &'static str {
        "Identity"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        Ok(vec![ins[0].fact.clone()])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        let mut m = AxesMapping::none();
        for k in 0..ins[0].rank() {
            m.rels.push(AxisRel::Same(Port::input(0, k), Port::output(0, k)));
        }
        m
    }
}

/// Same relation for every axis of input `input` except `skip`, to the same axis of output
/// `output`.
fn same_except(m: &mut AxesMapping, input: usize, output: usize, rank: usize, skip: &[usize]) {
    for k in (0..rank).filter(|k| !skip.contains(k)) {
        m.rels.push(AxisRel::Same(Port::input(input, k), Port::output(output, k)));
    }
}

impl OpDef for Concat {
    fn name(&self) -> &'static str {
        "Concat"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        if ins.is_empty() {
            return Err(OpError::Arity { expected: "at least 1".into(), got: 0 });
        }
        let first = ins[0].fact;
        let axis = first.axis(self.axis).map_err(|e| OpError::Attr { name: "axis", msg: e.to_string() })?;
        let mut total = 0usize;
        for (k, i) in ins.iter().enumerate() {
            let f = i.fact;
            if f.dtype != first.dtype || f.rank() != first.rank() {
                return Err(OpError::Shape(format!(
                    "input {k} is {f}, input 0 is {first}: dtypes and ranks must agree"
                )));
            }
            for a in (0..f.rank()).filter(|&a| a != axis) {
                if f.shape[a] != first.shape[a] {
                    return Err(OpError::Shape(format!(
                        "input {k} has shape {}, input 0 {}: only axis {axis} may differ",
                        fmt_shape(&f.shape),
                        fmt_shape(&first.shape)
                    )));
                }
            }
            total += f.shape[axis].to_usize()?;
        }
        let mut shape = first.shape.clone();
        shape[axis] = Dim::Fixed(total);
        Ok(vec![Fact::dims(first.dtype, shape)])
    }
    fn axes(&self, ins: &[&Fact], outs: &[&Fact]) -> AxesMapping {
        let mut m = AxesMapping::none();
        let rank = outs[0].rank();
        let Ok(axis) = normalize_axis(self.axis, rank) else { return m };
        m.rels.push(AxisRel::Concat {
            whole: Port::output(0, axis),
            parts: (0..ins.len()).map(|i| Port::input(i, axis)).collect(),
        });
        for i in 0..ins.len() {
            same_except(&mut m, i, 0, rank, &[axis]);
        }
        m
    }
}

impl OpDef for Split {
    fn name(&self) -> &'static str {
        "Split"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        let f = ins[0].fact;
        let axis = f.axis(self.axis).map_err(|e| OpError::Attr { name: "axis", msg: e.to_string() })?;
        let d = f.shape[axis].to_usize()?;
        if self.sizes.is_empty() || self.sizes.iter().sum::<usize>() != d {
            return Err(OpError::Attr {
                name: "split",
                msg: format!("sizes {:?} do not add up to {d}, the size of axis {axis}", self.sizes),
            });
        }
        Ok(self
            .sizes
            .iter()
            .map(|&s| {
                let mut shape = f.shape.clone();
                shape[axis] = Dim::Fixed(s);
                Fact::dims(f.dtype, shape)
            })
            .collect())
    }
    fn axes(&self, ins: &[&Fact], outs: &[&Fact]) -> AxesMapping {
        let mut m = AxesMapping::none();
        let rank = ins[0].rank();
        let Ok(axis) = normalize_axis(self.axis, rank) else { return m };
        m.rels.push(AxisRel::Concat {
            whole: Port::input(0, axis),
            parts: (0..outs.len()).map(|o| Port::output(o, axis)).collect(),
        });
        for o in 0..outs.len() {
            same_except(&mut m, 0, o, rank, &[axis]);
        }
        m
    }
}

/// The elements one sliced axis keeps: `len` indices from `start` by `step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisRange {
    pub axis: usize,
    pub start: usize,
    pub step: i64,
    pub len: usize,
}

/// ONNX Slice clamping of one axis of size `d`.
pub fn slice_axis(d: usize, start: i64, end: i64, step: i64) -> (usize, usize) {
    if d == 0 {
        return (0, 0);
    }
    let d = d as i64;
    let fix = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (s, e) = if step > 0 {
        (fix(start).clamp(0, d), fix(end).clamp(0, d))
    } else {
        (fix(start).clamp(0, d - 1), fix(end).clamp(-1, d - 1))
    };
    let len = if step > 0 {
        if e > s {
            (e - s + step - 1) / step
        } else {
            0
        }
    } else if s > e {
        (s - e + (-step) - 1) / (-step)
    } else {
        0
    };
    (s.max(0) as usize, len.max(0) as usize)
}

impl Slice {
    /// Check the attributes against `rank`; the resolved axis of each entry.
    fn axes_of(&self, rank: usize) -> OpResult<Vec<usize>> {
        let n = self.starts.len();
        if self.ends.len() != n
            || (!self.axes.is_empty() && self.axes.len() != n)
            || (!self.steps.is_empty() && self.steps.len() != n)
        {
            return Err(OpError::Attr {
                name: "starts",
                msg: format!(
                    "starts, ends, axes and steps have different lengths ({n}, {}, {}, {})",
                    self.ends.len(),
                    self.axes.len(),
                    self.steps.len()
                ),
            });
        }
        if self.steps.contains(&0) {
            return Err(OpError::Attr { name: "steps", msg: "a step is 0".into() });
        }
        let axes: Vec<i64> = if self.axes.is_empty() { (0..n as i64).collect() } else { self.axes.clone() };
        let mut out = Vec::with_capacity(n);
        for a in axes {
            let k =
                normalize_axis(a, rank).map_err(|e| OpError::Attr { name: "axes", msg: e.to_string() })?;
            if out.contains(&k) {
                return Err(OpError::Attr { name: "axes", msg: format!("axis {a} is listed twice") });
            }
            out.push(k);
        }
        Ok(out)
    }

    fn step(&self, k: usize) -> i64 {
        self.steps.get(k).copied().unwrap_or(1)
    }

    /// The kept range of every sliced axis of an input of shape `shape`.
    pub fn ranges(&self, shape: &[usize]) -> OpResult<Vec<AxisRange>> {
        let axes = self.axes_of(shape.len())?;
        Ok(axes
            .iter()
            .enumerate()
            .map(|(k, &axis)| {
                let step = self.step(k);
                let (start, len) = slice_axis(shape[axis], self.starts[k], self.ends[k], step);
                AxisRange { axis, start, step, len }
            })
            .collect())
    }

    /// Whether the slice keeps every index of a symbolic axis in order (`0..INT_MAX`).
    fn keeps_all(&self, k: usize) -> bool {
        self.step(k) == 1 && self.starts[k] == 0 && self.ends[k] >= i32::MAX as i64
    }
}

impl OpDef for Slice {
    fn name(&self) -> &'static str {
        "Slice"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        let f = ins[0].fact;
        let axes = self.axes_of(f.rank())?;
        let mut shape = f.shape.clone();
        for (k, &axis) in axes.iter().enumerate() {
            match &f.shape[axis] {
                Dim::Fixed(d) => {
                    shape[axis] = Dim::Fixed(slice_axis(*d, self.starts[k], self.ends[k], self.step(k)).1)
                }
                Dim::Sym(s) if !self.keeps_all(k) => return Err(OpError::Symbolic(s.clone())),
                Dim::Sym(_) => {}
            }
        }
        Ok(vec![Fact::dims(f.dtype, shape)])
    }
    fn axes(&self, ins: &[&Fact], outs: &[&Fact]) -> AxesMapping {
        let mut m = AxesMapping::none();
        let rank = ins[0].rank();
        let axes = self.axes_of(rank).unwrap_or_default();
        let mut pinned = Vec::new();
        for (k, &axis) in axes.iter().enumerate() {
            let identity = self.step(k) == 1
                && ins[0].shape[axis] == outs[0].shape[axis]
                && (self.starts[k] == 0 || self.keeps_all(k));
            if !identity {
                pinned.push(axis);
                m.rels.push(AxisRel::Pinned(Port::input(0, axis)));
                m.rels.push(AxisRel::Pinned(Port::output(0, axis)));
            }
        }
        same_except(&mut m, 0, 0, rank, &pinned);
        m
    }
}

impl Pad {
    fn check(&self, f: &Fact) -> OpResult<Vec<Dim>> {
        let r = f.rank();
        if self.pads.len() != 2 * r {
            return Err(OpError::Attr {
                name: "pads",
                msg: format!("has {} entries for an input of rank {r}", self.pads.len()),
            });
        }
        let mut shape = f.shape.clone();
        for (a, dim) in f.shape.iter().enumerate() {
            let (b, e) = (self.pads[a], self.pads[a + r]);
            if b == 0 && e == 0 {
                continue;
            }
            let d = dim.to_usize()? as i64;
            let n = d + b + e;
            if n < 0 {
                return Err(OpError::Attr {
                    name: "pads",
                    msg: format!("crop axis {a} of size {d} below 0"),
                });
            }
            if self.mode != PadMode::Constant
                && (d == 0 || (self.mode == PadMode::Reflect && (b >= d || e >= d)))
            {
                return Err(OpError::Attr {
                    name: "pads",
                    msg: format!("{:?} padding of ({b}, {e}) on axis {a} of size {d}: pads must be smaller than the size", self.mode),
                });
            }
            shape[a] = Dim::Fixed(n as usize);
        }
        Ok(shape)
    }

    /// Axes with non-zero pads.
    pub fn padded_axes(&self, rank: usize) -> Vec<usize> {
        (0..rank)
            .filter(|&a| {
                self.pads.get(a).copied().unwrap_or(0) != 0
                    || self.pads.get(a + rank).copied().unwrap_or(0) != 0
            })
            .collect()
    }
}

impl OpDef for Pad {
    fn name(&self) -> &'static str {
        "Pad"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        let f = ins[0].fact;
        if f.dtype == DType::Bool {
            return Err(OpError::Shape("cannot pad bool values".into()));
        }
        Ok(vec![Fact::dims(f.dtype, self.check(f)?)])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        let mut m = AxesMapping::none();
        let rank = ins[0].rank();
        let padded = self.padded_axes(rank);
        for &a in &padded {
            m.rels.push(AxisRel::Pinned(Port::input(0, a)));
            m.rels.push(AxisRel::Pinned(Port::output(0, a)));
        }
        same_except(&mut m, 0, 0, rank, &padded);
        m
    }
}

impl OpDef for Gather {
    fn name(&self) -> &'static str {
        "Gather"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 2, 2)?;
        let (data, idx) = (ins[0].fact, ins[1].fact);
        if data.rank() == 0 {
            return Err(OpError::Shape("cannot gather from a scalar".into()));
        }
        let axis = data.axis(self.axis).map_err(|e| OpError::Attr { name: "axis", msg: e.to_string() })?;
        if idx.dtype != DType::I64 {
            return Err(OpError::Shape(format!("indices must be integers, got {idx}")));
        }
        if let (Some(t), Some(d)) = (ins[1].value, data.shape[axis].fixed()) {
            if let Some(bad) = t.to_i64_vec().into_iter().find(|&i| i < -(d as i64) || i >= d as i64) {
                return Err(OpError::Shape(format!(
                    "index {bad} is out of range for axis {axis} of size {d}"
                )));
            }
        }
        let mut shape = data.shape[..axis].to_vec();
        shape.extend(idx.shape.iter().cloned());
        shape.extend(data.shape[axis + 1..].iter().cloned());
        Ok(vec![Fact::dims(data.dtype, shape)])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        let mut m = AxesMapping::none();
        let (r, q) = (ins[0].rank(), ins[1].rank());
        let Ok(axis) = normalize_axis(self.axis, r) else { return m };
        m.rels.push(AxisRel::Pinned(Port::input(0, axis)));
        for a in 0..r {
            if a < axis {
                m.rels.push(AxisRel::Same(Port::input(0, a), Port::output(0, a)));
            } else if a > axis {
                m.rels.push(AxisRel::Same(Port::input(0, a), Port::output(0, a + q - 1)));
            }
        }
        for k in 0..q {
            m.rels.push(AxisRel::Same(Port::input(1, k), Port::output(0, axis + k)));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    fn n() -> Dim {
        Dim::Sym("N".into())
    }
    fn f(v: usize) -> Dim {
        Dim::Fixed(v)
    }
    fn infer(op: &dyn OpDef, facts: &[Fact]) -> OpResult<Vec<Fact>> {
        let ins: Vec<InFact> = facts.iter().map(|fact| InFact { fact, value: None }).collect();
        op.infer(&ins)
    }

    #[test]
    fn concat_adds_the_axis_and_keeps_the_batch() {
        let a = Fact::dims(DType::F32, vec![n(), f(2), f(5)]);
        let b = Fact::dims(DType::F32, vec![n(), f(3), f(5)]);
        let y = infer(&Concat { axis: 1 }, &[a.clone(), b.clone()]).unwrap();
        assert_eq!(y[0].shape, vec![n(), f(5), f(5)]);
        let err = infer(&Concat { axis: 2 }, &[a.clone(), b.clone()]).unwrap_err();
        assert!(err.to_string().contains("only axis 2 may differ"), "{err}");
        assert!(infer(&Concat { axis: 0 }, &[a.clone(), a.clone()]).is_err());
        let m = Concat { axis: 1 }.axes(&[&a, &b], &[&y[0]]);
        assert_eq!(
            m.rels[0],
            AxisRel::Concat { whole: Port::output(0, 1), parts: vec![Port::input(0, 1), Port::input(1, 1)] }
        );
        assert!(m.rels.contains(&AxisRel::Same(Port::input(1, 0), Port::output(0, 0))));
    }

    #[test]
    fn split_checks_sizes() {
        let x = Fact::dims(DType::F32, vec![n(), f(6)]);
        let y = infer(&Split { axis: -1, sizes: vec![2, 4] }, std::slice::from_ref(&x)).unwrap();
        assert_eq!(y[1].shape, vec![n(), f(4)]);
        let err = infer(&Split { axis: 1, sizes: vec![2, 3] }, std::slice::from_ref(&x)).unwrap_err();
        assert!(err.to_string().contains("do not add up to 6"), "{err}");
        assert!(infer(&Split { axis: 0, sizes: vec![1] }, std::slice::from_ref(&x)).is_err());
        let outs = infer(&Split { axis: 1, sizes: vec![2, 4] }, std::slice::from_ref(&x)).unwrap();
        let m = Split { axis: 1, sizes: vec![2, 4] }.axes(&[&x], &[&outs[0], &outs[1]]);
        assert_eq!(
            m.rels[0],
            AxisRel::Concat { whole: Port::input(0, 1), parts: vec![Port::output(0, 1), Port::output(1, 1)] }
        );
        assert!(m.rels.contains(&AxisRel::Same(Port::input(0, 0), Port::output(1, 0))));
    }

    #[test]
    fn slice_clamps_like_onnx() {
        assert_eq!(slice_axis(10, 2, i64::MAX, 1), (2, 8));
        assert_eq!(slice_axis(10, -3, -1, 1), (7, 2));
        assert_eq!(slice_axis(10, -1, i64::MIN, -1), (9, 10));
        assert_eq!(slice_axis(10, 8, 1, -3), (8, 3));
        assert_eq!(slice_axis(10, 5, 2, 1), (5, 0));
        assert_eq!(slice_axis(4, 0, 100, 3), (0, 2));
        assert_eq!(slice_axis(0, -1, i64::MIN, -1), (0, 0));
        let op = Slice { starts: vec![0, 1], ends: vec![i64::MAX, 3], axes: vec![0, -1], steps: vec![] };
        let y = infer(&op, &[Fact::dims(DType::F32, vec![n(), f(5)])]).unwrap();
        assert_eq!(y[0].shape, vec![n(), f(2)]);
        let x = Fact::dims(DType::F32, vec![n(), f(5)]);
        let m = op.axes(&[&x], &[&y[0]]);
        assert!(m.rels.contains(&AxisRel::Same(Port::input(0, 0), Port::output(0, 0))), "{m:?}");
        assert!(m.rels.contains(&AxisRel::Pinned(Port::input(0, 1))), "{m:?}");
        let bad = Slice { starts: vec![1], ends: vec![3], axes: vec![0], steps: vec![] };
        assert!(infer(&bad, &[Fact::dims(DType::F32, vec![n(), f(5)])]).is_err());
        let zero = Slice { starts: vec![1], ends: vec![3], axes: vec![1], steps: vec![0] };
        assert!(infer(&zero, &[Fact::new(DType::F32, &[2, 5])]).unwrap_err().to_string().contains("steps"));
    }

    #[test]
    fn pad_infers_and_checks_reflect() {
        let op = Pad { pads: vec![0, 1, 0, 2], mode: PadMode::Reflect, value: 0.0 };
        let y = infer(&op, &[Fact::dims(DType::F32, vec![n(), f(4)])]).unwrap();
        assert_eq!(y[0].shape, vec![n(), f(7)]);
        let big = Pad { pads: vec![0, 4, 0, 0], mode: PadMode::Reflect, value: 0.0 };
        assert!(infer(&big, &[Fact::new(DType::F32, &[1, 4])]).is_err());
        let sym = Pad { pads: vec![1, 0, 0, 0], mode: PadMode::Constant, value: 0.0 };
        assert!(infer(&sym, &[Fact::dims(DType::F32, vec![n(), f(4)])]).is_err());
        let m = op.axes(&[&Fact::new(DType::F32, &[2, 4])], &[&y[0]]);
        assert!(m.rels.contains(&AxisRel::Pinned(Port::input(0, 1))));
        assert!(m.rels.contains(&AxisRel::Same(Port::input(0, 0), Port::output(0, 0))));
    }

    #[test]
    fn gather_embeds_and_checks_constant_indices() {
        let table = Fact::new(DType::F32, &[10, 4]);
        let ids = Fact::dims(DType::I64, vec![n(), f(7)]);
        let y = infer(&Gather { axis: 0 }, &[table.clone(), ids.clone()]).unwrap();
        assert_eq!(y[0].shape, vec![n(), f(7), f(4)]);
        let m = Gather { axis: 0 }.axes(&[&table, &ids], &[&y[0]]);
        assert!(m.rels.contains(&AxisRel::Same(Port::input(0, 1), Port::output(0, 2))));
        assert!(m.rels.contains(&AxisRel::Pinned(Port::input(0, 0))));
        let idx = Tensor::i64(vec![], vec![10]);
        let ins = [InFact { fact: &table, value: None }, InFact { fact: &idx.fact(), value: Some(&idx) }];
        let err = Gather { axis: 0 }.infer(&ins).unwrap_err();
        assert!(err.to_string().contains("index 10 is out of range"), "{err}");
        assert!(infer(&Gather { axis: 0 }, &[table.clone(), Fact::new(DType::F32, &[2])]).is_err());
    }
}
