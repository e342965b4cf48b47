//! Constant tensors of an ONNX graph and the folding of the ops that compute them (shape
//! arithmetic: Shape, Gather, Unsqueeze, Concat, ConstantOfShape, Slice, Reshape, Transpose,
//! Cast, element-wise arithmetic).
//!
//! The batch size is unknown while importing, so `Shape` of the graph input yields the
//! symbolic value [`BATCH`] in dim 0; layout ops move it around, arithmetic refuses it.
use super::decode::TensorProto;

/// Symbolic batch size inside folded integer tensors.
pub const BATCH: i64 = i64::MIN / 3;

/// Largest constant the folder computes (elements); larger ones are refused, so a tiny file
/// cannot request a huge allocation through ConstantOfShape and friends. (Initializers are
/// bounded by the file itself: their payload is checked against their shape first.)
pub const MAX_ELEMS: usize = 1 << 24;

/// Element data of a constant: floats (any float type) or integers (any integer or bool type).
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F(Vec<f32>),
    I(Vec<i64>),
}

/// A constant tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    pub dims: Vec<usize>,
    pub data: Data,
}

type R<T> = std::result::Result<T, String>;

// TensorProto.DataType
pub const FLOAT: i64 = 1;
const UINT8: i64 = 2;
const INT8: i64 = 3;
const UINT16: i64 = 4;
const INT16: i64 = 5;
const INT32: i64 = 6;
const INT64: i64 = 7;
const BOOL: i64 = 9;
const FLOAT16: i64 = 10;
pub const DOUBLE: i64 = 11;
const UINT32: i64 = 12;
const UINT64: i64 = 13;
const BFLOAT16: i64 = 16;

