//! Shape ops: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand, Shape.
//!
//! None of them computes anything: their cost is zero. Their axes mappings say which axes keep
//! their indices (`Same`) and which are merged or split in row-major order (`Reshape`).

use super::{check_arity, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{broadcast_shapes, fmt_shape, normalize_axis, DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// Reshape to an explicit output shape (ONNX `0`/`-1` are resolved at import, see
/// [`resolve_reshape`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reshape {
    pub shape: Vec<Dim>,
}

/// `[d0…d(axis-1), d(axis)…]` → 2-D.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flatten {
    pub axis: i64,
}

/// Permute axes: output axis `k` is input axis `perm[k]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transpose {
    pub perm: Vec<usize>,
}

/// Remove size-1 axes. `axes` empty means every axis of size 1 (at inference the fixed ones,
/// at run time every one); the importer always lists the axes, so a batch that is 1 at run time
/// is never squeezed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Squeeze {
    pub axes: Vec<i64>,
}

/// Insert size-1 axes at `axes` (positions in the output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unsqueeze {
    pub axes: Vec<i64>,
}

/// Broadcast to `shape` (NumPy rules, both ways as ONNX Expand). Inputs `[data]`, or
/// `[data, shape]` where the i64 `shape` value holds the same dimensions at run time (used when
/// `shape` has symbolic dimensions, so a constant `data` is not folded before they are known).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expand {
    pub shape: Vec<Dim>,
}

/// The input's shape as a 1-D i64 tensor (axes `start..end`, negative counted from the end,
/// clamped as ONNX Shape-15).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    pub start: i64,
    pub end: Option<i64>,
}

/// One element of an ONNX Reshape target before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeSpec {
    /// An explicit dimension.
    Dim(Dim),
    /// ONNX `0` without `allowzero`: the input's dimension at the same position.
    Copy,
    /// ONNX `-1`: whatever keeps the element count.
    Infer,
}

/// A volume as a fixed factor times a product of symbols (sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Vol {
    fixed: u128,
    syms: Vec<String>,
}

fn volume(dims: &[Dim]) -> Vol {
    let mut v = Vol { fixed: 1, syms: Vec::new() };
    for d in dims {
        let (n, syms) = d.factors();
        v.fixed = v.fixed.saturating_mul(n);
        v.syms.extend(syms);
    }
    v.syms.sort();
    v
}

/// One dimension equal to the product of `dims`: a number, or a single symbol times 1. Products
/// involving a symbol and another non-1 factor cannot be written as a [`Dim`].
pub fn merge_dims(dims: &[Dim]) -> OpResult<Dim> {
    let v = volume(dims);
    Dim::product(v.fixed, v.syms)
        .ok_or_else(|| OpError::Shape(format!("the product of {} is too large", fmt_shape(dims))))
}

/// Resolve an ONNX Reshape target against the input shape: `Copy` takes the input's dimension,
/// `Infer` the quotient of the volumes, where symbols present on both sides cancel
/// (`[N, C, H, W]` reshaped to `[N, -1]` gives `[N, C·H·W]`).
pub fn resolve_reshape(input: &[Dim], spec: &[ShapeSpec]) -> OpResult<Vec<Dim>> {
    let mut out = Vec::with_capacity(spec.len());
    let mut infer_at = None;
    for (k, s) in spec.iter().enumerate() {
        match s {
            ShapeSpec::Dim(d) => out.push(d.clone()),
            ShapeSpec::Copy => out.push(input.get(k).cloned().ok_or_else(|| {
                OpError::Shape(format!(
                    "shape element {k} is 0 (copy) but the input has rank {}",
                    input.len()
                ))
            })?),
            ShapeSpec::Infer => {
                if infer_at.replace(k).is_some() {
                    return Err(OpError::Shape("the shape has more than one -1".into()));
                }
                out.push(Dim::Fixed(1));
            }
        }
    }
    let vin = volume(input);
    let mut vout = volume(&out);
    if let Some(k) = infer_at {
        let mut rest = vin.syms.clone();
        for s in &vout.syms {
            let Some(p) = rest.iter().position(|r| r == s) else {
                return Err(OpError::Shape(format!(
                    "cannot infer -1 reshaping {}: symbolic dimension `{s}` of the target is not in the input",
                    fmt_shape(input)
                )));
            };
            rest.remove(p);
        }
        if vout.fixed == 0 || !vin.fixed.is_multiple_of(vout.fixed) {
            return Err(OpError::Shape(format!(
                "cannot reshape {} to {}: -1 has no integer size",
                fmt_shape(input),
                fmt_shape(&out)
            )));
        }
        let q = vin.fixed / vout.fixed;
        out[k] = match rest.as_slice() {
            [] => Dim::Fixed(
                usize::try_from(q)
                    .map_err(|_| OpError::Shape("the inferred dimension is too large".into()))?,
            ),
            _ => Dim::product(q, rest.clone())
                .ok_or_else(|| OpError::Shape("the inferred dimension is too large".into()))?,
        };
        vout = volume(&out);
    }
    if vin != vout {
        return Err(OpError::Shape(format!("cannot reshape {} to {}", fmt_shape(input), fmt_shape(&out))));
    }
    Ok(out)
}

