//! Evaluation of binary element-wise ops, Where and Cast, over one strided broadcast iterator.

use super::{Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::binary::*;
use shrink_graph::{DType, Tensor, TensorData};

/// NumPy broadcasting of `N` inputs to one output, with adjacent axes merged where every input
/// is contiguous across them. Work is done row by row: a row is the innermost merged axis, on
/// which each input's stride is 1 (it varies) or 0 (it is broadcast). Equal shapes collapse to
/// one row; a scalar or per-channel operand gives long rows with a constant on one side.
pub struct Broadcast<const N: usize> {
    /// The output shape (unmerged).
    pub out_shape: Vec<usize>,
    dims: Vec<usize>,
    strides: Vec<[usize; N]>,
}

impl<const N: usize> Broadcast<N> {
    /// Broadcast `shapes`, or an error naming them when they do not fit.
    pub fn new(shapes: [&[usize]; N]) -> Result<Self, EvalError> {
        let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut out_shape = vec![1usize; rank];
        for s in &shapes {
            for (k, &d) in s.iter().enumerate() {
                let o = &mut out_shape[rank - s.len() + k];
                if *o == 1 {
                    *o = d;
                } else if d != 1 && d != *o {
                    return Err(EvalError::op(format!("shapes {shapes:?} cannot be broadcast")));
                }
            }
        }
        // Per-input strides on the output axes (0 where broadcast or absent).
        let mut full: Vec<[usize; N]> = vec![[0; N]; rank];
        for (i, s) in shapes.iter().enumerate() {
            let mut stride = 1;
            for k in (0..s.len()).rev() {
                if s[k] != 1 {
                    full[rank - s.len() + k][i] = stride;
                }
                stride *= s[k];
            }
        }
        // Merge axis k into k+1 when every input is contiguous across them; drop size-1 axes.
        let mut dims: Vec<usize> = Vec::with_capacity(rank);
        let mut strides: Vec<[usize; N]> = Vec::with_capacity(rank);
        for k in 0..rank {
            let (d, st) = (out_shape[k], full[k]);
            if d == 1 {
                continue;
            }
            if let (Some(pd), Some(ps)) = (dims.last_mut(), strides.last_mut()) {
                if (0..N).all(|i| ps[i] == st[i] * d) {
                    *pd *= d;
                    *ps = st;
                    continue;
                }
            }
            dims.push(d);
            strides.push(st);
        }
        if dims.is_empty() {
            dims.push(1);
            strides.push([0; N]);
        }
        Ok(Broadcast { out_shape, dims, strides })
    }

    /// Number of output elements.
    pub fn len(&self) -> usize {
        self.out_shape.iter().product()
    }

    /// True when the output has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Call `f(offsets, len, strides)` for each output row in order: the offsets of the row's
    /// first element in each input, the row length and each input's stride along it (0 or 1).
    pub fn for_each_row(&self, mut f: impl FnMut([usize; N], usize, [usize; N])) {
        if self.is_empty() {
            return;
        }
        let last = self.dims.len() - 1;
        let (len, inner) = (self.dims[last], self.strides[last]);
        let outer = &self.dims[..last];
        let mut idx = vec![0usize; outer.len()];
        let mut off = [0usize; N];
        loop {
            f(off, len, inner);
            // Odometer over the outer axes, updating the offsets incrementally.
            let mut k = outer.len();
            loop {
                if k == 0 {
                    return;
                }
                k -= 1;
                idx[k] += 1;
                for (o, s) in off.iter_mut().zip(self.strides[k]) {
                    *o += s;
                }
                if idx[k] < outer[k] {
                    break;
                }
                for (o, s) in off.iter_mut().zip(self.strides[k]) {
                    *o -= s * outer[k];
                }
                idx[k] = 0;
            }
        }
    }
}

/// `f(a, b)` element-wise with broadcasting; returns the output shape and data.
pub fn zip2<A: Copy, B: Copy, O>(
    a: &[A],
    a_shape: &[usize],
    b: &[B],
    b_shape: &[usize],
    f: impl Fn(A, B) -> O,
) -> Result<(Vec<usize>, Vec<O>), EvalError> {
    let bc = Broadcast::new([a_shape, b_shape])?;
    let mut out = Vec::with_capacity(bc.len());
    bc.for_each_row(|[oa, ob], len, st| match st {
        [1, 1] => out.extend(a[oa..oa + len].iter().zip(&b[ob..ob + len]).map(|(&x, &y)| f(x, y))),
        [1, 0] => {
            let y = b[ob];
            out.extend(a[oa..oa + len].iter().map(|&x| f(x, y)));
        }
        [0, 1] => {
            let x = a[oa];
            out.extend(b[ob..ob + len].iter().map(|&y| f(x, y)));
        }
        [sa, sb] => out.extend((0..len).map(|i| f(a[oa + i * sa], b[ob + i * sb]))),
    });
    Ok((bc.out_shape, out))
}

/// `cond ? a : b` element-wise with broadcasting.
fn select<T: Copy>(
    c: &Tensor,
    cond: &[bool],
    a: &Tensor,
    av: &[T],
    b: &Tensor,
    bv: &[T],
) -> Result<(Vec<usize>, Vec<T>), EvalError> {
    let bc = Broadcast::new([&c.shape[..], &a.shape[..], &b.shape[..]])?;
    let mut out = Vec::with_capacity(bc.len());
    bc.for_each_row(|[oc, oa, ob], len, st| match st {
        [1, 1, 1] => {
            out.extend(
                cond[oc..oc + len]
                    .iter()
                    .zip(&av[oa..oa + len])
                    .zip(&bv[ob..ob + len])
                    .map(|((&c, &x), &y)| if c { x } else { y }),
            )
        }
        [sc, sa, sb] => {
            out.extend((0..len).map(|i| if cond[oc + i * sc] { av[oa + i * sa] } else { bv[ob + i * sb] }))
        }
    });
    Ok((bc.out_shape, out))
}

fn arith_f32(kind: BinaryKind) -> Option<fn(f32, f32) -> f32> {
    Some(match kind {
        BinaryKind::Add => |x, y| x + y,
        BinaryKind::Sub => |x, y| x - y,
        BinaryKind::Mul => |x, y| x * y,
        BinaryKind::Div => |x, y| x / y,
        BinaryKind::Fmod => |x, y| x % y,
        BinaryKind::Pow => pow_f32,
        // NaN propagates, as onnxruntime's Max/Min.
        BinaryKind::Max => |x, y| if x.is_nan() || y.is_nan() { f32::NAN } else { x.max(y) },
        BinaryKind::Min => |x, y| if x.is_nan() || y.is_nan() { f32::NAN } else { x.min(y) },
        _ => return None,
    })
}

/// `x^y`; squares and cubes by products, as onnxruntime does for those exponents.
fn pow_f32(x: f32, y: f32) -> f32 {
    if y == 2.0 {
        x * x
    } else if y == 3.0 {
        x * x * x
    } else {
        x.powf(y)
    }
}

fn compare<T: PartialOrd + PartialEq>(kind: BinaryKind) -> Option<fn(T, T) -> bool> {
    Some(match kind {
        BinaryKind::Equal => |x, y| x == y,
        BinaryKind::Less => |x, y| x < y,
        BinaryKind::Greater => |x, y| x > y,
        BinaryKind::LessOrEqual => |x, y| x <= y,
        BinaryKind::GreaterOrEqual => |x, y| x >= y,
        _ => return None,
    })
}

/// Integer power with wrapping; a negative exponent truncates `1 / x^-y` toward zero.
fn pow_i64(x: i64, y: i64) -> i64 {
    if y < 0 {
        return match x {
            1 => 1,
            -1 if y % 2 == 0 => 1,
            -1 => -1,
            _ => 0,
        };
    }
    x.wrapping_pow(y.min(u32::MAX as i64) as u32)
}

fn binary_i64(kind: BinaryKind, a: &Tensor, av: &[i64], b: &Tensor, bv: &[i64]) -> Result<Tensor, EvalError> {
    if let Some(cmp) = compare::<i64>(kind) {
        let (shape, v) = zip2(av, &a.shape, bv, &b.shape, cmp)?;
        return Ok(Tensor::bool(shape, v));
    }
    let f: fn(i64, i64) -> i64 = match kind {
        BinaryKind::Add => i64::wrapping_add,
        BinaryKind::Sub => i64::wrapping_sub,
        BinaryKind::Mul => i64::wrapping_mul,
        BinaryKind::Pow => pow_i64,
        BinaryKind::Max => i64::max,
        BinaryKind::Min => i64::min,
        BinaryKind::Mod | BinaryKind::Fmod if bv.contains(&0) => {
            return Err(EvalError::op("integer modulo by zero"));
        }
        BinaryKind::Mod => |x: i64, y: i64| {
            let r = x.wrapping_rem(y);
            if r != 0 && ((r < 0) != (y < 0)) {
                r + y
            } else {
                r
            }
        },
        BinaryKind::Fmod => i64::wrapping_rem,
        BinaryKind::Div => {
            if bv.contains(&0) {
                return Err(EvalError::op("integer division by zero"));
            }
            // Truncates toward zero, as ONNX integer Div.
            i64::wrapping_div
        }
        k => return Err(EvalError::op(format!("{k:?} is not defined on I64 values"))),
    };
    let (shape, v) = zip2(av, &a.shape, bv, &b.shape, f)?;
    Ok(Tensor::i64(shape, v))
}

impl Eval for Binary {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let [a, b] = ins else { return Err(EvalError::op(format!("expects 2 inputs, got {}", ins.len()))) };
        let out = match (&a.data, &b.data) {
            (TensorData::F32(av), TensorData::F32(bv)) => {
                if let Some(f) = arith_f32(self.kind) {
                    let (shape, v) = zip2(av, &a.shape, bv, &b.shape, f)?;
                    Tensor::f32(shape, v)
                } else if let Some(cmp) = compare::<f32>(self.kind) {
                    let (shape, v) = zip2(av, &a.shape, bv, &b.shape, cmp)?;
                    Tensor::bool(shape, v)
                } else {
                    return Err(EvalError::op(format!("{:?} is not defined on F32 values", self.kind)));
                }
            }
            (TensorData::I64(av), TensorData::I64(bv)) => binary_i64(self.kind, a, av, b, bv)?,
            (TensorData::Bool(av), TensorData::Bool(bv)) => {
                let f: fn(bool, bool) -> bool = match self.kind {
                    BinaryKind::And => |x, y| x && y,
                    BinaryKind::Or => |x, y| x || y,
                    BinaryKind::Equal => |x, y| x == y,
                    k => return Err(EvalError::op(format!("{k:?} is not defined on Bool values"))),
                };
                let (shape, v) = zip2(av, &a.shape, bv, &b.shape, f)?;
                Tensor::bool(shape, v)
            }
            _ => {
                return Err(EvalError::op(format!(
                    "{:?} needs inputs of one dtype, got {:?} and {:?}",
                    self.kind,
                    a.dtype(),
                    b.dtype()
                )))
            }
        };
        Ok(vec![out])
    }
}