/// Whether an ONNX element type is a float type.
pub fn is_float_type(t: i64) -> bool {
    matches!(t, FLOAT | FLOAT16 | DOUBLE | BFLOAT16)
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: value = f * 2^-24.
            let v = f as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Number of elements of `dims`, checked for overflow and [`MAX_ELEMS`].
pub fn numel(dims: &[usize]) -> R<usize> {
    numel_upto(dims, MAX_ELEMS)
}

fn numel_upto(dims: &[usize], max: usize) -> R<usize> {
    let mut n = 1usize;
    for &d in dims {
        n = n.checked_mul(d).filter(|&n| n <= max).ok_or_else(|| format!("shape {dims:?} is too large"))?;
    }
    Ok(n)
}

impl Const {
    pub fn ints(dims: Vec<usize>, v: Vec<i64>) -> Const {
        Const { dims, data: Data::I(v) }
    }

    pub fn floats(dims: Vec<usize>, v: Vec<f32>) -> Const {
        Const { dims, data: Data::F(v) }
    }

    /// Decodes a TensorProto (the element count is checked against the payload before any
    /// allocation).
    pub fn from_proto(t: &TensorProto) -> R<Const> {
        let what = if t.name.is_empty() { "tensor".to_string() } else { format!("tensor `{}`", t.name) };
        if t.data_location == 1 || t.has_external_data {
            return Err(format!("{what} keeps its data in an external file (unsupported)"));
        }
        let mut dims = Vec::with_capacity(t.dims.len());
        for &d in &t.dims {
            if d < 0 {
                return Err(format!("{what} has negative dimension {d}"));
            }
            dims.push(usize::try_from(d).map_err(|_| format!("{what}: dimension {d} too large"))?);
        }
        let n = numel_upto(&dims, usize::MAX / 8).map_err(|e| format!("{what}: {e}"))?;
        let size = match t.data_type {
            FLOAT | INT32 | UINT32 => 4,
            DOUBLE | INT64 | UINT64 => 8,
            UINT8 | INT8 | BOOL => 1,
            UINT16 | INT16 | FLOAT16 | BFLOAT16 => 2,
            other => return Err(format!("{what} has unsupported data type {other}")),
        };
        let count_err = |got: usize| format!("{what}: shape {dims:?} needs {n} values, the file holds {got}");
        if let Some(raw) = t.raw_data {
            if raw.len() != n * size {
                return Err(count_err(raw.len() / size));
            }
            let c = raw.chunks_exact(size);
            let data = match t.data_type {
                FLOAT => Data::F(c.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
                DOUBLE => Data::F(c.map(|b| f64::from_le_bytes(b.try_into().expect("8")) as f32).collect()),
                FLOAT16 => Data::F(c.map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()),
                BFLOAT16 => Data::F(
                    c.map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)).collect(),
                ),
                INT64 | UINT64 => Data::I(c.map(|b| i64::from_le_bytes(b.try_into().expect("8"))).collect()),
                INT32 => Data::I(c.map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect()),
                UINT32 => Data::I(c.map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect()),
                INT16 => Data::I(c.map(|b| i16::from_le_bytes([b[0], b[1]]) as i64).collect()),
                UINT16 => Data::I(c.map(|b| u16::from_le_bytes([b[0], b[1]]) as i64).collect()),
                INT8 => Data::I(c.map(|b| b[0] as i8 as i64).collect()),
                _ => Data::I(c.map(|b| b[0] as i64).collect()),
            };
            return Ok(Const { dims, data });
        }
        let data = match t.data_type {
            FLOAT => {
                if t.float_data.len() != n {
                    return Err(count_err(t.float_data.len()));
                }
                Data::F(t.float_data.clone())
            }
            DOUBLE => {
                if t.double_data.len() != n {
                    return Err(count_err(t.double_data.len()));
                }
                Data::F(t.double_data.iter().map(|&v| v as f32).collect())
            }
            FLOAT16 | BFLOAT16 => {
                if t.int32_data.len() != n {
                    return Err(count_err(t.int32_data.len()));
                }
                let bf = t.data_type == BFLOAT16;
                Data::F(
                    t.int32_data
                        .iter()
                        .map(|&v| {
                            let h = v as u16;
                            if bf {
                                f32::from_bits((h as u32) << 16)
                            } else {
                                f16_to_f32(h)
                            }
                        })
                        .collect(),
                )
            }
            INT64 => {
                if t.int64_data.len() != n {
                    return Err(count_err(t.int64_data.len()));
                }
                Data::I(t.int64_data.clone())
            }
            UINT32 | UINT64 => {
                if t.uint64_data.len() != n {
                    return Err(count_err(t.uint64_data.len()));
                }
                Data::I(t.uint64_data.clone())
            }
            _ => {
                if t.int32_data.len() != n {
                    return Err(count_err(t.int32_data.len()));
                }
                Data::I(t.int32_data.iter().map(|&v| v as i32 as i64).collect())
            }
        };
        Ok(Const { dims, data })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::F(v) => v.len(),
            Data::I(v) => v.len(),
        }
    }

    /// The values as integers (floats must be integral); refuses the symbolic batch size.
    pub fn to_ints(&self) -> R<Vec<i64>> {
        let v = self.to_ints_sym()?;
        if v.contains(&BATCH) {
            return Err("value depends on the batch size".into());
        }
        Ok(v)
    }

    /// The values as integers, keeping the symbolic batch size.
    pub fn to_ints_sym(&self) -> R<Vec<i64>> {
        match &self.data {
            Data::I(v) => Ok(v.clone()),
            Data::F(v) => v
                .iter()
                .map(|&x| {
                    if x.fract() == 0.0 && x.is_finite() {
                        Ok(x as i64)
                    } else {
                        Err(format!("{x} is not an integer"))
                    }
                })
                .collect(),
        }
    }

    /// The values as floats.
    pub fn to_floats(&self) -> R<Vec<f32>> {
        match &self.data {
            Data::F(v) => Ok(v.clone()),
            Data::I(v) => {
                if v.contains(&BATCH) {
                    return Err("value depends on the batch size".into());
                }
                Ok(v.iter().map(|&x| x as f32).collect())
            }
        }
    }

    /// The single value of a one-element tensor as an integer.
    pub fn scalar_int(&self) -> R<i64> {
        match self.to_ints()?.as_slice() {
            [v] => Ok(*v),
            v => Err(format!("expected one value, got {}", v.len())),
        }
    }

    /// The single value of a one-element tensor as a float.
    pub fn scalar_float(&self) -> R<f32> {
        match self.to_floats()?.as_slice() {
            [v] => Ok(*v),
            v => Err(format!("expected one value, got {}", v.len())),
        }
    }

    /// Elements picked by flat index, with new dims.
    fn take(&self, dims: Vec<usize>, idx: &[usize]) -> Const {
        let data = match &self.data {
            Data::F(v) => Data::F(idx.iter().map(|&i| v[i]).collect()),
            Data::I(v) => Data::I(idx.iter().map(|&i| v[i]).collect()),
        };
        Const { dims, data }
    }

    pub fn reshaped(&self, dims: Vec<usize>) -> Const {
        Const { dims, data: self.data.clone() }
    }
}

fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Normalizes a possibly negative axis against `rank`.
pub fn axis(a: i64, rank: usize) -> R<usize> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if (0..r).contains(&v) {
        Ok(v as usize)
    } else {
        Err(format!("axis {a} out of range for rank {rank}"))
    }
}

/// Visits every multi-index of `dims` in row-major order.
fn for_each_index(dims: &[usize], mut f: impl FnMut(&[usize])) {
    if dims.contains(&0) {
        return;
    }
    let mut idx = vec![0usize; dims.len()];
    loop {
        f(&idx);
        let mut k = dims.len();
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

pub fn gather(data: &Const, indices: &Const, ax: i64) -> R<Const> {
    let a = axis(ax, data.dims.len())?;
    let n = data.dims[a] as i64;
    let ind: Vec<usize> = indices
        .to_ints()?
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + n } else { i };
            if (0..n).contains(&j) {
                Ok(j as usize)
            } else {
                Err(format!("index {i} out of range for dimension of size {n}"))
            }
        })
        .collect::<R<_>>()?;
    let outer: usize = data.dims[..a].iter().product();
    let inner: usize = data.dims[a + 1..].iter().product();
    let mut dims = data.dims[..a].to_vec();
    dims.extend_from_slice(&indices.dims);
    dims.extend_from_slice(&data.dims[a + 1..]);
    numel(&dims)?;
    let mut idx = Vec::new();
    for o in 0..outer {
        for &i in &ind {
            for k in 0..inner {
                idx.push((o * data.dims[a] + i) * inner + k);
            }
        }
    }
    Ok(data.take(dims, &idx))
}

pub fn unsqueeze(x: &Const, axes: &[i64]) -> R<Const> {
    let rank = x.dims.len() + axes.len();
    let mut ax: Vec<usize> = axes.iter().map(|&a| axis(a, rank)).collect::<R<_>>()?;
    ax.sort_unstable();
    ax.dedup();
    if ax.len() != axes.len() {
        return Err("repeated axis".into());
    }
    let mut dims = Vec::with_capacity(rank);
    let mut src = x.dims.iter();
    for i in 0..rank {
        if ax.contains(&i) {
            dims.push(1);
        } else {
            dims.push(*src.next().ok_or("axes out of range")?);
        }
    }
    Ok(x.reshaped(dims))
}

pub fn squeeze(x: &Const, axes: Option<&[i64]>) -> R<Const> {
    let dims = match axes {
        None => x.dims.iter().copied().filter(|&d| d != 1).collect(),
        Some(axes) => {
            let ax: Vec<usize> = axes.iter().map(|&a| axis(a, x.dims.len())).collect::<R<_>>()?;
            if ax.iter().any(|&a| x.dims[a] != 1) {
                return Err(format!("cannot squeeze a dimension other than 1 of {:?}", x.dims));
            }
            x.dims.iter().enumerate().filter(|(i, _)| !ax.contains(i)).map(|(_, &d)| d).collect()
        }
    };
    Ok(x.reshaped(dims))
}