/// Relate the axes of `input` (input 0) and `output` (output 0) of a reshape: runs of axes with
/// equal products form groups; a group of one axis each side is `Same`, one axis against several
/// is `Reshape`, several against several (or symbolic dimensions that do not line up) `Pinned`.
/// Size-1 axes that no group needs are left unrelated.
pub fn reshape_axes(input: &[Dim], output: &[Dim]) -> AxesMapping {
    let mut m = AxesMapping::none();
    let (mut i, mut j) = (0, 0);
    let one = Dim::Fixed(1);
    while i < input.len() && j < output.len() {
        // Skip unit axes paired with unit axes or trailing ones: they carry no index.
        if input[i] == one && output[j] != one {
            i += 1;
            continue;
        }
        if output[j] == one && input[i] != one {
            j += 1;
            continue;
        }
        if input[i] == one && output[j] == one {
            m.rels.push(AxisRel::Same(Port::input(0, i), Port::output(0, j)));
            i += 1;
            j += 1;
            continue;
        }
        if let (Dim::Sym(_), _) | (_, Dim::Sym(_)) = (&input[i], &output[j]) {
            if input[i] == output[j] {
                m.rels.push(AxisRel::Same(Port::input(0, i), Port::output(0, j)));
                i += 1;
                j += 1;
                continue;
            }
            break;
        }
        let (gi, gj) = (i, j);
        let (mut pi, mut pj) = (input[i].fixed().unwrap_or(0), output[j].fixed().unwrap_or(0));
        i += 1;
        j += 1;
        let mut ok = true;
        while pi != pj {
            let next = if pi < pj { input.get(i) } else { output.get(j) };
            match next.and_then(Dim::fixed) {
                Some(n) if pi < pj => {
                    pi *= n;
                    i += 1;
                }
                Some(n) => {
                    pj *= n;
                    j += 1;
                }
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            i = gi;
            j = gj;
            break;
        }
        let ins: Vec<Port> = (gi..i).map(|a| Port::input(0, a)).collect();
        let outs: Vec<Port> = (gj..j).map(|a| Port::output(0, a)).collect();
        match (ins.len(), outs.len()) {
            (1, 1) => m.rels.push(AxisRel::Same(ins[0], outs[0])),
            (1, _) => m.rels.push(AxisRel::Reshape { merged: ins[0], split: outs }),
            (_, 1) => m.rels.push(AxisRel::Reshape { merged: outs[0], split: ins }),
            _ => m.rels.extend(ins.into_iter().chain(outs).map(AxisRel::Pinned)),
        }
    }
    // Whatever could not be grouped has its indices mixed.
    for (a, d) in input.iter().enumerate().skip(i) {
        if *d != one {
            m.rels.push(AxisRel::Pinned(Port::input(0, a)));
        }
    }
    for (a, d) in output.iter().enumerate().skip(j) {
        if *d != one {
            m.rels.push(AxisRel::Pinned(Port::output(0, a)));
        }
    }
    m
}

/// Check a list of axes for duplicates and resolve them against `rank`.
fn resolve_axes(axes: &[i64], rank: usize) -> OpResult<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let k = normalize_axis(a, rank).map_err(|e| OpError::Attr { name: "axes", msg: e.to_string() })?;
        if out.contains(&k) {
            return Err(OpError::Attr { name: "axes", msg: format!("axis {a} is listed twice") });
        }
        out.push(k);
    }
    Ok(out)
}

impl Reshape {
    fn check(&self, input: &[Dim]) -> OpResult<()> {
        if volume(input) != volume(&self.shape) {
            return Err(OpError::Shape(format!(
                "cannot reshape {} to {}",
                fmt_shape(input),
                fmt_shape(&self.shape)
            )));
        }
        Ok(())
    }
}

