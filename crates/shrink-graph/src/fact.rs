//! Value types: element type and shape with symbolic dimensions.

use crate::error::{OpError, OpResult};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Element type of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    F32,
    I64,
    Bool,
    /// Signed 8-bit integers (quantization codes).
    I8,
    /// Unsigned 8-bit integers (quantization codes).
    U8,
    /// Signed 32-bit integers (integer accumulators, quantized biases).
    I32,
}

impl DType {
    /// The ONNX `TensorProto.DataType` code.
    pub fn onnx_code(self) -> i64 {
        match self {
            DType::F32 => 1,
            DType::I64 => 7,
            DType::Bool => 9,
            DType::I8 => 3,
            DType::U8 => 2,
            DType::I32 => 6,
        }
    }

    /// The dtype of an ONNX `TensorProto.DataType` code this IR stores as such (f32, i64, bool,
    /// int8, uint8, int32), if any.
    pub fn from_onnx_code(code: i64) -> Option<DType> {
        Some(match code {
            1 => DType::F32,
            7 => DType::I64,
            9 => DType::Bool,
            3 => DType::I8,
            2 => DType::U8,
            6 => DType::I32,
            _ => return None,
        })
    }

    /// True for the 8-bit quantization code types (`I8`, `U8`).
    pub fn is_quantized(self) -> bool {
        matches!(self, DType::I8 | DType::U8)
    }
}

/// One dimension: a number, or a symbol bound when the graph runs (the batch `N`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dim {
    Fixed(usize),
    Sym(String),
}

impl Dim {
    /// The size when it is a number.
    pub fn fixed(&self) -> Option<usize> {
        match self {
            Dim::Fixed(n) => Some(*n),
            Dim::Sym(_) => None,
        }
    }

    /// The dimension equal to `fixed · Π syms`, in canonical form: symbols sorted, the number
    /// last (`N*4`); a number alone is [`Dim::Fixed`]. `None` when the number overflows.
    pub fn product(fixed: u128, mut syms: Vec<String>) -> Option<Dim> {
        if syms.is_empty() || fixed == 0 {
            return usize::try_from(fixed).ok().map(Dim::Fixed);
        }
        syms.sort();
        let mut s = syms.join("*");
        if fixed != 1 {
            s.push_str(&format!("*{fixed}"));
        }
        Some(Dim::Sym(s))
    }

    /// The number and the symbols whose product this dimension is (`N*4` → (4, [N])).
    pub fn factors(&self) -> (u128, Vec<String>) {
        match self {
            Dim::Fixed(n) => (*n as u128, vec![]),
            Dim::Sym(s) => {
                let mut fixed = 1u128;
                let mut syms = Vec::new();
                for f in s.split('*') {
                    match f.parse::<u128>() {
                        Ok(n) => fixed = fixed.saturating_mul(n),
                        Err(_) => syms.push(f.to_string()),
                    }
                }
                syms.sort();
                (fixed, syms)
            }
        }
    }

    /// The size given the values of the symbols (products such as `N*4` multiply out).
    pub fn resolve(&self, syms: &std::collections::HashMap<String, usize>) -> Result<usize, String> {
        match self {
            Dim::Fixed(n) => Ok(*n),
            Dim::Sym(s) => {
                if let Some(&n) = syms.get(s) {
                    return Ok(n);
                }
                let (fixed, factors) = self.factors();
                let too_large = || format!("dimension `{s}` is too large");
                let mut n = usize::try_from(fixed).map_err(|_| too_large())?;
                for f in factors {
                    let v = syms.get(&f).copied().ok_or_else(|| format!("dimension `{f}` is not bound"))?;
                    n = n.checked_mul(v).ok_or_else(too_large)?;
                }
                Ok(n)
            }
        }
    }

    /// The size, or an error naming the symbol.
    pub fn to_usize(&self) -> OpResult<usize> {
        match self {
            Dim::Fixed(n) => Ok(*n),
            Dim::Sym(s) => Err(OpError::Symbolic(s.clone())),
        }
    }
}