impl Eval for Where {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let [c, a, b] = ins else {
            return Err(EvalError::op(format!("expects 3 inputs, got {}", ins.len())));
        };
        let cond = c
            .as_bool()
            .ok_or_else(|| EvalError::op(format!("the condition must be Bool, got {:?}", c.dtype())))?;
        let out = match (&a.data, &b.data) {
            (TensorData::F32(av), TensorData::F32(bv)) => {
                let (s, v) = select(c, cond, a, av, b, bv)?;
                Tensor::f32(s, v)
            }
            (TensorData::I64(av), TensorData::I64(bv)) => {
                let (s, v) = select(c, cond, a, av, b, bv)?;
                Tensor::i64(s, v)
            }
            (TensorData::Bool(av), TensorData::Bool(bv)) => {
                let (s, v) = select(c, cond, a, av, b, bv)?;
                Tensor::bool(s, v)
            }
            _ => {
                return Err(EvalError::op(format!(
                    "needs both branches of one dtype, got {:?} and {:?}",
                    a.dtype(),
                    b.dtype()
                )))
            }
        };
        Ok(vec![out])
    }
}

/// `x` converted to `to`. Float to integer truncates toward zero (NaN gives 0, out-of-range
/// saturates); integer to narrower integer wraps (two's complement, as C and NumPy).
fn cast(x: &Tensor, to: DType) -> Tensor {
    let shape = x.shape.clone();
    if let TensorData::F32(v) = &x.data {
        return match to {
            DType::F32 => x.clone(),
            DType::I64 => Tensor::i64(shape, v.iter().map(|&a| a as i64).collect()),
            DType::Bool => Tensor::bool(shape, v.iter().map(|&a| a != 0.0).collect()),
            DType::I8 => Tensor::i8(shape, v.iter().map(|&a| a as i8).collect()),
            DType::U8 => Tensor::u8(shape, v.iter().map(|&a| a as u8).collect()),
            DType::I32 => Tensor::i32(shape, v.iter().map(|&a| a as i32).collect()),
        };
    }
    let w = x.to_i64_vec();
    match to {
        DType::F32 => Tensor::f32(shape, w.iter().map(|&a| a as f32).collect()),
        DType::I64 => Tensor::i64(shape, w),
        DType::Bool => Tensor::bool(shape, w.iter().map(|&a| a != 0).collect()),
        DType::I8 => Tensor::i8(shape, w.iter().map(|&a| a as i8).collect()),
        DType::U8 => Tensor::u8(shape, w.iter().map(|&a| a as u8).collect()),
        DType::I32 => Tensor::i32(shape, w.iter().map(|&a| a as i32).collect()),
    }
}