impl OpDef for Reshape {
    fn name(&self) -> &'static str {
        "Reshape"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        self.check(&ins[0].fact.shape)?;
        Ok(vec![Fact::dims(ins[0].fact.dtype, self.shape.clone())])
    }
    fn axes(&self, ins: &[&Fact], outs: &[&Fact]) -> AxesMapping {
        reshape_axes(&ins[0].shape, &outs[0].shape)
    }
}

impl Flatten {
    /// The output shape for an input shape.
    pub fn out_shape(&self, input: &[Dim]) -> OpResult<Vec<Dim>> {
        let r = input.len() as i64;
        if self.axis < -r || self.axis > r {
            return Err(OpError::Attr {
                name: "axis",
                msg: format!("{} is out of range for rank {r}", self.axis),
            });
        }
        let k = if self.axis < 0 { self.axis + r } else { self.axis } as usize;
        Ok(vec![merge_dims(&input[..k])?, merge_dims(&input[k..])?])
    }
}

impl OpDef for Flatten {
    fn name(&self) -> &'static str {
        "Flatten"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        let f = ins[0].fact;
        Ok(vec![Fact::dims(f.dtype, self.out_shape(&f.shape)?)])
    }
    fn axes(&self, ins: &[&Fact], outs: &[&Fact]) -> AxesMapping {
        reshape_axes(&ins[0].shape, &outs[0].shape)
    }
}

impl Transpose {
    fn check(&self, rank: usize) -> OpResult<()> {
        let mut seen = vec![false; rank];
        if self.perm.len() != rank {
            return Err(OpError::Attr {
                name: "perm",
                msg: format!("has {} entries for an input of rank {rank}", self.perm.len()),
            });
        }
        for &p in &self.perm {
            if p >= rank || std::mem::replace(&mut seen[p], true) {
                return Err(OpError::Attr {
                    name: "perm",
                    msg: format!("{:?} is not a permutation of 0..{rank}", self.perm),
                });
            }
        }
        Ok(())
    }
}

impl OpDef for Transpose {
    fn name(&self) -> &'static str {
        "Transpose"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        let f = ins[0].fact;
        self.check(f.rank())?;
        Ok(vec![Fact::dims(f.dtype, self.perm.iter().map(|&p| f.shape[p].clone()).collect())])
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        let mut m = AxesMapping::none();
        for (k, &p) in self.perm.iter().enumerate() {
            m.rels.push(AxisRel::Same(Port::input(0, p), Port::output(0, k)));
        }
        m
    }
}

impl Squeeze {
    /// The input axes removed from a fact's shape.
    pub fn removed(&self, shape: &[Dim]) -> OpResult<Vec<usize>> {
        if self.axes.is_empty() {
            return Ok((0..shape.len()).filter(|&k| shape[k] == Dim::Fixed(1)).collect());
        }
        let axes = resolve_axes(&self.axes, shape.len())?;
        for &k in &axes {
            if shape[k] != Dim::Fixed(1) {
                return Err(OpError::Shape(format!(
                    "cannot squeeze axis {k} of {}: its size is not 1",
                    fmt_shape(shape)
                )));
            }
        }
        Ok(axes)
    }
}

impl OpDef for Squeeze {
    fn name(&self) -> &'static str {
        "Squeeze"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        let f = ins[0].fact;
        let removed = self.removed(&f.shape)?;
        let shape = (0..f.rank()).filter(|k| !removed.contains(k)).map(|k| f.shape[k].clone()).collect();
        Ok(vec![Fact::dims(f.dtype, shape)])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        let mut m = AxesMapping::none();
        let removed = self.removed(&ins[0].shape).unwrap_or_default();
        let kept = (0..ins[0].rank()).filter(|k| !removed.contains(k));
        for (o, k) in kept.enumerate() {
            m.rels.push(AxisRel::Same(Port::input(0, k), Port::output(0, o)));
        }
        m
    }
}

impl Unsqueeze {
    /// The inserted output axes, for an input of rank `rank`.
    pub fn inserted(&self, rank: usize) -> OpResult<Vec<usize>> {
        resolve_axes(&self.axes, rank + self.axes.len())
    }
}

impl OpDef for Unsqueeze {
    fn name(&self) -> &'static str {
        "Unsqueeze"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        let f = ins[0].fact;
        if self.axes.is_empty() {
            return Err(OpError::Attr { name: "axes", msg: "is empty".into() });
        }
        let ins_axes = self.inserted(f.rank())?;
        let mut src = f.shape.iter();
        let shape = (0..f.rank() + ins_axes.len())
            .map(|k| {
                if ins_axes.contains(&k) {
                    Dim::Fixed(1)
                } else {
                    src.next().cloned().unwrap_or(Dim::Fixed(1))
                }
            })
            .collect();
        Ok(vec![Fact::dims(f.dtype, shape)])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        let mut m = AxesMapping::none();
        let inserted = self.inserted(ins[0].rank()).unwrap_or_default();
        let kept = (0..ins[0].rank() + inserted.len()).filter(|k| !inserted.contains(k));
        for (i, o) in kept.enumerate() {
            m.rels.push(AxisRel::Same(Port::input(0, i), Port::output(0, o)));
        }
        m
    }
}

