//! Evaluation of activations, Softmax and LogSoftmax.

use super::{f32_input, Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::activation::*;
use shrink_graph::{Tensor, TensorData};

/// Apply `f` to every element of the one f32 input.
fn map_f32(ins: &[&Tensor], f: impl Fn(f32) -> f32) -> Result<Vec<Tensor>, EvalError> {
    if ins.len() != 1 {
        return Err(EvalError::op(format!("expects 1 input, got {}", ins.len())));
    }
    let x = f32_input(ins, 0)?;
    Ok(vec![Tensor::f32(ins[0].shape.clone(), x.iter().map(|&v| f(v)).collect())])
}

impl Eval for LeakyRelu {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let a = self.alpha;
        map_f32(ins, |v| if v < 0.0 { a * v } else { v })
    }
}

impl Eval for HardSigmoid {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let (a, b) = (self.alpha, self.beta);
        map_f32(ins, |v| (a * v + b).clamp(0.0, 1.0))
    }
}

impl Eval for Elu {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let a = self.alpha;
        map_f32(ins, |v| if v < 0.0 { a * v.exp_m1() } else { v })
    }
}

impl Eval for Gelu {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        if self.tanh {
            // sqrt(2/pi)
            const K: f32 = 0.797_884_6;
            map_f32(ins, |v| 0.5 * v * (1.0 + (K * (v + 0.044_715 * v * v * v)).tanh()))
        } else {
            map_f32(ins, |v| 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2)))
        }
    }
}

impl Eval for Clip {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let [x] = ins else { return Err(EvalError::op(format!("expects 1 input, got {}", ins.len()))) };
        let (lo, hi) = (self.min.unwrap_or(f32::NEG_INFINITY), self.max.unwrap_or(f32::INFINITY));
        match &x.data {
            // min(max(x, lo), hi) as ONNX (hi wins when lo > hi); NaN stays NaN.
            TensorData::F32(v) => Ok(vec![Tensor::f32(
                x.shape.clone(),
                v.iter().map(|&a| if a.is_nan() { a } else { a.max(lo).min(hi) }).collect(),
            )]),
            TensorData::I64(v) => {
                let lo = self.min.map_or(i64::MIN, |m| m.ceil() as i64);
                let hi = self.max.map_or(i64::MAX, |m| m.floor() as i64);
                Ok(vec![Tensor::i64(x.shape.clone(), v.iter().map(|&a| a.max(lo).min(hi)).collect())])
            }
            _ => Err(EvalError::op(format!("Clip is not defined on {:?} values", x.dtype()))),
        }
    }
}

/// Softmax or log-softmax over `axis` (with `flatten`, over every axis from `axis` on).
fn softmax(ins: &[&Tensor], axis: i64, flatten: bool, log: bool) -> Result<Vec<Tensor>, EvalError> {
    if ins.len() != 1 {
        return Err(EvalError::op(format!("expects 1 input, got {}", ins.len())));
    }
    let x = f32_input(ins, 0)?;
    let shape = &ins[0].shape;
    if shape.is_empty() {
        return Err(EvalError::op("needs an input of rank 1 or more, got a scalar"));
    }
    let a =
        shrink_graph::fact::normalize_axis(axis, shape.len()).map_err(|e| EvalError::op(e.to_string()))?;
    let outer: usize = shape[..a].iter().product();
    let (n, inner): (usize, usize) = if flatten {
        (shape[a..].iter().product(), 1)
    } else {
        (shape.get(a).copied().unwrap_or(1), shape[a + 1..].iter().product())
    };
    let mut out = vec![0f32; x.len()];
    let mut max = vec![0f32; inner];
    let mut sum = vec![0f32; inner];
    let block = n * inner;
    if block == 0 {
        return Ok(vec![Tensor::f32(shape.clone(), out)]);
    }
    for (xb, ob) in x.chunks_exact(block).zip(out.chunks_exact_mut(block)).take(outer) {
        // Row by row along the axis: each row holds `inner` independent lanes.
        max.copy_from_slice(&xb[..inner]);
        for row in xb.chunks_exact(inner).skip(1) {
            for (m, &v) in max.iter_mut().zip(row) {
                *m = m.max(v);
            }
        }
        sum.fill(0.0);
        for (row, orow) in xb.chunks_exact(inner).zip(ob.chunks_exact_mut(inner)) {
            for ((o, &v), (s, &m)) in orow.iter_mut().zip(row).zip(sum.iter_mut().zip(&max)) {
                *o = (v - m).exp();
                *s += *o;
            }
        }
        if log {
            for s in sum.iter_mut() {
                *s = s.ln();
            }
            for (row, orow) in xb.chunks_exact(inner).zip(ob.chunks_exact_mut(inner)) {
                for ((o, &v), (&s, &m)) in orow.iter_mut().zip(row).zip(sum.iter().zip(&max)) {
                    *o = v - m - s;
                }
            }
        } else {
            for orow in ob.chunks_exact_mut(inner) {
                for (o, &s) in orow.iter_mut().zip(&sum) {
                    *o /= s;
                }
            }
        }
    }
    Ok(vec![Tensor::f32(shape.clone(), out)])
}