impl Eval for Cast {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let [x] = ins else { return Err(EvalError::op(format!("expects 1 input, got {}", ins.len()))) };
        if x.dtype() == self.to {
            return Ok(vec![(*x).clone()]);
        }
        Ok(vec![cast(x, self.to)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(kind: BinaryKind, a: Tensor, b: Tensor) -> Result<Tensor, EvalError> {
        Binary { kind }.eval(&[&a, &b], &EvalCtx::default()).map(|mut v| v.remove(0))
    }

    /// Reference broadcast by index arithmetic on the full output.
    fn naive(a: &[f32], sa: &[usize], b: &[f32], sb: &[usize]) -> Vec<f32> {
        let rank = sa.len().max(sb.len());
        let pad = |s: &[usize]| {
            let mut v = vec![1; rank - s.len()];
            v.extend_from_slice(s);
            v
        };
        let (pa, pb) = (pad(sa), pad(sb));
        let out: Vec<usize> = pa.iter().zip(&pb).map(|(&x, &y)| if x == 1 { y } else { x }).collect();
        let total: usize = out.iter().product();
        (0..total)
            .map(|mut flat| {
                let (mut ia, mut ib, mut ma, mut mb) = (0, 0, 1, 1);
                for k in (0..rank).rev() {
                    let i = flat % out[k];
                    flat /= out[k];
                    ia += (i % pa[k]) * ma;
                    ib += (i % pb[k]) * mb;
                    ma *= pa[k];
                    mb *= pb[k];
                }
                a[ia] * 10.0 + b[ib]
            })
            .collect()
    }

    #[test]
    fn broadcast_matches_index_arithmetic() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[2, 3, 4, 5], &[3, 1, 1]),
            (&[2, 3, 4, 5], &[]),
            (&[2, 3, 4, 5], &[2, 3, 4, 5]),
            (&[2, 1, 4, 1], &[3, 1, 5]),
            (&[1], &[4, 1]),
            (&[4, 1, 3], &[1, 5, 1]),
            (&[0, 3], &[3]),
        ];
        for (sa, sb) in cases {
            let a: Vec<f32> = (0..sa.iter().product::<usize>()).map(|v| v as f32).collect();
            let b: Vec<f32> = (0..sb.iter().product::<usize>()).map(|v| v as f32 * 0.5).collect();
            let (_, got) = zip2(&a, sa, &b, sb, |x, y| x * 10.0 + y).unwrap();
            assert_eq!(got, naive(&a, sa, &b, sb), "{sa:?} with {sb:?}");
        }
        assert!(zip2(&[0f32; 6], &[2, 3], &[0f32; 8], &[2, 4], |x, y| x + y).is_err());
    }

    #[test]
    fn integer_ops_follow_onnx() {
        let a = Tensor::i64(vec![4], vec![7, -7, 7, -7]);
        let b = Tensor::i64(vec![4], vec![2, 2, -2, -2]);
        assert_eq!(bin(BinaryKind::Div, a.clone(), b.clone()).unwrap().as_i64().unwrap(), &[3, -3, -3, 3]);
        let e = bin(BinaryKind::Div, a.clone(), Tensor::i64(vec![1], vec![0])).unwrap_err();
        assert!(e.to_string().contains("division by zero"), "{e}");
        let p =
            bin(BinaryKind::Pow, Tensor::i64(vec![3], vec![3, 2, -1]), Tensor::i64(vec![3], vec![3, -1, 3]));
        assert_eq!(p.unwrap().as_i64().unwrap(), &[27, 0, -1]);
        let c = bin(BinaryKind::LessOrEqual, a, b).unwrap();
        assert_eq!(c.as_bool().unwrap(), &[false, true, false, true]);
    }

    #[test]
    fn float_logic_where_and_cast() {
        let x = Tensor::f32(vec![2, 2], vec![1.0, -2.0, 3.0, f32::NAN]);
        let m = bin(BinaryKind::Max, x.clone(), Tensor::f32(vec![], vec![0.0])).unwrap();
        let m = m.as_f32().unwrap();
        assert_eq!(&m[..3], &[1.0, 0.0, 3.0]);
        assert!(m[3].is_nan());
        let t = Tensor::bool(vec![2], vec![true, false]);
        let o = bin(BinaryKind::Or, t.clone(), Tensor::bool(vec![2, 1], vec![false, true])).unwrap();
        assert_eq!(o.shape, vec![2, 2]);
        assert_eq!(o.as_bool().unwrap(), &[true, false, true, true]);
        assert!(bin(BinaryKind::Add, t.clone(), t.clone()).is_err());
        assert!(bin(BinaryKind::Add, x.clone(), Tensor::i64(vec![1], vec![1])).is_err());
        let w = Where {}.eval(
            &[&t, &Tensor::f32(vec![2, 1], vec![1.0, 2.0]), &Tensor::f32(vec![], vec![9.0])],
            &EvalCtx::default(),
        );
        assert_eq!(w.unwrap()[0].as_f32().unwrap(), &[1.0, 9.0, 2.0, 9.0]);
        let same = Where {}.eval(
            &[&t, &Tensor::i64(vec![2], vec![1, 2]), &Tensor::i64(vec![2], vec![3, 4])],
            &EvalCtx::default(),
        );
        assert_eq!(same.unwrap()[0].as_i64().unwrap(), &[1, 4]);
        let c =
            Cast { to: DType::I64 }.eval(&[&Tensor::f32(vec![3], vec![2.7, -2.7, 0.0])], &EvalCtx::default());
        assert_eq!(c.unwrap()[0].as_i64().unwrap(), &[2, -2, 0]);
        let c = Cast { to: DType::Bool }.eval(&[&Tensor::i64(vec![2], vec![0, 5])], &EvalCtx::default());
        assert_eq!(c.unwrap()[0].as_bool().unwrap(), &[false, true]);
    }

    #[test]
    fn quantized_dtypes_cast_and_refuse_arithmetic() {
        let ctx = EvalCtx::default();
        let c = Cast { to: DType::I8 }.eval(&[&Tensor::f32(vec![3], vec![300.0, -2.7, 5.5])], &ctx);
        assert_eq!(c.unwrap()[0].as_i8().unwrap(), &[127, -2, 5]);
        let c = Cast { to: DType::U8 }.eval(&[&Tensor::i32(vec![2], vec![257, 3])], &ctx);
        assert_eq!(c.unwrap()[0].as_u8().unwrap(), &[1, 3]);
        let c = Cast { to: DType::F32 }.eval(&[&Tensor::i8(vec![2], vec![-128, 7])], &ctx);
        assert_eq!(c.unwrap()[0].as_f32().unwrap(), &[-128.0, 7.0]);
        let q = Tensor::u8(vec![2], vec![1, 2]);
        let e = bin(BinaryKind::Add, q.clone(), q.clone()).unwrap_err();
        assert!(e.to_string().contains("U8") || e.to_string().contains("one dtype"), "{e}");
        let e = Where {}.eval(&[&Tensor::bool(vec![2], vec![true, false]), &q, &q], &ctx);
        assert!(e.is_err());
    }
}