impl OpDef for Expand {
    fn name(&self) -> &'static str {
        "Expand"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 2)?;
        if let Some(s) = ins.get(1) {
            if s.fact.dtype != DType::I64 || s.fact.shape != [Dim::Fixed(self.shape.len())] {
                return Err(OpError::Shape(format!(
                    "the shape input must be I64[{}], got {}",
                    self.shape.len(),
                    s.fact
                )));
            }
        }
        let f = ins[0].fact;
        Ok(vec![Fact::dims(f.dtype, broadcast_shapes(&[&f.shape, &self.shape])?)])
    }
    fn axes(&self, ins: &[&Fact], outs: &[&Fact]) -> AxesMapping {
        AxesMapping::elementwise(&[&ins[0].shape], outs[0].rank())
    }
}

impl Shape {
    /// The range of axes reported for an input of rank `rank` (clamped as ONNX).
    pub fn range(&self, rank: usize) -> std::ops::Range<usize> {
        let r = rank as i64;
        let clamp = |a: i64| (if a < 0 { a + r } else { a }).clamp(0, r) as usize;
        let start = clamp(self.start);
        let end = clamp(self.end.unwrap_or(r));
        start..end.max(start)
    }
}

impl OpDef for Shape {
    fn name(&self) -> &'static str {
        "Shape"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        Ok(vec![Fact::new(DType::I64, &[self.range(ins[0].fact.rank()).len()])])
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n() -> Dim {
        Dim::Sym("N".into())
    }
    fn f(v: usize) -> Dim {
        Dim::Fixed(v)
    }
    fn infer(op: &dyn OpDef, fact: Fact) -> OpResult<Vec<Fact>> {
        op.infer(&[InFact { fact: &fact, value: None }])
    }

    #[test]
    fn reshape_resolves_copy_and_infer_with_cancelling_symbols() {
        let x = [n(), f(3), f(4), f(5)];
        let out = resolve_reshape(&x, &[ShapeSpec::Dim(n()), ShapeSpec::Infer]).unwrap();
        assert_eq!(out, vec![n(), f(60)]);
        let out = resolve_reshape(&x, &[ShapeSpec::Copy, ShapeSpec::Copy, ShapeSpec::Infer]).unwrap();
        assert_eq!(out, vec![n(), f(3), f(20)]);
        let out = resolve_reshape(&x, &[ShapeSpec::Infer, ShapeSpec::Dim(f(60))]).unwrap();
        assert_eq!(out, vec![n(), f(60)]);
        // Merging the batch with fixed axes gives a product dimension.
        assert_eq!(resolve_reshape(&x, &[ShapeSpec::Infer]).unwrap(), vec![Dim::Sym("N*60".into())]);
        assert!(resolve_reshape(&x, &[ShapeSpec::Copy, ShapeSpec::Dim(f(7)), ShapeSpec::Infer]).is_err());
        assert!(resolve_reshape(&x, &[ShapeSpec::Infer, ShapeSpec::Infer]).is_err());
    }

    #[test]
    fn reshape_infers_and_rejects_bad_volumes() {
        let op = Reshape { shape: vec![n(), f(2), f(6)] };
        let out = infer(&op, Fact::dims(DType::F32, vec![n(), f(12)])).unwrap();
        assert_eq!(out[0].shape, vec![n(), f(2), f(6)]);
        let err = infer(&op, Fact::dims(DType::F32, vec![n(), f(13)])).unwrap_err();
        assert!(err.to_string().contains("cannot reshape [N, 13] to [N, 2, 6]"), "{err}");
    }

