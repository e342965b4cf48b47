//! Evaluation of combining and indexing ops. Concat, Split and Slice are strided copies
//! ([`strided_copy`]); Pad maps output to input indices per axis; Gather copies rows.

use super::shape::{elems, gather_view, input, per_dtype, strided_copy, strides, Elem};
use super::{Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::fact::normalize_axis;
use shrink_graph::ops::combine::*;
use shrink_graph::Tensor;

fn axis_of(axis: i64, rank: usize) -> Result<usize, EvalError> {
    normalize_axis(axis, rank).map_err(|e| EvalError::op(e.to_string()))
}

fn concat<T: Elem>(ins: &[&Tensor], axis: usize) -> Result<Tensor, EvalError> {
    let first = &ins[0].shape;
    let mut shape = first.clone();
    shape[axis] = 0;
    for (k, t) in ins.iter().enumerate() {
        let same_rank = t.shape.len() == first.len();
        if !same_rank || (0..first.len()).any(|a| a != axis && t.shape[a] != first[a]) {
            return Err(EvalError::op(format!("input {k} has shape {:?}, input 0 {first:?}", t.shape)));
        }
        shape[axis] += t.shape[axis];
    }
    let dst_strides = strides(&shape);
    let mut out = vec![T::default(); shape.iter().product()];
    let mut offset = 0;
    for t in ins {
        let src = elems::<T>(t)?;
        let off = (offset * dst_strides[axis] as usize) as isize;
        strided_copy(src, 0, &strides(&t.shape), &mut out, off, &dst_strides, &t.shape);
        offset += t.shape[axis];
    }
    Ok(T::tensor(shape, out))
}

impl Eval for Concat {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let x = input(ins, 0)?;
        let axis = axis_of(self.axis, x.shape.len())?;
        if let Some(t) = ins.iter().find(|t| t.dtype() != x.dtype()) {
            return Err(EvalError::op(format!("inputs mix {:?} and {:?} values", x.dtype(), t.dtype())));
        }
        Ok(vec![per_dtype!(x, concat(ins, axis))?])
    }
}

fn split<T: Elem>(x: &Tensor, axis: usize, sizes: &[usize]) -> Result<Vec<Tensor>, EvalError> {
    let st = strides(&x.shape);
    let mut offset = 0;
    sizes
        .iter()
        .map(|&n| {
            let mut shape = x.shape.clone();
            shape[axis] = n;
            let t = gather_view::<T>(x, &shape, (offset * st[axis] as usize) as isize, &st);
            offset += n;
            t
        })
        .collect()
}

impl Eval for Split {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let x = input(ins, 0)?;
        let axis = axis_of(self.axis, x.shape.len())?;
        if self.sizes.iter().sum::<usize>() != x.shape[axis] {
            return Err(EvalError::op(format!(
                "sizes {:?} do not add up to {}, the size of axis {axis}",
                self.sizes, x.shape[axis]
            )));
        }
        per_dtype!(x, split(x, axis, &self.sizes))
    }
}

fn slice<T: Elem>(x: &Tensor, ranges: &[AxisRange]) -> Result<Tensor, EvalError> {
    let st = strides(&x.shape);
    let mut shape = x.shape.clone();
    let mut src_strides = st.clone();
    let mut off = 0isize;
    for r in ranges {
        shape[r.axis] = r.len;
        if r.len > 0 {
            off += r.start as isize * st[r.axis];
        }
        src_strides[r.axis] = st[r.axis] * r.step as isize;
    }
    gather_view::<T>(x, &shape, off, &src_strides)
}

impl Eval for Slice {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let x = input(ins, 0)?;
        let ranges = self.ranges(&x.shape).map_err(|e| EvalError::op(e.to_string()))?;
        Ok(vec![per_dtype!(x, slice(x, &ranges))?])
    }
}

/// For each output index of one padded axis, the input index it reads (`None`: the constant).
fn pad_map(d: usize, begin: i64, out: usize, mode: PadMode) -> Vec<Option<usize>> {
    let d = d as i64;
    (0..out as i64)
        .map(|o| {
            let i = o - begin;
            if (0..d).contains(&i) {
                return Some(i as usize);
            }
            match mode {
                PadMode::Constant => None,
                PadMode::Edge => Some(i.clamp(0, d - 1) as usize),
                PadMode::Reflect if d == 1 => Some(0),
                PadMode::Reflect => {
                    let m = i.rem_euclid(2 * (d - 1));
                    Some(if m >= d { 2 * (d - 1) - m } else { m } as usize)
                }
            }
        })
        .collect()
}