pub fn concat(xs: &[&Const], ax: i64) -> R<Const> {
    let first = xs.first().ok_or("no inputs")?;
    let rank = first.dims.len();
    let a = axis(ax, rank)?;
    let is_float = xs.iter().any(|x| matches!(x.data, Data::F(_)));
    let mut dims = first.dims.clone();
    dims[a] = 0;
    for x in xs {
        if x.dims.len() != rank
            || x.dims.iter().zip(&first.dims).enumerate().any(|(i, (p, q))| i != a && p != q)
        {
            return Err(format!("cannot concatenate shapes {:?} and {:?}", first.dims, x.dims));
        }
        dims[a] += x.dims[a];
    }
    numel(&dims)?;
    let outer: usize = dims[..a].iter().product();
    let inner: usize = dims[a + 1..].iter().product();
    let mut f = Vec::new();
    let mut i = Vec::new();
    for o in 0..outer {
        for x in xs {
            let chunk = x.dims[a] * inner;
            let range = o * chunk..(o + 1) * chunk;
            if is_float {
                f.extend_from_slice(&x.to_floats()?[range]);
            } else {
                i.extend_from_slice(&x.to_ints_sym()?[range]);
            }
        }
    }
    Ok(Const { dims, data: if is_float { Data::F(f) } else { Data::I(i) } })
}

/// Resolves a Reshape target (0 = copy, -1 = infer) against `input` dims.
pub fn reshape_dims(input: &[usize], target: &[i64], allowzero: bool) -> R<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*input.get(i).ok_or("0 in reshape target beyond the input rank")?),
            t if t >= 0 => out.push(usize::try_from(t).map_err(|_| "bad reshape target")?),
            _ => return Err(format!("bad reshape target {target:?}")),
        }
    }
    let known = out
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("bad reshape target {target:?}"))?;
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {input:?} to {target:?}"));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(format!("cannot reshape {input:?} to {target:?}"));
    }
    Ok(out)
}

pub fn transpose(x: &Const, perm: Option<&[i64]>) -> R<Const> {
    let rank = x.dims.len();
    let perm: Vec<usize> = match perm {
        Some(p) => p.iter().map(|&a| axis(a, rank)).collect::<R<_>>()?,
        None => (0..rank).rev().collect(),
    };
    let mut seen = perm.clone();
    seen.sort_unstable();
    if seen != (0..rank).collect::<Vec<_>>() {
        return Err(format!("bad permutation {perm:?}"));
    }
    let dims: Vec<usize> = perm.iter().map(|&p| x.dims[p]).collect();
    let src = strides(&x.dims);
    let mut idx = Vec::with_capacity(x.len());
    for_each_index(&dims, |o| idx.push(o.iter().zip(&perm).map(|(&i, &p)| i * src[p]).sum()));
    Ok(x.take(dims, &idx))
}

/// ONNX Slice on a constant (negative steps and out-of-range bounds as the spec clamps them).
pub fn slice(x: &Const, starts: &[i64], ends: &[i64], axes: &[usize], steps: &[i64]) -> R<Const> {
    let rank = x.dims.len();
    let mut lo: Vec<i64> = vec![0; rank];
    let mut step: Vec<i64> = vec![1; rank];
    let mut dims = x.dims.clone();
    for k in 0..axes.len() {
        let a = axes[k];
        let d = x.dims[a] as i128;
        let s = steps[k] as i128;
        if s == 0 {
            return Err("slice step 0".into());
        }
        let mut b = starts[k] as i128;
        let mut e = ends[k] as i128;
        if b < 0 {
            b += d;
        }
        if e < 0 {
            e += d;
        }
        let (b, e) =
            if s > 0 { (b.clamp(0, d), e.clamp(0, d)) } else { (b.clamp(0, d - 1), e.clamp(-1, d - 1)) };
        let n = if s > 0 { (e - b + s - 1).max(0) / s } else { (b - e + (-s) - 1).max(0) / (-s) };
        lo[a] = b as i64;
        step[a] = s as i64;
        dims[a] = n as usize;
    }
    let src = strides(&x.dims);
    let mut idx = Vec::new();
    for_each_index(&dims, |o| {
        idx.push(o.iter().enumerate().map(|(a, &i)| (lo[a] + i as i64 * step[a]) as usize * src[a]).sum());
    });
    Ok(x.take(dims, &idx))
}

/// Numpy-style broadcast of two shapes.
fn broadcast(a: &[usize], b: &[usize]) -> R<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        };
    }
    Ok(out)
}

/// Flat source indices of `x` broadcast to `out`.
fn broadcast_index(x: &[usize], out: &[usize]) -> Vec<usize> {
    let s = strides(x);
    let off = out.len() - x.len();
    let mut idx = Vec::new();
    for_each_index(out, |o| {
        idx.push((0..x.len()).map(|i| if x[i] == 1 { 0 } else { o[i + off] * s[i] }).sum());
    });
    idx
}