    #[test]
    fn reshape_axes_group_merges_and_splits() {
        // Channel shuffle: [N, 8, 4] -> [N, 2, 4, 4].
        let m = reshape_axes(&[n(), f(8), f(4)], &[n(), f(2), f(4), f(4)]);
        assert_eq!(
            m.rels,
            vec![
                AxisRel::Same(Port::input(0, 0), Port::output(0, 0)),
                AxisRel::Reshape {
                    merged: Port::input(0, 1),
                    split: vec![Port::output(0, 1), Port::output(0, 2)]
                },
                AxisRel::Same(Port::input(0, 2), Port::output(0, 3)),
            ]
        );
        // Flatten: [N, 4, 2, 2] -> [N, 16].
        let op = Flatten { axis: 1 };
        let x = Fact::dims(DType::F32, vec![n(), f(4), f(2), f(2)]);
        let y = infer(&op, x.clone()).unwrap();
        assert_eq!(y[0].shape, vec![n(), f(16)]);
        let m = op.axes(&[&x], &[&y[0]]);
        assert_eq!(
            m.rels[1],
            AxisRel::Reshape {
                merged: Port::output(0, 1),
                split: (1..4).map(|a| Port::input(0, a)).collect()
            }
        );
        // [6, 4] -> [4, 6]: indices mixed.
        let m = reshape_axes(&[f(6), f(4)], &[f(4), f(6)]);
        assert!(m.rels.iter().all(|r| matches!(r, AxisRel::Pinned(_))), "{m:?}");
    }

    #[test]
    fn flatten_of_a_symbolic_batch_at_axis_0_gives_a_product_dimension() {
        let y = infer(&Flatten { axis: 0 }, Fact::dims(DType::F32, vec![n(), f(3)])).unwrap();
        assert_eq!(y[0].shape, vec![f(1), Dim::Sym("N*3".into())]);
        let y = infer(&Flatten { axis: -1 }, Fact::new(DType::F32, &[2, 3, 4])).unwrap();
        assert_eq!(y[0].shape, vec![f(6), f(4)]);
        assert!(infer(&Flatten { axis: 4 }, Fact::new(DType::F32, &[2, 3, 4])).is_err());
    }

    #[test]
    fn transpose_permutes_and_checks_perm() {
        let op = Transpose { perm: vec![0, 2, 1] };
        let y = infer(&op, Fact::dims(DType::F32, vec![n(), f(3), f(4)])).unwrap();
        assert_eq!(y[0].shape, vec![n(), f(4), f(3)]);
        let err = infer(&Transpose { perm: vec![0, 0, 1] }, Fact::new(DType::F32, &[1, 2, 3])).unwrap_err();
        assert!(err.to_string().contains("perm"), "{err}");
        let m = op.axes(&[], &[]);
        assert!(m.rels.contains(&AxisRel::Same(Port::input(0, 2), Port::output(0, 1))));
    }

    #[test]
    fn squeeze_and_unsqueeze() {
        let x = Fact::dims(DType::F32, vec![n(), f(1), f(3), f(1)]);
        let y = infer(&Squeeze { axes: vec![] }, x.clone()).unwrap();
        assert_eq!(y[0].shape, vec![n(), f(3)]);
        let y = infer(&Squeeze { axes: vec![-1] }, x.clone()).unwrap();
        assert_eq!(y[0].shape, vec![n(), f(1), f(3)]);
        let err = infer(&Squeeze { axes: vec![2] }, x.clone()).unwrap_err();
        assert!(err.to_string().contains("size is not 1"), "{err}");
        let u = Unsqueeze { axes: vec![0, -1] };
        let y = infer(&u, Fact::dims(DType::F32, vec![n(), f(3)])).unwrap();
        assert_eq!(y[0].shape, vec![f(1), n(), f(3), f(1)]);
        assert!(infer(&Unsqueeze { axes: vec![1, 1] }, x).is_err());
        let m = u.axes(&[&Fact::dims(DType::F32, vec![n(), f(3)])], &[&y[0]]);
        assert_eq!(
            m.rels,
            vec![
                AxisRel::Same(Port::input(0, 0), Port::output(0, 1)),
                AxisRel::Same(Port::input(0, 1), Port::output(0, 2))
            ]
        );
    }

    #[test]
    fn expand_broadcasts_both_ways() {
        let op = Expand { shape: vec![f(2), f(1), f(4)] };
        let y = infer(&op, Fact::dims(DType::F32, vec![n(), f(1)])).unwrap();
        assert_eq!(y[0].shape, vec![f(2), n(), f(4)]);
        assert!(infer(&op, Fact::new(DType::F32, &[3, 3])).is_err());
    }

    #[test]
    fn shape_ranges_clamp() {
        let x = Fact::dims(DType::F32, vec![n(), f(3), f(4)]);
        assert_eq!(infer(&Shape { start: 0, end: None }, x.clone()).unwrap()[0], Fact::new(DType::I64, &[3]));
        assert_eq!(Shape { start: -2, end: Some(100) }.range(3), 1..3);
        assert_eq!(Shape { start: 2, end: Some(1) }.range(3), 2..2);
    }
}
