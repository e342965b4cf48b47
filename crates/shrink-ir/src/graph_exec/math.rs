//! Candle lowering of the `math` op family: element-wise activations, Softmax/LogSoftmax,
//! broadcast binary ops, Where, Cast and reductions.
//!
//! f32 paths are candle ops with autograd, so gradients reach every f32 input (broadcast
//! operands get the gradient summed over their broadcast axes). Integer and bool values carry
//! no gradient: they use candle where its result is exact, and otherwise (integer division,
//! modulo and power, integer reductions) the runtime's reference evaluation on the host, so they
//! equal `shrink_runtime` bit for bit. candle's unary kernels are not defined on integers (they
//! panic), so no unary candle op is ever called on an i64 or u8 tensor here.

use super::{from_candle, to_candle, Lower, LowerCtx};
use crate::error::{IrError, Result};
use candle_core::{DType as CDType, Shape, Tensor};
use shrink_graph::ops::activation::{
    Clip, Elu, Gelu, HardSigmoid, LeakyRelu, LogSoftmax, Softmax, Unary, UnaryKind,
};
use shrink_graph::ops::binary::{Binary, BinaryKind, Cast, Where};
use shrink_graph::ops::reduce::{Reduce, ReduceKind};
use shrink_graph::DType;
use shrink_runtime::eval::{Eval, EvalCtx};

fn invalid(msg: impl Into<String>) -> IrError {
    IrError::Invalid(msg.into())
}

/// The `N` inputs of `op`, or an error saying how many came.
fn inputs<'a, const N: usize>(ins: &[&'a Tensor], op: &str) -> Result<[&'a Tensor; N]> {
    <[&Tensor; N]>::try_from(ins)
        .map_err(|_| invalid(format!("{op} expects {N} input(s), got {}", ins.len())))
}

/// The IR element type of a candle tensor (bool values are u8).
fn ir_dtype(t: &Tensor) -> Result<DType> {
    match t.dtype() {
        CDType::F32 => Ok(DType::F32),
        CDType::I64 => Ok(DType::I64),
        CDType::U8 => Ok(DType::Bool),
        d => Err(invalid(format!("unsupported element type {d:?}"))),
    }
}

/// An error unless `x` holds f32 values.
fn need_f32(x: &Tensor, op: &str) -> Result<()> {
    match ir_dtype(x)? {
        DType::F32 => Ok(()),
        d => Err(invalid(format!("{op} needs f32 values, got {d:?}"))),
    }
}

/// `op` evaluated by the runtime's reference on the host, the outputs back on `ctx.device`.
/// Only for integer and bool values, which carry no gradient.
fn on_host(op: &dyn Eval, ins: &[&Tensor], ctx: &LowerCtx) -> Result<Vec<Tensor>> {
    let host = ins.iter().map(|t| from_candle(t, ir_dtype(t)?)).collect::<Result<Vec<_>>>()?;
    let refs: Vec<&shrink_graph::Tensor> = host.iter().collect();
    let outs = op.eval(&refs, &EvalCtx::default()).map_err(|e| invalid(e.to_string()))?;
    outs.iter().map(|t| to_candle(t, ctx.device)).collect()
}

/// The NumPy broadcast of the shapes of `ts`.
fn broadcast_shape(ts: &[&Tensor], op: &'static str) -> Result<Shape> {
    let mut s = ts[0].shape().clone();
    for t in &ts[1..] {
        s = s.broadcast_shape_binary_op(t.shape(), op)?;
    }
    Ok(s)
}

/// `t` broadcast to `shape` (a view; the backward sums over the broadcast axes).
fn expand_to(t: &Tensor, shape: &Shape) -> Result<Tensor> {
    Ok(if t.shape() == shape { t.clone() } else { t.broadcast_as(shape)? })
}

// ---------------------------------------------------------------------------------------------
// Element-wise activations
// ---------------------------------------------------------------------------------------------

/// `1 / (1 + exp(-x))` without overflow: from `e = exp(-|x|)` in (0, 1], `1 / (1 + e)` for
/// x ≥ 0 and `e / (1 + e)` below (no infinite intermediate, so no NaN in the backward).
fn sigmoid(x: &Tensor) -> Result<Tensor> {
    let e = x.abs()?.neg()?.exp()?;
    let r = (&e + 1.0)?.recip()?;
    let below = (&e * &r)?;
    Ok(x.ge(0f32)?.where_cond(&r, &below)?)
}

