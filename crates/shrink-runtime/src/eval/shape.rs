//! Evaluation of shape ops, and the data-movement helpers the array family shares: the
//! [`Elem`] element types and one strided copy ([`strided_copy`]) that Transpose, Slice, Concat,
//! Split and Expand all reduce to.

use super::{Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::shape::*;
use shrink_graph::Tensor;

/// Element types moved by the array ops (every dtype).
pub(crate) trait Elem: Copy + Default + 'static {
    /// The elements of `t` if it has this type.
    fn slice(t: &Tensor) -> Option<&[Self]>;
    /// A tensor of this type.
    fn tensor(shape: Vec<usize>, data: Vec<Self>) -> Tensor;
    /// A padding value given as f32.
    fn from_f32(v: f32) -> Self;
}

impl Elem for f32 {
    fn slice(t: &Tensor) -> Option<&[Self]> {
        t.as_f32()
    }
    fn tensor(shape: Vec<usize>, data: Vec<Self>) -> Tensor {
        Tensor::f32(shape, data)
    }
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Elem for i64 {
    fn slice(t: &Tensor) -> Option<&[Self]> {
        t.as_i64()
    }
    fn tensor(shape: Vec<usize>, data: Vec<Self>) -> Tensor {
        Tensor::i64(shape, data)
    }
    fn from_f32(v: f32) -> Self {
        v as i64
    }
}

impl Elem for bool {
    fn slice(t: &Tensor) -> Option<&[Self]> {
        t.as_bool()
    }
    fn tensor(shape: Vec<usize>, data: Vec<Self>) -> Tensor {
        Tensor::bool(shape, data)
    }
    fn from_f32(v: f32) -> Self {
        v != 0.0
    }
}

/// The integer element types of quantized graphs (codes, zero points, accumulators).
macro_rules! int_elem {
    ($t:ty, $as:ident, $new:ident) => {
        impl Elem for $t {
            fn slice(t: &Tensor) -> Option<&[Self]> {
                t.$as()
            }
            fn tensor(shape: Vec<usize>, data: Vec<Self>) -> Tensor {
                Tensor::$new(shape, data)
            }
            fn from_f32(v: f32) -> Self {
                // `as` saturates (NaN gives 0).
                v as $t
            }
        }
    };
}
int_elem!(i8, as_i8, i8);
int_elem!(u8, as_u8, u8);
int_elem!(i32, as_i32, i32);

/// Call the generic function `$f::<T>(args)` with `T` the element type of tensor `$t`.
macro_rules! per_dtype {
    ($t:expr, $f:ident($($a:expr),* $(,)?)) => {
        match $t.dtype() {
            shrink_graph::DType::F32 => $f::<f32>($($a),*),
            shrink_graph::DType::I64 => $f::<i64>($($a),*),
            shrink_graph::DType::Bool => $f::<bool>($($a),*),
            shrink_graph::DType::I8 => $f::<i8>($($a),*),
            shrink_graph::DType::U8 => $f::<u8>($($a),*),
            shrink_graph::DType::I32 => $f::<i32>($($a),*),
        }
    };
}
pub(crate) use per_dtype;

/// The elements of `t` as `T` (the caller dispatched on its dtype).
pub(crate) fn elems<T: Elem>(t: &Tensor) -> Result<&[T], EvalError> {
    T::slice(t).ok_or_else(|| EvalError::op(format!("unexpected {:?} values", t.dtype())))
}

/// Input `k`, or an error naming it.
pub(crate) fn input<'a>(ins: &[&'a Tensor], k: usize) -> Result<&'a Tensor, EvalError> {
    ins.get(k).copied().ok_or_else(|| EvalError::op(format!("missing input {k}")))
}

/// Row-major strides of `shape`.
pub(crate) fn strides(shape: &[usize]) -> Vec<isize> {
    let mut s = vec![1isize; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1] as isize;
    }
    s
}

