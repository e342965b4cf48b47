//! Evaluation of reductions: one pass over the input in order, each element accumulated into
//! its output slot (f64 accumulators for f32 sums and products).

use super::binary::Broadcast;
use super::{Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::reduce::*;
use shrink_graph::{Tensor, TensorData};

/// The output shape with the reduced axes kept as 1, the final shape, and the element count of
/// each reduction.
fn shapes(r: &Reduce, shape: &[usize]) -> Result<(Vec<usize>, Vec<usize>, usize), EvalError> {
    let axes = r.resolved_axes(shape.len()).map_err(|e| EvalError::op(e.to_string()))?;
    let kept: Vec<usize> =
        shape.iter().enumerate().map(|(k, &d)| if axes.contains(&k) { 1 } else { d }).collect();
    let out: Vec<usize> = if r.keepdims {
        kept.clone()
    } else {
        shape.iter().enumerate().filter(|(k, _)| !axes.contains(k)).map(|(_, &d)| d).collect()
    };
    let count = axes.iter().map(|&k| shape[k]).product();
    Ok((kept, out, count))
}

/// Fold every input element into its output slot: `acc[slot] = f(acc[slot], x)`. The output is
/// broadcast against the input (stride 0 on reduced axes), so the rows come from [`Broadcast`].
fn fold<T: Copy, A: Copy>(
    x: &[T],
    shape: &[usize],
    kept: &[usize],
    init: A,
    f: impl Fn(A, T) -> A,
) -> Result<Vec<A>, EvalError> {
    let mut acc = vec![init; kept.iter().product()];
    let bc = Broadcast::new([shape, kept])?;
    let mut pos = 0;
    bc.for_each_row(|[_, o], len, [_, so]| {
        let row = &x[pos..pos + len];
        if so == 0 {
            let a = &mut acc[o];
            for &v in row {
                *a = f(*a, v);
            }
        } else {
            for (a, &v) in acc[o..o + len].iter_mut().zip(row) {
                *a = f(*a, v);
            }
        }
        pos += len;
    });
    Ok(acc)
}

fn reduce_f32(
    kind: ReduceKind,
    x: &[f32],
    shape: &[usize],
    kept: &[usize],
    count: usize,
) -> Result<Vec<f32>, EvalError> {
    let narrow = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect();
    Ok(match kind {
        ReduceKind::Sum => narrow(fold(x, shape, kept, 0f64, |a, v| a + v as f64)?),
        ReduceKind::Mean => {
            let n = count as f64;
            fold(x, shape, kept, 0f64, |a, v| a + v as f64)?.into_iter().map(|a| (a / n) as f32).collect()
        }
        ReduceKind::Prod => narrow(fold(x, shape, kept, 1f64, |a, v| a * v as f64)?),
        // NaN propagates; an empty reduction gives -inf (Max) or +inf (Min) as ONNX.
        ReduceKind::Max => {
            fold(x, shape, kept, f32::NEG_INFINITY, |a, v| if a >= v || a.is_nan() { a } else { v })?
        }
        ReduceKind::Min => {
            fold(x, shape, kept, f32::INFINITY, |a, v| if a <= v || a.is_nan() { a } else { v })?
        }
    })
}

fn reduce_i64(
    kind: ReduceKind,
    x: &[i64],
    shape: &[usize],
    kept: &[usize],
    count: usize,
) -> Result<Vec<i64>, EvalError> {
    Ok(match kind {
        ReduceKind::Sum => fold(x, shape, kept, 0i64, i64::wrapping_add)?,
        ReduceKind::Mean => {
            if count == 0 {
                return Err(EvalError::op("integer mean of an empty axis"));
            }
            // Truncates toward zero.
            fold(x, shape, kept, 0i64, i64::wrapping_add)?.into_iter().map(|a| a / count as i64).collect()
        }
        ReduceKind::Prod => fold(x, shape, kept, 1i64, i64::wrapping_mul)?,
        ReduceKind::Max => fold(x, shape, kept, i64::MIN, i64::max)?,
        ReduceKind::Min => fold(x, shape, kept, i64::MAX, i64::min)?,
    })
}

impl Eval for Reduce {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let [x] = ins else { return Err(EvalError::op(format!("expects 1 input, got {}", ins.len()))) };
        let (kept, out, count) = shapes(self, &x.shape)?;
        let t = match &x.data {
            TensorData::F32(v) => Tensor::f32(out, reduce_f32(self.kind, v, &x.shape, &kept, count)?),
            TensorData::I64(v) => Tensor::i64(out, reduce_i64(self.kind, v, &x.shape, &kept, count)?),
            _ => {
                return Err(EvalError::op(format!(
                    "{:?} is not defined on {:?} values",
                    self.kind,
                    x.dtype()
                )))
            }
        };
        Ok(vec![t])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(kind: ReduceKind, axes: Vec<i64>, keepdims: bool, x: &Tensor) -> Tensor {
        Reduce { kind, axes, keepdims }.eval(&[x], &EvalCtx::default()).unwrap().remove(0)
    }

    #[test]
    fn reductions_over_axes() {
        // x[i][j][k] = 100 i + 10 j + k, shape [2, 3, 4]
        let v: Vec<f32> = (0..24).map(|f| (100 * (f / 12) + 10 * ((f / 4) % 3) + f % 4) as f32).collect();
        let x = Tensor::f32(vec![2, 3, 4], v);
        let s = red(ReduceKind::Sum, vec![1], false, &x);
        assert_eq!(s.shape, vec![2, 4]);
        assert_eq!(s.as_f32().unwrap()[..4], [30.0, 33.0, 36.0, 39.0]);
        let m = red(ReduceKind::Mean, vec![0, 2], true, &x);
        assert_eq!(m.shape, vec![1, 3, 1]);
        assert_eq!(m.as_f32().unwrap(), &[51.5, 61.5, 71.5]);
        let mx = red(ReduceKind::Max, vec![], false, &x);
        assert_eq!((mx.shape.clone(), mx.as_f32().unwrap()[0]), (vec![], 123.0));
        let mn = red(ReduceKind::Min, vec![-1], true, &x);
        assert_eq!(mn.as_f32().unwrap(), &[0.0, 10.0, 20.0, 100.0, 110.0, 120.0]);
        let i = Tensor::i64(vec![2, 2], vec![1, 2, 3, -4]);
        assert_eq!(red(ReduceKind::Prod, vec![1], false, &i).as_i64().unwrap(), &[2, -12]);
        assert_eq!(red(ReduceKind::Mean, vec![0], false, &i).as_i64().unwrap(), &[2, -1]);
        let e =
            Reduce { kind: ReduceKind::Sum, axes: vec![3], keepdims: true }.eval(&[&x], &EvalCtx::default());
        assert!(e.is_err());
    }
}