impl Eval for Softmax {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        softmax(ins, self.axis, self.flatten, false)
    }
}

impl Eval for LogSoftmax {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        softmax(ins, self.axis, self.flatten, true)
    }
}

impl Eval for Unary {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let [x] = ins else { return Err(EvalError::op(format!("expects 1 input, got {}", ins.len()))) };
        if self.kind == UnaryKind::Not {
            let v = x.as_bool().ok_or_else(|| EvalError::op("Not needs bool values"))?;
            return Ok(vec![Tensor::bool(x.shape.clone(), v.iter().map(|b| !b).collect())]);
        }
        let f: fn(f32) -> f32 = match self.kind {
            UnaryKind::Relu => |v| v.max(0.0),
            UnaryKind::Sigmoid => |v| 1.0 / (1.0 + (-v).exp()),
            UnaryKind::Tanh => f32::tanh,
            UnaryKind::Erf => erf,
            UnaryKind::Exp => f32::exp,
            UnaryKind::Log => f32::ln,
            UnaryKind::Sqrt => f32::sqrt,
            UnaryKind::Neg => |v| -v,
            UnaryKind::Abs => f32::abs,
            UnaryKind::Reciprocal => |v| 1.0 / v,
            UnaryKind::Floor => f32::floor,
            UnaryKind::Ceil => f32::ceil,
            UnaryKind::Round => f32::round_ties_even,
            UnaryKind::HardSwish => |v| v * (v + 3.0).clamp(0.0, 6.0) / 6.0,
            UnaryKind::Silu => |v| v / (1.0 + (-v).exp()),
            UnaryKind::Softplus => |v| if v > 20.0 { v } else { v.exp().ln_1p() },
            UnaryKind::Sin => f32::sin,
            UnaryKind::Cos => f32::cos,
            UnaryKind::Not => unreachable!("handled above"),
        };
        match x.dtype() {
            shrink_graph::DType::F32 => {
                let v = x.as_f32().expect("f32");
                Ok(vec![Tensor::f32(x.shape.clone(), v.iter().map(|&a| f(a)).collect())])
            }
            shrink_graph::DType::I64 => {
                let v = x.as_i64().expect("i64");
                let g: fn(i64) -> i64 = match self.kind {
                    UnaryKind::Neg => |a| -a,
                    UnaryKind::Abs => i64::abs,
                    UnaryKind::Relu => |a| a.max(0),
                    _ => return Err(EvalError::op(format!("{:?} is not defined on i64 values", self.kind))),
                };
                Ok(vec![Tensor::i64(x.shape.clone(), v.iter().map(|&a| g(a)).collect())])
            }
            d => Err(EvalError::op(format!("{:?} is not defined on {d:?} values", self.kind))),
        }
    }
}

/// The error function, computed in f64 (Abramowitz–Stegun 7.1.26 is too coarse for 1e-6).
pub fn erf(x: f32) -> f32 {
    erf_f64(x as f64) as f32
}