/// Copy a strided view of `src` into a strided region of `dst`: for every index `i` of
/// `shape`, `dst[dst_off + Σ i·dst_strides] = src[src_off + Σ i·src_strides]`. Source strides
/// may be 0 (broadcast) or negative (reversed). Axes that are contiguous in both are merged, so
/// the inner loop is one `copy_from_slice` whenever the layouts allow. The caller keeps every
/// index in bounds.
pub(crate) fn strided_copy<T: Copy>(
    src: &[T],
    src_off: isize,
    src_strides: &[isize],
    dst: &mut [T],
    dst_off: isize,
    dst_strides: &[isize],
    shape: &[usize],
) {
    if shape.contains(&0) {
        return;
    }
    // Drop unit axes, then merge neighbours that are contiguous in both layouts.
    let mut dims: Vec<(usize, isize, isize)> = Vec::with_capacity(shape.len());
    for k in 0..shape.len() {
        if shape[k] == 1 {
            continue;
        }
        let (n, s, d) = (shape[k], src_strides[k], dst_strides[k]);
        match dims.last_mut() {
            Some(last) if last.1 == s * n as isize && last.2 == d * n as isize => *last = (last.0 * n, s, d),
            _ => dims.push((n, s, d)),
        }
    }
    let Some(&(inner, ss, ds)) = dims.last() else {
        dst[dst_off as usize] = src[src_off as usize];
        return;
    };
    let outer = &dims[..dims.len() - 1];
    let mut idx = vec![0usize; outer.len()];
    let (mut so, mut d_o) = (src_off, dst_off);
    loop {
        if ss == 1 && ds == 1 {
            dst[d_o as usize..d_o as usize + inner].copy_from_slice(&src[so as usize..so as usize + inner]);
        } else {
            for i in 0..inner as isize {
                dst[(d_o + i * ds) as usize] = src[(so + i * ss) as usize];
            }
        }
        // Advance the outer multi-index (last axis fastest).
        let mut k = outer.len();
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            idx[k] += 1;
            so += outer[k].1;
            d_o += outer[k].2;
            if idx[k] < outer[k].0 {
                break;
            }
            so -= outer[k].1 * outer[k].0 as isize;
            d_o -= outer[k].2 * outer[k].0 as isize;
            idx[k] = 0;
        }
    }
}

/// A new contiguous tensor of shape `shape` read from `t` through `src_off`/`src_strides`.
pub(crate) fn gather_view<T: Elem>(
    t: &Tensor,
    shape: &[usize],
    src_off: isize,
    src_strides: &[isize],
) -> Result<Tensor, EvalError> {
    let src = elems::<T>(t)?;
    let mut out = vec![T::default(); shape.iter().product()];
    strided_copy(src, src_off, src_strides, &mut out, 0, &strides(shape), shape);
    Ok(T::tensor(shape.to_vec(), out))
}

/// The same data under another shape (no copy).
fn reshaped(t: &Tensor, shape: Vec<usize>) -> Result<Tensor, EvalError> {
    if shape.iter().product::<usize>() != t.len() {
        return Err(EvalError::op(format!("cannot reshape {:?} to {shape:?}", t.shape)));
    }
    Ok(Tensor { shape, data: t.data.clone() })
}

fn fixed(shape: &[usize]) -> Vec<shrink_graph::Dim> {
    shape.iter().map(|&d| d.into()).collect()
}

impl Eval for Reshape {
    fn eval(&self, ins: &[&Tensor], ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Ok(vec![reshaped(input(ins, 0)?, ctx.dims(&self.shape)?)?])
    }
}

impl Eval for Flatten {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let x = input(ins, 0)?;
        let out = self.out_shape(&fixed(&x.shape)).map_err(|e| EvalError::op(e.to_string()))?;
        let shape = out.iter().map(|d| d.fixed().unwrap_or(0)).collect();
        Ok(vec![reshaped(x, shape)?])
    }
}

fn transpose<T: Elem>(x: &Tensor, perm: &[usize]) -> Result<Tensor, EvalError> {
    let st = strides(&x.shape);
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let src_strides: Vec<isize> = perm.iter().map(|&p| st[p]).collect();
    gather_view::<T>(x, &shape, 0, &src_strides)
}

impl Eval for Transpose {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let x = input(ins, 0)?;
        let r = x.shape.len();
        let mut seen = vec![false; r];
        if self.perm.len() != r || self.perm.iter().any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
        {
            return Err(EvalError::op(format!("perm {:?} does not fit shape {:?}", self.perm, x.shape)));
        }
        Ok(vec![per_dtype!(x, transpose(x, &self.perm))?])
    }
}

impl Eval for Squeeze {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let x = input(ins, 0)?;
        let removed = if self.axes.is_empty() {
            (0..x.shape.len()).filter(|&k| x.shape[k] == 1).collect()
        } else {
            self.removed(&fixed(&x.shape)).map_err(|e| EvalError::op(e.to_string()))?
        };
        let shape = (0..x.shape.len()).filter(|k| !removed.contains(k)).map(|k| x.shape[k]).collect();
        Ok(vec![reshaped(x, shape)?])
    }
}

impl Eval for Unsqueeze {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let x = input(ins, 0)?;
        let inserted = self.inserted(x.shape.len()).map_err(|e| EvalError::op(e.to_string()))?;
        let mut src = x.shape.iter();
        let shape = (0..x.shape.len() + inserted.len())
            .map(|k| if inserted.contains(&k) { 1 } else { src.next().copied().unwrap_or(1) })
            .collect();
        Ok(vec![reshaped(x, shape)?])
    }
}