/// `ln(1 + exp(x))` as `max(x, 0) + ln(1 + exp(-|x|))` (stable for large |x|).
fn softplus(x: &Tensor) -> Result<Tensor> {
    let tail = x.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    Ok((x.relu()? + tail)?)
}

/// Round half to even (ONNX/torch `Round`; candle's `round` goes half away from zero). Ties are
/// exact: `x - round(x)` has no rounding error when |x - round(x)| ≤ 1/2. No gradient (zero,
/// as torch).
pub(crate) fn round_half_even(x: &Tensor) -> Result<Tensor> {
    let x = x.detach();
    let r = x.round()?;
    let even = x.affine(0.5, 0.0)?.round()?.affine(2.0, 0.0)?;
    let tie = (&x - &r)?.abs()?.eq(0.5f32)?;
    Ok(tie.where_cond(&even, &r)?)
}

/// `x · clamp(x + 3, 0, 6) / 6`.
fn hard_swish(x: &Tensor) -> Result<Tensor> {
    let gate = x.affine(1.0, 3.0)?.clamp(0f32, 6f32)?;
    Ok((x * gate)?.affine(1.0 / 6.0, 0.0)?)
}

fn unary_f32(kind: UnaryKind, x: &Tensor) -> Result<Tensor> {
    use UnaryKind as K;
    Ok(match kind {
        K::Relu => crate::ops::relu(x)?,
        K::Sigmoid => sigmoid(x)?,
        K::Tanh => x.tanh()?,
        K::Erf => x.erf()?,
        K::Exp => x.exp()?,
        K::Log => x.log()?,
        K::Sqrt => x.sqrt()?,
        K::Neg => x.neg()?,
        K::Abs => x.abs()?,
        K::Reciprocal => x.recip()?,
        K::Floor => x.floor()?,
        K::Ceil => x.ceil()?,
        K::Round => round_half_even(x)?,
        K::HardSwish => hard_swish(x)?,
        K::Silu => x.silu()?,
        K::Softplus => softplus(x)?,
        K::Sin => x.sin()?,
        K::Cos => x.cos()?,
        K::Not => return Err(invalid("Not needs bool values, got F32")),
    })
}

/// The i64 kinds, by binary ops (candle has no integer unary kernels).
fn unary_i64(kind: UnaryKind, x: &Tensor) -> Result<Tensor> {
    let zero = x.zeros_like()?;
    Ok(match kind {
        UnaryKind::Neg => zero.sub(x)?,
        UnaryKind::Abs => x.maximum(&zero.sub(x)?)?,
        UnaryKind::Relu => x.maximum(&zero)?,
        k => return Err(invalid(format!("{k:?} is not defined on I64 values"))),
    })
}

impl Lower for Unary {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let [x] = inputs::<1>(ins, "Unary")?;
        let y = match (ir_dtype(x)?, self.kind) {
            (DType::F32, k) => unary_f32(k, x)?,
            (DType::I64, k) => unary_i64(k, x)?,
            (DType::Bool, UnaryKind::Not) => x.eq(0u8)?,
            (d, k) => return Err(invalid(format!("{k:?} is not defined on {d:?} values"))),
        };
        Ok(vec![y])
    }
}

impl Lower for LeakyRelu {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let [x] = inputs::<1>(ins, "LeakyRelu")?;
        need_f32(x, "LeakyRelu")?;
        // Slope alpha at 0, as torch's backward.
        let y = x.gt(0f32)?.where_cond(x, &x.affine(self.alpha as f64, 0.0)?)?;
        Ok(vec![y])
    }
}

impl Lower for HardSigmoid {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let [x] = inputs::<1>(ins, "HardSigmoid")?;
        need_f32(x, "HardSigmoid")?;
        Ok(vec![x.affine(self.alpha as f64, self.beta as f64)?.clamp(0f32, 1f32)?])
    }
}

impl Lower for Elu {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let [x] = inputs::<1>(ins, "Elu")?;
        need_f32(x, "Elu")?;
        Ok(vec![x.elu(self.alpha as f64)?])
    }
}

impl Lower for Gelu {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let [x] = inputs::<1>(ins, "Gelu")?;
        need_f32(x, "Gelu")?;
        Ok(vec![if self.tanh { x.gelu()? } else { x.gelu_erf()? }])
    }
}

