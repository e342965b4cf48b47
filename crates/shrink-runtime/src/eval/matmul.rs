//! Evaluation of matrix products (gemm crate kernels).

use super::conv::{gemm_for, infer_fixed};
use super::{f32_input, Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::matmul::*;
use shrink_graph::Tensor;

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

/// `src` (shape `from`) broadcast NumPy-style to `to` (right-aligned), row-major.
pub(crate) fn broadcast_to<T: Copy>(src: &[T], from: &[usize], to: &[usize]) -> Vec<T> {
    let n: usize = to.iter().product();
    if from.iter().product::<usize>() == n {
        return src.to_vec();
    }
    let off = to.len() - from.len();
    let fs = strides(from);
    // Stride in `src` of each output axis (0 where broadcast).
    let st: Vec<usize> =
        (0..to.len()).map(|k| if k < off || from[k - off] == 1 { 0 } else { fs[k - off] }).collect();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; to.len()];
    let mut pos = 0usize;
    for _ in 0..n {
        out.push(src[pos]);
        for k in (0..to.len()).rev() {
            idx[k] += 1;
            pos += st[k];
            if idx[k] < to[k] {
                break;
            }
            pos -= st[k] * to[k];
            idx[k] = 0;
        }
    }
    out
}

impl Eval for Gemm {
    fn eval(&self, ins: &[&Tensor], ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let gemm_strided = gemm_for(ctx);
        let out_shape = infer_fixed(self, ins)?.remove(0);
        let (a, b) = (f32_input(ins, 0)?, f32_input(ins, 1)?);
        let (m, n) = (out_shape[0], out_shape[1]);
        let (ar, ac) = (ins[0].shape[0], ins[0].shape[1]);
        let bc = ins[1].shape[1];
        let k = if self.trans_a { ar } else { ac };
        let a_st = if self.trans_a { (1, ac) } else { (ac, 1) };
        let b_st = if self.trans_b { (1, bc) } else { (bc, 1) };
        let (mut out, accumulate) = match ins.get(2) {
            Some(c) if self.beta != 0.0 => {
                let mut v = broadcast_to(f32_input(ins, 2)?, &c.shape, &out_shape);
                if self.beta != 1.0 {
                    v.iter_mut().for_each(|x| *x *= self.beta);
                }
                (v, true)
            }
            _ => (vec![0f32; m * n], false),
        };
        gemm_strided(m, n, k, &mut out, a, a_st, b, b_st, self.alpha, accumulate);
        Ok(vec![Tensor::f32(out_shape, out)])
    }
}