impl From<usize> for Dim {
    fn from(n: usize) -> Self {
        Dim::Fixed(n)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Sym(s) => write!(f, "{s}"),
        }
    }
}

/// What is known about a value before it runs: its dtype and shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fact {
    pub dtype: DType,
    pub shape: Vec<Dim>,
}

impl Fact {
    /// A fact with fixed dimensions.
    pub fn new(dtype: DType, shape: &[usize]) -> Self {
        Fact { dtype, shape: shape.iter().map(|&d| Dim::Fixed(d)).collect() }
    }

    /// A fact with the given dimensions.
    pub fn dims(dtype: DType, shape: Vec<Dim>) -> Self {
        Fact { dtype, shape }
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The shape as numbers, or an error naming a symbolic dimension.
    pub fn fixed_shape(&self) -> OpResult<Vec<usize>> {
        self.shape.iter().map(Dim::to_usize).collect()
    }

    /// Element count when every dimension is fixed.
    pub fn volume(&self) -> Option<usize> {
        self.shape.iter().map(Dim::fixed).product()
    }

    /// Resolve a possibly negative axis against this rank.
    pub fn axis(&self, axis: i64) -> OpResult<usize> {
        normalize_axis(axis, self.rank())
    }
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}[", self.dtype)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

/// Resolve a possibly negative axis (`-1` is the last) against `rank`.
pub fn normalize_axis(axis: i64, rank: usize) -> OpResult<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r.max(1) {
        return Err(OpError::Shape(format!("axis {axis} is out of range for rank {rank}")));
    }
    Ok(if axis < 0 { (axis + r) as usize } else { axis as usize })
}

/// NumPy-style broadcast of several shapes (right-aligned; 1 stretches).
pub fn broadcast_shapes(shapes: &[&[Dim]]) -> OpResult<Vec<Dim>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let mut dim = Dim::Fixed(1);
        for s in shapes {
            let Some(k) = (i + s.len()).checked_sub(rank) else { continue };
            let d = &s[k];
            dim = match (&dim, d) {
                (_, Dim::Fixed(1)) => dim,
                (Dim::Fixed(1), _) => d.clone(),
                (a, b) if a == b => dim,
                (a, b) => {
                    return Err(OpError::Shape(format!(
                        "shapes {} cannot be broadcast (axis {i}: {a} vs {b})",
                        shapes.iter().map(|s| fmt_shape(s)).collect::<Vec<_>>().join(" and ")
                    )))
                }
            };
        }
        out.push(dim);
    }
    Ok(out)
}

/// NumPy broadcast of two concrete shapes (right-aligned; 1 stretches).
pub fn broadcast_fixed(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|k| {
            let get = |s: &[usize]| (k + s.len()).checked_sub(r).map(|i| s[i]).unwrap_or(1);
            match (get(a), get(b)) {
                (x, y) if x == y || y == 1 => Ok(x),
                (1, y) => Ok(y),
                (x, y) => Err(format!("shapes {a:?} and {b:?} cannot be broadcast ({x} vs {y})")),
            }
        })
        .collect()
}

/// `[a, b, N]` formatting for error messages.
pub fn fmt_shape(shape: &[Dim]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(v: &[usize]) -> Vec<Dim> {
        v.iter().map(|&x| Dim::Fixed(x)).collect()
    }

    #[test]
    fn broadcast_follows_numpy() {
        let n = vec![Dim::Sym("N".into()), Dim::Fixed(3), Dim::Fixed(1)];
        let out = broadcast_shapes(&[&n, &d(&[1, 5])]).unwrap();
        assert_eq!(out, vec![Dim::Sym("N".into()), Dim::Fixed(3), Dim::Fixed(5)]);
        assert!(broadcast_shapes(&[&d(&[2, 3]), &d(&[4, 3])]).is_err());
        assert_eq!(broadcast_shapes(&[&d(&[]), &d(&[2])]).unwrap(), d(&[2]));
    }

    #[test]
    fn negative_axes_resolve() {
        assert_eq!(normalize_axis(-1, 4).unwrap(), 3);
        assert!(normalize_axis(4, 4).is_err());
        assert!(normalize_axis(-5, 4).is_err());
    }
}