impl Lower for Clip {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let [x] = inputs::<1>(ins, "Clip")?;
        // min(max(x, lo), hi) as ONNX: `hi` wins when lo > hi, NaN stays NaN.
        let mut y = x.clone();
        match ir_dtype(x)? {
            DType::F32 => {
                if let Some(lo) = self.min {
                    y = y.maximum(lo)?;
                }
                if let Some(hi) = self.max {
                    y = y.minimum(hi)?;
                }
            }
            DType::I64 => {
                // Integer bounds as the runtime: the smallest integer ≥ min, the largest ≤ max.
                if let Some(lo) = self.min {
                    y = y.maximum(lo.ceil() as i64)?;
                }
                if let Some(hi) = self.max {
                    y = y.minimum(hi.floor() as i64)?;
                }
            }
            d => return Err(invalid(format!("Clip is not defined on {d:?} values"))),
        }
        Ok(vec![y])
    }
}

// ---------------------------------------------------------------------------------------------
// Softmax and LogSoftmax
// ---------------------------------------------------------------------------------------------

/// Softmax (or log-softmax) of `x` along `axis`, with the maximum subtracted first (detached:
/// the result does not depend on it).
fn softmax_along(x: &Tensor, axis: usize, log: bool) -> Result<Tensor> {
    let m = x.max_keepdim(axis)?.detach();
    let z = x.broadcast_sub(&m)?;
    let e = z.exp()?;
    let s = e.sum_keepdim(axis)?;
    Ok(if log { z.broadcast_sub(&s.log()?)? } else { e.broadcast_div(&s)? })
}

/// Softmax over `axis`, or with `flatten` over every axis from `axis` on (ONNX opset < 13).
fn softmax(x: &Tensor, axis: i64, flatten: bool, log: bool, op: &str) -> Result<Tensor> {
    need_f32(x, op)?;
    if x.rank() == 0 {
        return Err(invalid(format!("{op} needs an input of rank 1 or more, got a scalar")));
    }
    let a =
        shrink_graph::fact::normalize_axis(axis, x.rank()).map_err(|e| invalid(format!("{op} axis: {e}")))?;
    if x.elem_count() == 0 {
        return Ok(x.clone());
    }
    if flatten && a + 1 < x.rank() {
        let dims = x.dims().to_vec();
        let outer: usize = dims[..a].iter().product();
        let inner: usize = dims[a..].iter().product();
        return Ok(softmax_along(&x.reshape((outer, inner))?, 1, log)?.reshape(dims)?);
    }
    softmax_along(x, a, log)
}

impl Lower for Softmax {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let [x] = inputs::<1>(ins, "Softmax")?;
        Ok(vec![softmax(x, self.axis, self.flatten, false, "Softmax")?])
    }
}

impl Lower for LogSoftmax {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let [x] = inputs::<1>(ins, "LogSoftmax")?;
        Ok(vec![softmax(x, self.axis, self.flatten, true, "LogSoftmax")?])
    }
}

// ---------------------------------------------------------------------------------------------
// Binary ops, Where, Cast
// ---------------------------------------------------------------------------------------------

/// `x^e` for one exponent: products for squares and cubes (as the runtime and onnxruntime),
/// candle's `powf` otherwise (defined for negative bases with integer exponents).
fn powf_scalar(x: &Tensor, e: f32) -> Result<Tensor> {
    Ok(if e == 0.0 {
        x.ones_like()?.detach()
    } else if e == 1.0 {
        x.clone()
    } else if e == 2.0 {
        x.sqr()?
    } else if e == 3.0 {
        (x.sqr()? * x)?
    } else {
        x.powf(e as f64)?
    })
}

/// `a^b` with NumPy broadcasting; gradients to both inputs.
fn pow_f32(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let shape = broadcast_shape(&[a, b], "Pow")?;
    let x = expand_to(a, &shape)?;
    if b.elem_count() == 1 {
        let e = b.flatten_all()?.to_vec1::<f32>()?[0];
        let y = powf_scalar(&x, e)?;
        // A rank-0 constant is never trained (GraphModel trains constants of rank ≥ 1), so
        // only a tracked exponent of rank ≥ 1 adds its gradient, through a term that is exactly
        // zero in the forward: (b − b̄) · x^e · ln x (0 where ln x is undefined).
        if b.rank() == 0 || !b.track_op() {
            return Ok(y);
        }
        let xd = x.detach();
        let g = (y.detach() * xd.clamp(f32::MIN_POSITIVE, f32::MAX)?.log()?)?;
        let g = xd.gt(0f32)?.where_cond(&g, &g.zeros_like()?)?;
        let db = (b - b.detach())?.broadcast_as(&shape)?;
        return Ok((y + (db * g)?)?);
    }
    pow_general(&x, &expand_to(b, &shape)?)
}