/// Element-wise Add/Sub/Mul/Div of two constants (with broadcasting).
pub fn binary(op: &str, a: &Const, b: &Const) -> R<Const> {
    let dims = broadcast(&a.dims, &b.dims)?;
    numel(&dims)?;
    let ia = broadcast_index(&a.dims, &dims);
    let ib = broadcast_index(&b.dims, &dims);
    let float = matches!(a.data, Data::F(_)) || matches!(b.data, Data::F(_));
    if float {
        let (x, y) = (a.to_floats()?, b.to_floats()?);
        let f = |p: f32, q: f32| match op {
            "Add" => p + q,
            "Sub" => p - q,
            "Mul" => p * q,
            _ => p / q,
        };
        Ok(Const::floats(dims, ia.iter().zip(&ib).map(|(&i, &j)| f(x[i], y[j])).collect()))
    } else {
        let (x, y) = (a.to_ints()?, b.to_ints()?);
        let v = ia
            .iter()
            .zip(&ib)
            .map(|(&i, &j)| {
                let (p, q) = (x[i], y[j]);
                match op {
                    "Add" => p.checked_add(q),
                    "Sub" => p.checked_sub(q),
                    "Mul" => p.checked_mul(q),
                    _ => p.checked_div(q),
                }
                .ok_or_else(|| format!("integer {op} of {p} and {q} overflows or divides by zero"))
            })
            .collect::<R<_>>()?;
        Ok(Const::ints(dims, v))
    }
}

/// Cast to an ONNX element type.
pub fn cast(x: &Const, to: i64) -> R<Const> {
    if is_float_type(to) {
        Ok(Const::floats(x.dims.clone(), x.to_floats()?))
    } else if to == BOOL {
        let v = match &x.data {
            Data::F(v) => v.iter().map(|&f| (f != 0.0) as i64).collect(),
            Data::I(v) => v.iter().map(|&i| (i != 0) as i64).collect(),
        };
        Ok(Const::ints(x.dims.clone(), v))
    } else {
        let v = match &x.data {
            Data::F(v) => v.iter().map(|&f| f as i64).collect(),
            Data::I(v) => v.clone(),
        };
        Ok(Const::ints(x.dims.clone(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytorch_pad_computation_folds() {
        // The shared ResNet's shortcut pads: [0,0,0,0,8,8] ++ zeros(2) → reshape(-1,2) →
        // reversed rows → transpose → flatten.
        let c =
            concat(&[&Const::ints(vec![6], vec![0, 0, 0, 0, 8, 8]), &Const::ints(vec![2], vec![0, 0])], 0)
                .unwrap();
        let r = c.reshaped(reshape_dims(&c.dims, &[-1, 2], false).unwrap());
        let s = slice(&r, &[-1], &[-i64::MAX], &[0], &[-1]).unwrap();
        let t = transpose(&s, Some(&[1, 0])).unwrap();
        assert_eq!(t.to_ints().unwrap(), [0, 8, 0, 0, 0, 8, 0, 0]);
    }

    #[test]
    fn gather_unsqueeze_concat() {
        let shape = Const::ints(vec![4], vec![BATCH, 64, 1, 1]);
        let b = gather(&shape, &Const::ints(vec![], vec![0]), 0).unwrap();
        assert_eq!(b.dims, Vec::<usize>::new());
        let u = unsqueeze(&b, &[0]).unwrap();
        let t = concat(&[&u, &Const::ints(vec![1], vec![-1])], 0).unwrap();
        assert_eq!(t.to_ints_sym().unwrap(), [BATCH, -1]);
        assert!(t.to_ints().is_err());
    }

    #[test]
    fn binary_broadcasts() {
        let a = Const::floats(vec![2, 1], vec![1.0, 2.0]);
        let b = Const::floats(vec![3], vec![10.0, 20.0, 30.0]);
        let c = binary("Add", &a, &b).unwrap();
        assert_eq!(c.dims, [2, 3]);
        assert_eq!(c.to_floats().unwrap(), [11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
    }
}