/// The error function in f64 by its Maclaurin series (|x| < 3) or continued fraction.
fn erf_f64(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 3.0 {
        // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        let mut term = a;
        let mut sum = a;
        let x2 = a * a;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else {
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
        let mut f = a;
        for k in (1..60).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * f)
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run1(op: &dyn Eval, x: Tensor) -> Vec<f32> {
        op.eval(&[&x], &EvalCtx::default()).unwrap()[0].as_f32().unwrap().to_vec()
    }

    #[test]
    fn softmax_normalizes_the_axis_and_the_flattened_tail() {
        let x = Tensor::f32(vec![2, 3, 2], (0..12).map(|v| v as f32 * 0.3 - 1.0).collect());
        let y = run1(&Softmax { axis: 1, flatten: false }, x.clone());
        for o in 0..2 {
            for i in 0..2 {
                let s: f32 = (0..3).map(|j| y[o * 6 + j * 2 + i]).sum();
                assert!((s - 1.0).abs() < 1e-6);
            }
        }
        let y = run1(&Softmax { axis: 1, flatten: true }, x.clone());
        let s: f32 = y[..6].iter().sum();
        assert!((s - 1.0).abs() < 1e-6);
        assert!((y[1] / y[0] - 0.3f32.exp()).abs() < 1e-5);
        let l = run1(&LogSoftmax { axis: -1, flatten: false }, x.clone());
        let p = run1(&Softmax { axis: -1, flatten: false }, x);
        for (a, b) in l.iter().zip(&p) {
            assert!((a - b.ln()).abs() < 1e-6);
        }
        let e = Softmax { axis: 3, flatten: false }
            .eval(&[&Tensor::f32(vec![2], vec![0.0; 2])], &EvalCtx::default());
        assert!(e.is_err());
    }

    #[test]
    fn pointwise_activations() {
        let x = Tensor::f32(vec![4], vec![-2.0, -0.5, 0.0, 3.0]);
        assert_eq!(run1(&LeakyRelu { alpha: 0.1 }, x.clone()), vec![-0.2, -0.05, 0.0, 3.0]);
        let h = run1(&HardSigmoid { alpha: 0.2, beta: 0.5 }, x.clone());
        assert!(h.iter().zip([0.1, 0.4, 0.5, 1.0]).all(|(a, b)| (a - b).abs() < 1e-7), "{h:?}");
        assert_eq!(run1(&Clip { min: Some(-1.0), max: None }, x.clone()), vec![-1.0, -0.5, 0.0, 3.0]);
        let e = run1(&Elu { alpha: 1.0 }, x.clone());
        assert!((e[0] - ((-2f32).exp() - 1.0)).abs() < 1e-7 && e[3] == 3.0);
        let g = run1(&Gelu { tanh: false }, x.clone());
        assert!((g[1] - -0.154_268_5).abs() < 1e-6, "{g:?}");
        let t = run1(&Gelu { tanh: true }, x);
        assert!((t[1] - -0.154_286).abs() < 1e-5, "{t:?}");
        let c = Clip { min: Some(0.0), max: Some(6.0) }
            .eval(&[&Tensor::i64(vec![3], vec![-3, 4, 9])], &EvalCtx::default());
        assert_eq!(c.unwrap()[0].as_i64().unwrap(), &[0, 4, 6]);
        let r = Unary { kind: UnaryKind::Round }
            .eval(&[&Tensor::f32(vec![3], vec![0.5, 1.5, -2.5])], &EvalCtx::default());
        assert_eq!(r.unwrap()[0].as_f32().unwrap(), &[0.0, 2.0, -2.0]);
    }

    #[test]
    fn erf_matches_known_values() {
        // Reference values from scipy.special.erf.
        for (x, e) in [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
            (-1.5, -0.966_105_2),
            (3.5, 0.999_999_3),
        ] {
            assert!((erf(x) - e).abs() < 1e-6, "erf({x}) = {} want {e}", erf(x));
        }
    }
}