/// NumPy broadcast of two concrete shapes.
pub(crate) fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>, EvalError> {
    shrink_graph::fact::broadcast_fixed(a, b).map_err(EvalError::Op)
}

fn expand<T: Elem>(x: &Tensor, shape: &[usize]) -> Result<Tensor, EvalError> {
    let st = strides(&x.shape);
    let off = shape.len() - x.shape.len();
    let src_strides: Vec<isize> = (0..shape.len())
        .map(|k| match k.checked_sub(off) {
            Some(i) if x.shape[i] != 1 => st[i],
            _ => 0,
        })
        .collect();
    gather_view::<T>(x, shape, 0, &src_strides)
}

impl Eval for Expand {
    fn eval(&self, ins: &[&Tensor], ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let x = input(ins, 0)?;
        let target: Vec<usize> = match ins.get(1) {
            Some(s) => s
                .to_i64_vec()
                .into_iter()
                .map(|v| {
                    usize::try_from(v).map_err(|_| EvalError::op(format!("shape element {v} is negative")))
                })
                .collect::<Result<_, _>>()?,
            None => ctx.dims(&self.shape)?,
        };
        let shape = broadcast(&x.shape, &target)?;
        Ok(vec![per_dtype!(x, expand(x, &shape))?])
    }
}

impl Eval for Shape {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let x = input(ins, 0)?;
        let dims: Vec<i64> = x.shape[self.range(x.shape.len())].iter().map(|&d| d as i64).collect();
        Ok(vec![Tensor::i64(vec![dims.len()], dims)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrink_graph::Dim;

    fn run(op: &dyn Eval, ins: &[&Tensor]) -> Tensor {
        op.eval(ins, &EvalCtx::default()).unwrap().remove(0)
    }

    #[test]
    fn strided_copy_merges_contiguous_axes_and_reverses() {
        let src: Vec<i32> = (0..24).collect();
        let mut dst = vec![0; 24];
        strided_copy(&src, 0, &[12, 4, 1], &mut dst, 0, &[12, 4, 1], &[2, 3, 4]);
        assert_eq!(dst, src);
        // Reverse the last axis of a [2, 3] view.
        let mut dst = vec![0; 6];
        strided_copy(&src, 2, &[3, -1], &mut dst, 0, &[3, 1], &[2, 3]);
        assert_eq!(dst, vec![2, 1, 0, 5, 4, 3]);
    }

    #[test]
    fn transpose_reshape_and_expand() {
        let x = Tensor::f32(vec![2, 3], (0..6).map(|v| v as f32).collect());
        let y = run(&Transpose { perm: vec![1, 0] }, &[&x]);
        assert_eq!(y.shape, vec![3, 2]);
        assert_eq!(y.as_f32().unwrap(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let ctx = EvalCtx { syms: [("N".to_string(), 3)].into(), ..Default::default() };
        let y = Reshape { shape: vec![Dim::Sym("N".into()), Dim::Fixed(2)] }.eval(&[&x], &ctx).unwrap();
        assert_eq!(y[0].shape, vec![3, 2]);
        assert!(Reshape { shape: vec![Dim::Fixed(4)] }.eval(&[&x], &ctx).is_err());
        let c = Tensor::i64(vec![3, 1], vec![1, 2, 3]);
        let y = run(&Expand { shape: vec![Dim::Fixed(2), Dim::Fixed(1), Dim::Fixed(2)] }, &[&c]);
        assert_eq!(y.shape, vec![2, 3, 2]);
        assert_eq!(y.as_i64().unwrap(), &[1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]);
        let bad = Expand { shape: vec![Dim::Fixed(2)] }.eval(&[&c, &Tensor::i64(vec![1], vec![-2])], &ctx);
        assert!(bad.is_err());
    }

    #[test]
    fn squeeze_unsqueeze_flatten_shape() {
        let x = Tensor::bool(vec![1, 2, 1], vec![true, false]);
        assert_eq!(run(&Squeeze { axes: vec![] }, &[&x]).shape, vec![2]);
        assert_eq!(run(&Unsqueeze { axes: vec![-1] }, &[&x]).shape, vec![1, 2, 1, 1]);
        assert!(Squeeze { axes: vec![1] }.eval(&[&x], &EvalCtx::default()).is_err());
        assert_eq!(run(&Flatten { axis: 2 }, &[&x]).shape, vec![2, 1]);
        let s = run(&Shape { start: 1, end: None }, &[&x]);
        assert_eq!(s.as_i64().unwrap(), &[2, 1]);
    }
}