/// `x^y` element-wise for tensors of one shape, as `exp(y · ln|x|)` with the sign of odd
/// integer exponents on negative bases, NaN for other exponents on negative bases, and
/// `0^y` = 0, 1 or inf for y > 0, = 0, < 0 (the gradient at x = 0 is 0).
fn pow_general(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let zero = x.eq(0f32)?;
    let ones = x.ones_like()?.detach();
    let zeros = x.zeros_like()?.detach();
    let safe = zero.where_cond(&ones, &x.abs()?)?;
    let mag = (y * safe.log()?)?.exp()?;
    let yd = y.detach();
    let is_int = yd.eq(&yd.floor()?)?;
    let odd = (&yd - yd.affine(0.5, 0.0)?.floor()?.affine(2.0, 0.0)?)?.eq(1f32)?;
    let nan = Tensor::full(f32::NAN, x.shape(), x.device())?;
    let negative = is_int.where_cond(&odd.where_cond(&mag.neg()?, &mag)?, &nan)?;
    let inf = Tensor::full(f32::INFINITY, x.shape(), x.device())?;
    let at_zero = yd.gt(0f32)?.where_cond(&zeros, &yd.eq(0f32)?.where_cond(&ones, &inf)?)?;
    let y = x.lt(0f32)?.where_cond(&negative, &mag)?;
    Ok(zero.where_cond(&at_zero, &y)?)
}

/// `a − trunc(a / b) · b` (C `fmod`); gradients 1 and −trunc(a / b).
fn fmod_f32(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let q = a.broadcast_div(b)?.detach();
    let t = q.lt(0f32)?.where_cond(&q.ceil()?, &q.floor()?)?;
    Ok(a.broadcast_sub(&t.broadcast_mul(b)?)?)
}

fn binary_f32(kind: BinaryKind, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    use BinaryKind as K;
    Ok(match kind {
        K::Add => a.broadcast_add(b)?,
        K::Sub => a.broadcast_sub(b)?,
        K::Mul => a.broadcast_mul(b)?,
        K::Div => a.broadcast_div(b)?,
        K::Pow => pow_f32(a, b)?,
        K::Fmod => fmod_f32(a, b)?,
        // candle keeps `a` when `b` is NaN (onnxruntime gives NaN); ties split the gradient
        // in halves, as torch.maximum.
        K::Max => a.broadcast_maximum(b)?,
        K::Min => a.broadcast_minimum(b)?,
        K::Equal => a.broadcast_eq(b)?,
        K::Less => a.broadcast_lt(b)?,
        K::Greater => a.broadcast_gt(b)?,
        K::LessOrEqual => a.broadcast_le(b)?,
        K::GreaterOrEqual => a.broadcast_ge(b)?,
        K::Mod | K::And | K::Or => return Err(invalid(format!("{kind:?} is not defined on F32 values"))),
    })
}

/// i64 ops candle computes exactly (wrapping as the runtime); `None` for the others.
fn binary_i64(kind: BinaryKind, a: &Tensor, b: &Tensor) -> Result<Option<Tensor>> {
    use BinaryKind as K;
    Ok(Some(match kind {
        K::Add => a.broadcast_add(b)?,
        K::Sub => a.broadcast_sub(b)?,
        K::Mul => a.broadcast_mul(b)?,
        K::Max => a.broadcast_maximum(b)?,
        K::Min => a.broadcast_minimum(b)?,
        K::Equal => a.broadcast_eq(b)?,
        K::Less => a.broadcast_lt(b)?,
        K::Greater => a.broadcast_gt(b)?,
        K::LessOrEqual => a.broadcast_le(b)?,
        K::GreaterOrEqual => a.broadcast_ge(b)?,
        _ => return Ok(None),
    }))
}

fn binary_bool(kind: BinaryKind, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(match kind {
        BinaryKind::And => a.broadcast_mul(b)?,
        BinaryKind::Or => a.broadcast_maximum(b)?,
        BinaryKind::Equal => a.broadcast_eq(b)?,
        k => return Err(invalid(format!("{k:?} is not defined on Bool values"))),
    })
}

