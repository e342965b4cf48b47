//! Evaluation of activations, Softmax and LogSoftmax.

use super::{Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::activation::*;
use shrink_graph::Tensor;

impl Eval for LeakyRelu {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for HardSigmoid {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for Elu {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for Gelu {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for Clip {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for Softmax {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for LogSoftmax {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for Unary {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let x = ins[0];
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
            shrink_graph::DType::Bool => {
                Err(EvalError::op(format!("{:?} is not defined on bool values", self.kind)))
            }
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

    #[test]
    fn erf_matches_known_values() {
        // Reference values from scipy.special.erf.
        for (x, e) in [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
            (-1.5, -0.966_105_2),
            (3.5, 0.999_999_26),
        ] {
            assert!((erf(x) - e).abs() < 1e-6, "erf({x}) = {} want {e}", erf(x));
        }
    }
}
