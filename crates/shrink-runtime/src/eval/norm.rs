//! Evaluation of normalizations (statistics accumulated in f64).

use super::conv::infer_fixed;
use super::matmul::broadcast_to;
use super::{f32_input, Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::norm::*;
use shrink_graph::Tensor;

/// Mean and population variance of `v`.
fn stats(v: &[f32]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var)
}

/// Normalize `block` in place with its own statistics, then `y = ŷ·scale[i] + bias[i]` where
/// `i = k / per` (`per` consecutive elements share a parameter).
fn normalize(block: &mut [f32], eps: f32, scale: &[f32], bias: &[f32], per: usize) {
    let (mean, var) = stats(block);
    let inv = 1.0 / (var + eps as f64).sqrt();
    for (k, x) in block.iter_mut().enumerate() {
        let i = k / per;
        *x = ((*x as f64 - mean) * inv) as f32 * scale[i] + bias[i];
    }
}

/// Per-channel normalization shared by GroupNorm and InstanceNorm: `groups` blocks per example.
fn group_norm(x: &Tensor, ins: &[&Tensor], groups: usize, eps: f32) -> Result<Tensor, EvalError> {
    let mut y = f32_input(ins, 0)?.to_vec();
    let (scale, bias) = (f32_input(ins, 1)?, f32_input(ins, 2)?);
    let c = x.shape[1];
    let plane: usize = x.shape[2..].iter().product();
    let cg = c / groups;
    let block = cg * plane;
    if block == 0 {
        return Ok(Tensor::f32(x.shape.clone(), y));
    }
    for (b, chunk) in y.chunks_mut(block).enumerate() {
        let g = b % groups;
        normalize(chunk, eps, &scale[g * cg..][..cg], &bias[g * cg..][..cg], plane.max(1));
    }
    Ok(Tensor::f32(x.shape.clone(), y))
}

impl Eval for BatchNorm {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        infer_fixed(self, ins)?;
        let x = ins[0];
        let (scale, bias, mean, var) =
            (f32_input(ins, 1)?, f32_input(ins, 2)?, f32_input(ins, 3)?, f32_input(ins, 4)?);
        let c = x.shape[1];
        let plane: usize = x.shape[2..].iter().product();
        let (a, b): (Vec<f32>, Vec<f32>) = (0..c)
            .map(|k| {
                let a = scale[k] / (var[k] + self.epsilon).sqrt();
                (a, bias[k] - mean[k] * a)
            })
            .unzip();
        let mut y = f32_input(ins, 0)?.to_vec();
        if plane > 0 {
            for (i, chunk) in y.chunks_mut(plane).enumerate() {
                let k = i % c;
                chunk.iter_mut().for_each(|v| *v = *v * a[k] + b[k]);
            }
        }
        Ok(vec![Tensor::f32(x.shape.clone(), y)])
    }
}

impl Eval for LayerNorm {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        infer_fixed(self, ins)?;
        let x = ins[0];
        let axis = x.fact().axis(self.axis).map_err(|e| EvalError::op(e.to_string()))?;
        let inner_shape = &x.shape[axis..];
        let inner: usize = inner_shape.iter().product();
        let scale = broadcast_to(f32_input(ins, 1)?, &ins[1].shape, inner_shape);
        let bias = match ins.get(2) {
            Some(b) => broadcast_to(f32_input(ins, 2)?, &b.shape, inner_shape),
            None => vec![0.0; inner],
        };
        let mut y = f32_input(ins, 0)?.to_vec();
        if inner > 0 {
            for chunk in y.chunks_mut(inner) {
                normalize(chunk, self.epsilon, &scale, &bias, 1);
            }
        }
        Ok(vec![Tensor::f32(x.shape.clone(), y)])
    }
}

impl Eval for GroupNorm {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        infer_fixed(self, ins)?;
        Ok(vec![group_norm(ins[0], ins, self.groups, self.epsilon)?])
    }
}

impl Eval for InstanceNorm {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        infer_fixed(self, ins)?;
        Ok(vec![group_norm(ins[0], ins, ins[0].shape[1], self.epsilon)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> EvalCtx {
        EvalCtx::default()
    }

    #[test]
    fn batch_norm_uses_running_statistics() {
        let x = Tensor::f32(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let p = |v: [f32; 2]| Tensor::f32(vec![2], v.to_vec());
        let (s, b, m, v) = (p([2.0, 1.0]), p([0.5, 0.0]), p([1.0, 2.0]), p([4.0, 1.0]));
        let y = BatchNorm { epsilon: 0.0 }.eval(&[&x, &s, &b, &m, &v], &ctx()).unwrap().remove(0);
        assert_eq!(y.as_f32().unwrap(), &[0.5, 0.0, 2.5, 2.0]);
    }

    #[test]
    fn layer_and_group_norm_normalize_their_blocks() {
        let x = Tensor::f32(vec![1, 2, 2], vec![1.0, 3.0, 10.0, 30.0]);
        let s = Tensor::f32(vec![2], vec![1.0, 2.0]);
        let y = LayerNorm { axis: -1, epsilon: 0.0 }.eval(&[&x, &s], &ctx()).unwrap().remove(0);
        assert_eq!(y.as_f32().unwrap(), &[-1.0, 2.0, -1.0, 2.0]);
        let z = Tensor::f32(vec![2], vec![0.0, 0.0]);
        let y = GroupNorm { groups: 1, epsilon: 0.0 }.eval(&[&x, &s, &z], &ctx()).unwrap().remove(0);
        let v = y.as_f32().unwrap();
        assert!(v[0] < v[1] && v[1] < 0.0 && v[3] > v[2], "{v:?}");
        let y = InstanceNorm { epsilon: 0.0 }.eval(&[&x, &s, &z], &ctx()).unwrap().remove(0);
        assert_eq!(y.as_f32().unwrap(), &[-1.0, 1.0, -2.0, 2.0]);
        assert!(InstanceNorm { epsilon: 0.0 }.eval(&[&x, &s], &ctx()).is_err());
    }
}