impl Lower for Binary {
    fn lower(&self, ins: &[&Tensor], ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let [a, b] = inputs::<2>(ins, "Binary")?;
        let (da, db) = (ir_dtype(a)?, ir_dtype(b)?);
        if da != db {
            return Err(invalid(format!("{:?} needs inputs of one dtype, got {da:?} and {db:?}", self.kind)));
        }
        broadcast_shape(&[a, b], "Binary")?;
        let y = match da {
            DType::F32 => binary_f32(self.kind, a, b)?,
            DType::I64 => match binary_i64(self.kind, a, b)? {
                Some(y) => y,
                // Division, modulo (zero divisors refused), power: the runtime's integer rules.
                None => return on_host(self, ins, ctx),
            },
            DType::Bool => binary_bool(self.kind, a, b)?,
            d => return Err(invalid(format!("{:?} is not defined on {d:?} values", self.kind))),
        };
        Ok(vec![y])
    }
}

impl Lower for Where {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let [c, a, b] = inputs::<3>(ins, "Where")?;
        let dc = ir_dtype(c)?;
        if dc != DType::Bool {
            return Err(invalid(format!("Where: the condition must be Bool, got {dc:?}")));
        }
        let (da, db) = (ir_dtype(a)?, ir_dtype(b)?);
        if da != db {
            return Err(invalid(format!("Where needs both branches of one dtype, got {da:?} and {db:?}")));
        }
        let s = broadcast_shape(&[c, a, b], "Where")?;
        Ok(vec![expand_to(c, &s)?.where_cond(&expand_to(a, &s)?, &expand_to(b, &s)?)?])
    }
}

impl Lower for Cast {
    fn lower(&self, ins: &[&Tensor], ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let [x] = inputs::<1>(ins, "Cast")?;
        let from = ir_dtype(x)?;
        let y = match self.to {
            _ if from == self.to => x.clone(),
            DType::Bool => x.ne(&x.zeros_like()?)?,
            // Float to integer truncates toward zero (NaN gives 0, out of range saturates).
            DType::I64 => x.to_dtype(CDType::I64)?,
            DType::F32 => x.to_dtype(CDType::F32)?,
            // Narrow integers are i64 tensors in candle: the runtime's conversion, kept in i64.
            DType::I8 | DType::U8 | DType::I32 => return on_host(self, ins, ctx),
        };
        Ok(vec![y])
    }
}

// ---------------------------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------------------------

/// Product over `axis` kept as size 1, by halving (log₂ n products, each differentiable).
fn prod_keepdim(t: &Tensor, axis: usize) -> Result<Tensor> {
    let mut t = t.clone();
    loop {
        let n = t.dim(axis)?;
        if n <= 1 {
            return Ok(t);
        }
        let half = n / 2;
        let mut p = (t.narrow(axis, 0, half)? * t.narrow(axis, half, half)?)?;
        if n % 2 == 1 {
            p = Tensor::cat(&[&p, &t.narrow(axis, n - 1, 1)?], axis)?;
        }
        t = p;
    }
}

impl Lower for Reduce {
    fn lower(&self, ins: &[&Tensor], ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let [x] = inputs::<1>(ins, "Reduce")?;
        match ir_dtype(x)? {
            DType::F32 => {}
            // Wrapping sums and products, truncating mean: the runtime's integer rules.
            DType::I64 => return on_host(self, ins, ctx),
            d => return Err(invalid(format!("{:?} is not defined on {d:?} values", self.kind))),
        }
        let axes =
            self.resolved_axes(x.rank()).map_err(|e| invalid(format!("Reduce{:?}: {e}", self.kind)))?;
        if axes.is_empty() {
            return Ok(vec![x.clone()]);
        }
        if x.elem_count() == 0 {
            // Empty reductions (0, NaN, ±inf, 1) as the runtime; nothing to differentiate.
            return on_host(self, ins, ctx);
        }
        let kept = match self.kind {
            ReduceKind::Sum => x.sum_keepdim(axes.clone())?,
            ReduceKind::Mean => x.mean_keepdim(axes.clone())?,
            ReduceKind::Max => axes.iter().try_fold(x.clone(), |t, &a| t.max_keepdim(a))?,
            ReduceKind::Min => axes.iter().try_fold(x.clone(), |t, &a| t.min_keepdim(a))?,
            ReduceKind::Prod => axes.iter().try_fold(x.clone(), |t, &a| prod_keepdim(&t, a))?,
        };
        if self.keepdims {
            return Ok(vec![kept]);
        }
        let out: Vec<usize> =
            x.dims().iter().enumerate().filter(|(k, _)| !axes.contains(k)).map(|(_, &d)| d).collect();
        Ok(vec![kept.reshape(out)?])
    }
}