fn pad<T: Elem>(x: &Tensor, op: &Pad) -> Result<Tensor, EvalError> {
    let src = elems::<T>(x)?;
    let r = x.shape.len();
    if op.pads.len() != 2 * r {
        return Err(EvalError::op(format!("pads has {} entries for an input of rank {r}", op.pads.len())));
    }
    let mut shape = Vec::with_capacity(r);
    let mut maps = Vec::with_capacity(r);
    for a in 0..r {
        let (d, b, e) = (x.shape[a] as i64, op.pads[a], op.pads[a + r]);
        let n = d + b + e;
        let bad_reflect = op.mode == PadMode::Reflect && (b >= d || e >= d) && (b > 0 || e > 0);
        if n < 0 || (op.mode != PadMode::Constant && d == 0 && n > 0) || bad_reflect {
            return Err(EvalError::op(format!("pads ({b}, {e}) do not fit axis {a} of size {d}")));
        }
        shape.push(n as usize);
        maps.push(pad_map(d as usize, b, n as usize, op.mode));
    }
    let value = T::from_f32(op.value);
    let total: usize = shape.iter().product();
    if r == 0 {
        return Ok(T::tensor(shape, src.to_vec()));
    }
    let mut out = Vec::with_capacity(total);
    if total == 0 {
        return Ok(T::tensor(shape, out));
    }
    let st = strides(&x.shape);
    let last = &maps[r - 1];
    let mut idx = vec![0usize; r - 1];
    loop {
        // Input offset of this output row, or None when a padded outer index reads the constant.
        let base = (0..r - 1).try_fold(0isize, |acc, a| maps[a][idx[a]].map(|i| acc + i as isize * st[a]));
        match base {
            None => out.extend(std::iter::repeat_n(value, shape[r - 1])),
            Some(b) => out.extend(last.iter().map(|m| m.map_or(value, |i| src[b as usize + i]))),
        }
        let mut k = r - 1;
        loop {
            if k == 0 {
                return Ok(T::tensor(shape, out));
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

impl Eval for Pad {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let x = input(ins, 0)?;
        Ok(vec![per_dtype!(x, pad(x, self))?])
    }
}

fn gather<T: Elem>(data: &Tensor, idx: &Tensor, axis: usize) -> Result<Tensor, EvalError> {
    let src = elems::<T>(data)?;
    let ids =
        idx.as_i64().ok_or_else(|| EvalError::op(format!("indices must be i64, got {:?}", idx.dtype())))?;
    let d = data.shape[axis];
    let outer: usize = data.shape[..axis].iter().product();
    let inner: usize = data.shape[axis + 1..].iter().product();
    let mut rows = Vec::with_capacity(ids.len());
    for &i in ids {
        let j = if i < 0 { i + d as i64 } else { i };
        if j < 0 || j >= d as i64 {
            return Err(EvalError::op(format!("index {i} is out of range for axis {axis} of size {d}")));
        }
        rows.push(j as usize);
    }
    let mut out = Vec::with_capacity(outer * rows.len() * inner);
    for o in 0..outer {
        for &j in &rows {
            let at = (o * d + j) * inner;
            out.extend_from_slice(&src[at..at + inner]);
        }
    }
    let mut shape = data.shape[..axis].to_vec();
    shape.extend(&idx.shape);
    shape.extend(&data.shape[axis + 1..]);
    Ok(T::tensor(shape, out))
}

impl Eval for Gather {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let (data, idx) = (input(ins, 0)?, input(ins, 1)?);
        if data.shape.is_empty() {
            return Err(EvalError::op("cannot gather from a scalar"));
        }
        let axis = axis_of(self.axis, data.shape.len())?;
        Ok(vec![per_dtype!(data, gather(data, idx, axis))?])
    }
}

impl Eval for Identity {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Ok(vec![input(ins, 0)?.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize]) -> Tensor {
        Tensor::f32(shape.to_vec(), (0..shape.iter().product::<usize>()).map(|v| v as f32).collect())
    }
    fn run(op: &dyn Eval, ins: &[&Tensor]) -> Vec<Tensor> {
        op.eval(ins, &EvalCtx::default()).unwrap()
    }

    #[test]
    fn array_ops_move_integer_codes() {
        let a = Tensor::i8(vec![1, 2], vec![-1, 2]);
        let b = Tensor::i8(vec![1, 2], vec![3, -4]);
        let y = run(&Concat { axis: 0 }, &[&a, &b]).remove(0);
        assert_eq!(y.as_i8().unwrap(), &[-1, 2, 3, -4]);
        let u = Tensor::u8(vec![3], vec![7, 8, 9]);
        let s = Slice { starts: vec![1], ends: vec![3], axes: vec![0], steps: vec![] };
        assert_eq!(run(&s, &[&u])[0].as_u8().unwrap(), &[8, 9]);
        let i = Tensor::i32(vec![3], vec![1, 2, 3]);
        let g = run(&Gather { axis: 0 }, &[&i, &Tensor::i64(vec![2], vec![2, 0])]).remove(0);
        assert_eq!(g.as_i32().unwrap(), &[3, 1]);
    }

    #[test]
    fn concat_and_split_round_trip() {
        let (a, b) = (t(&[2, 1, 2]), t(&[2, 2, 2]));
        let y = run(&Concat { axis: 1 }, &[&a, &b]).remove(0);
        assert_eq!(y.shape, vec![2, 3, 2]);
        assert_eq!(y.as_f32().unwrap(), &[0., 1., 0., 1., 2., 3., 2., 3., 4., 5., 6., 7.]);
        let parts = run(&Split { axis: 1, sizes: vec![1, 2] }, &[&y]);
        assert_eq!(parts[0], a);
        assert_eq!(parts[1], b);
        assert!(Concat { axis: 0 }.eval(&[&a, &b], &EvalCtx::default()).is_err());
    }

    #[test]
    fn slice_with_negative_steps() {
        let x = t(&[2, 5]);
        let op =
            Slice { starts: vec![-1, 4], ends: vec![i64::MIN, 0], axes: vec![0, 1], steps: vec![-1, -2] };
        let y = run(&op, &[&x]).remove(0);
        assert_eq!(y.shape, vec![2, 2]);
        assert_eq!(y.as_f32().unwrap(), &[9., 7., 4., 2.]);
        let empty = Slice { starts: vec![3], ends: vec![1], axes: vec![1], steps: vec![] };
        assert_eq!(run(&empty, &[&x])[0].shape, vec![2, 0]);
    }

    #[test]
    fn pad_modes() {
        let x = t(&[1, 3]);
        let p = |mode| Pad { pads: vec![0, 2, 0, 1], mode, value: 9.0 };
        let y = run(&p(PadMode::Constant), &[&x]).remove(0);
        assert_eq!(y.as_f32().unwrap(), &[9., 9., 0., 1., 2., 9.]);
        let y = run(&p(PadMode::Reflect), &[&x]).remove(0);
        assert_eq!(y.as_f32().unwrap(), &[2., 1., 0., 1., 2., 1.]);
        let y = run(&p(PadMode::Edge), &[&x]).remove(0);
        assert_eq!(y.as_f32().unwrap(), &[0., 0., 0., 1., 2., 2.]);
        let crop = Pad { pads: vec![1, -1, 0, 0], mode: PadMode::Constant, value: 0.0 };
        let y = run(&crop, &[&x]).remove(0);
        assert_eq!(y.shape, vec![2, 2]);
        assert_eq!(y.as_f32().unwrap(), &[0., 0., 1., 2.]);
        let bad = Pad { pads: vec![0, 3, 0, 0], mode: PadMode::Reflect, value: 0.0 };
        assert!(bad.eval(&[&x], &EvalCtx::default()).is_err());
    }

    #[test]
    fn gather_rows_and_negative_indices() {
        let table = t(&[4, 2]);
        let ids = Tensor::i64(vec![1, 2], vec![-1, 1]);
        let y = run(&Gather { axis: 0 }, &[&table, &ids]).remove(0);
        assert_eq!(y.shape, vec![1, 2, 2]);
        assert_eq!(y.as_f32().unwrap(), &[6., 7., 2., 3.]);
        let y = run(&Gather { axis: 1 }, &[&table, &Tensor::i64(vec![], vec![0])]).remove(0);
        assert_eq!(y.as_f32().unwrap(), &[0., 2., 4., 6.]);
        let err = Gather { axis: 0 }
            .eval(&[&table, &Tensor::i64(vec![1], vec![4])], &EvalCtx::default())
            .unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}