impl Eval for MatMul {
    fn eval(&self, ins: &[&Tensor], ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let gemm_strided = gemm_for(ctx);
        let out_shape = infer_fixed(self, ins)?.remove(0);
        let (a, b) = (f32_input(ins, 0)?, f32_input(ins, 1)?);
        // 1-D promotion: a [K] → [1, K], b [K] → [K, 1].
        let sa = if ins[0].shape.len() == 1 { vec![1, ins[0].shape[0]] } else { ins[0].shape.clone() };
        let sb = if ins[1].shape.len() == 1 { vec![ins[1].shape[0], 1] } else { ins[1].shape.clone() };
        let (ra, rb) = (sa.len(), sb.len());
        let (m, k, n) = (sa[ra - 2], sa[ra - 1], sb[rb - 1]);
        let total: usize = out_shape.iter().product();
        let mut out = vec![0f32; total];
        let (ba, bb) = (&sa[..ra - 2], &sb[..rb - 2]);
        if bb.iter().all(|&d| d == 1) {
            // One matrix on the right (weights): every batch of a is more rows.
            let rows = a.len() / k.max(1);
            if k == 0 {
                return Ok(vec![Tensor::f32(out_shape, out)]);
            }
            gemm_strided(rows, n, k, &mut out, a, (k, 1), b, (n, 1), 1.0, false);
            return Ok(vec![Tensor::f32(out_shape, out)]);
        }
        let batch = shrink_graph::fact::broadcast_shapes(&[
            &ba.iter().map(|&d| d.into()).collect::<Vec<_>>(),
            &bb.iter().map(|&d| d.into()).collect::<Vec<_>>(),
        ])
        .map_err(|e| EvalError::op(e.to_string()))?;
        let batch: Vec<usize> = batch.iter().map(|d| d.fixed().unwrap_or(1)).collect();
        let nb: usize = batch.iter().product();
        // Matrix index of a and b for every output batch index.
        let index_of = |from: &[usize]| -> Vec<usize> {
            let ids: Vec<usize> = (0..from.iter().product::<usize>()).collect();
            broadcast_to(&ids, from, &batch)
        };
        let (ia, ib) = (index_of(ba), index_of(bb));
        for bi in 0..nb {
            let am = &a[ia[bi] * m * k..][..m * k];
            let bm = &b[ib[bi] * k * n..][..k * n];
            gemm_strided(m, n, k, &mut out[bi * m * n..][..m * n], am, (k, 1), bm, (n, 1), 1.0, false);
        }
        Ok(vec![Tensor::f32(out_shape, out)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: Vec<usize>, k: f32) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::f32(shape, (0..n).map(|i| (i as f32 * k).cos()).collect())
    }

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut o = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                o[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        o
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }

    #[test]
    fn matmul_broadcasts_batches_and_promotes_vectors() {
        let a = t(vec![2, 1, 3, 4], 0.3);
        let b = t(vec![3, 4, 5], 0.7);
        let o = MatMul {}.eval(&[&a, &b], &EvalCtx::default()).unwrap().remove(0);
        assert_eq!(o.shape, vec![2, 3, 3, 5]);
        let (av, bv, ov) = (a.as_f32().unwrap(), b.as_f32().unwrap(), o.as_f32().unwrap());
        for i in 0..2 {
            for j in 0..3 {
                let want = naive(&av[i * 12..][..12], &bv[j * 20..][..20], 3, 4, 5);
                close(&ov[(i * 3 + j) * 15..][..15], &want);
            }
        }
        let v = t(vec![4], 0.5);
        let o = MatMul {}.eval(&[&a, &v], &EvalCtx::default()).unwrap().remove(0);
        assert_eq!(o.shape, vec![2, 1, 3]);
        close(&o.as_f32().unwrap()[..3], &naive(&av[..12], v.as_f32().unwrap(), 3, 4, 1));
        assert!(MatMul {}.eval(&[&a, &a], &EvalCtx::default()).is_err());
        let dot = MatMul {}.eval(&[&v, &v], &EvalCtx::default()).unwrap().remove(0);
        let vv = v.as_f32().unwrap();
        assert!(dot.shape.is_empty());
        assert!((dot.as_f32().unwrap()[0] - vv.iter().map(|x| x * x).sum::<f32>()).abs() < 1e-5);
    }

    #[test]
    fn gemm_applies_transposes_alpha_beta() {
        let a = t(vec![4, 3], 0.3); // transposed: 3×4
        let b = t(vec![5, 4], 0.9); // transposed: 4×5
        let c = t(vec![1, 5], 0.2);
        let op = Gemm { alpha: 0.5, beta: 2.0, trans_a: true, trans_b: true };
        let o = op.eval(&[&a, &b, &c], &EvalCtx::default()).unwrap().remove(0);
        let tr = |x: &Tensor| {
            let (r, cc) = (x.shape[0], x.shape[1]);
            let v = x.as_f32().unwrap();
            (0..cc * r).map(|i| v[(i % r) * cc + i / r]).collect::<Vec<_>>()
        };
        let p = naive(&tr(&a), &tr(&b), 3, 4, 5);
        let cv = c.as_f32().unwrap();
        let want: Vec<f32> = p.iter().enumerate().map(|(i, x)| 0.5 * x + 2.0 * cv[i % 5]).collect();
        close(o.as_f32().unwrap(), &want);
    }
}
