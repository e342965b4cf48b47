//! Candle lowering of the `array` op family: shape ops (Reshape, Flatten, Transpose, Squeeze,
//! Unsqueeze, Expand, Shape) and combining/indexing ops (Concat, Split, Slice, Pad, Gather,
//! Identity). Every lowering is a candle view or an index op with a backward pass (`reshape`,
//! `permute`, `broadcast_as`, `narrow`, `cat`, `index_select`), so gradients reach f32 inputs.
//! Index arithmetic (negative axes and indices, Slice clamping, Pad reflection) follows the
//! runtime (`shrink-runtime/src/eval/{shape,combine}.rs`), which matches onnxruntime.

use super::{Lower, LowerCtx};
use crate::error::{IrError, Result};
use candle_core::{DType as CDType, Device, Tensor};
use shrink_graph::fact::normalize_axis;
use shrink_graph::ops::combine::{Concat, Gather, Identity, Pad, PadMode, Slice, Split};
use shrink_graph::ops::shape::{Expand, Flatten, Reshape, Shape, Squeeze, Transpose, Unsqueeze};
use shrink_graph::Dim;

/// Input `k`, or a one-line error naming it.
fn input<'a>(ins: &[&'a Tensor], k: usize) -> Result<&'a Tensor> {
    ins.get(k).copied().ok_or_else(|| IrError::Invalid(format!("missing input {k}")))
}

/// `axis` (negative from the end) resolved against `rank`.
fn axis_of(axis: i64, rank: usize) -> Result<usize> {
    normalize_axis(axis, rank).map_err(|e| IrError::Invalid(e.to_string()))
}

/// `x` under another shape with the same number of elements.
fn reshaped(x: &Tensor, shape: Vec<usize>) -> Result<Tensor> {
    if shape.iter().product::<usize>() != x.elem_count() {
        return Err(IrError::Invalid(format!("cannot reshape {:?} to {shape:?}", x.dims())));
    }
    Ok(x.reshape(shape)?)
}

/// A 1-D i64 index tensor on `device`.
fn index_tensor(ids: Vec<i64>, device: &Device) -> Result<Tensor> {
    let n = ids.len();
    Ok(Tensor::from_vec(ids, n, device)?)
}

/// Elements of `x` along `axis` at positions `ids` (each in range). An empty selection is a
/// zero-length `narrow` (index ops reject empty index lists on some backends).
fn select(x: &Tensor, axis: usize, ids: Vec<i64>) -> Result<Tensor> {
    let d = x.dims()[axis];
    if ids.is_empty() {
        return Ok(x.narrow(axis, 0, 0)?);
    }
    // A contiguous ascending run is a view.
    let start = ids[0];
    if ids.iter().enumerate().all(|(k, &i)| i == start + k as i64) {
        return Ok(x.narrow(axis, start as usize, ids.len())?);
    }
    debug_assert!(ids.iter().all(|&i| (0..d as i64).contains(&i)));
    Ok(x.index_select(&index_tensor(ids, x.device())?, axis)?)
}

/// A tensor of `shape` filled with `value`, of `x`'s dtype (f32 → i64 truncates, as the runtime).
fn filled(x: &Tensor, shape: &[usize], value: f32) -> Result<Tensor> {
    let dev = x.device();
    Ok(match x.dtype() {
        CDType::I64 => Tensor::full(value as i64, shape, dev)?,
        CDType::U8 => Tensor::full((value != 0.0) as u8, shape, dev)?,
        CDType::F32 => Tensor::full(value, shape, dev)?,
        d => Tensor::full(value, shape, dev)?.to_dtype(d)?,
    })
}

impl Lower for Reshape {
    fn lower(&self, ins: &[&Tensor], ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Ok(vec![reshaped(input(ins, 0)?, ctx.dims(&self.shape)?)?])
    }
}

impl Lower for Flatten {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let x = input(ins, 0)?;
        let dims: Vec<Dim> = x.dims().iter().map(|&d| Dim::Fixed(d)).collect();
        let out = self.out_shape(&dims).map_err(|e| IrError::Invalid(e.to_string()))?;
        let shape = out.iter().map(|d| d.fixed().unwrap_or(0)).collect();
        Ok(vec![reshaped(x, shape)?])
    }
}

impl Lower for Transpose {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let x = input(ins, 0)?;
        let r = x.rank();
        let mut seen = vec![false; r];
        if self.perm.len() != r || self.perm.iter().any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
        {
            return Err(IrError::Invalid(format!("perm {:?} does not fit shape {:?}", self.perm, x.dims())));
        }
        if self.perm.iter().enumerate().all(|(k, &p)| k == p) {
            return Ok(vec![x.clone()]);
        }
        Ok(vec![x.permute(self.perm.clone())?])
    }
}

impl Lower for Squeeze {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let x = input(ins, 0)?;
        let removed: Vec<usize> = if self.axes.is_empty() {
            (0..x.rank()).filter(|&k| x.dims()[k] == 1).collect()
        } else {
            let dims: Vec<Dim> = x.dims().iter().map(|&d| Dim::Fixed(d)).collect();
            self.removed(&dims).map_err(|e| IrError::Invalid(e.to_string()))?
        };
        let shape = (0..x.rank()).filter(|k| !removed.contains(k)).map(|k| x.dims()[k]).collect();
        Ok(vec![reshaped(x, shape)?])
    }
}

impl Lower for Unsqueeze {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let x = input(ins, 0)?;
        let inserted = self.inserted(x.rank()).map_err(|e| IrError::Invalid(e.to_string()))?;
        let mut src = x.dims().iter();
        let shape = (0..x.rank() + inserted.len())
            .map(|k| if inserted.contains(&k) { 1 } else { src.next().copied().unwrap_or(1) })
            .collect();
        Ok(vec![reshaped(x, shape)?])
    }
}

/// NumPy broadcast of two concrete shapes (ONNX Expand broadcasts both ways).
fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    shrink_graph::fact::broadcast_fixed(a, b).map_err(IrError::Invalid)
}

impl Lower for Expand {
    fn lower(&self, ins: &[&Tensor], ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let x = input(ins, 0)?;
        let target: Vec<usize> = match ins.get(1) {
            Some(s) => s
                .flatten_all()?
                .to_dtype(CDType::I64)?
                .to_vec1::<i64>()?
                .into_iter()
                .map(|v| {
                    usize::try_from(v).map_err(|_| IrError::Invalid(format!("shape element {v} is negative")))
                })
                .collect::<Result<_>>()?,
            None => ctx.dims(&self.shape)?,
        };
        let shape = broadcast(x.dims(), &target)?;
        if shape == x.dims() {
            return Ok(vec![x.clone()]);
        }
        Ok(vec![x.broadcast_as(shape)?])
    }
}

impl Lower for Shape {
    fn lower(&self, ins: &[&Tensor], ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let x = input(ins, 0)?;
        let dims: Vec<i64> = x.dims()[self.range(x.rank())].iter().map(|&d| d as i64).collect();
        Ok(vec![index_tensor(dims, ctx.device)?])
    }
}

impl Lower for Concat {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let x = input(ins, 0)?;
        let axis = axis_of(self.axis, x.rank())?;
        for (k, t) in ins.iter().enumerate() {
            if t.dtype() != x.dtype() {
                return Err(IrError::Invalid(format!(
                    "inputs mix {:?} and {:?} values",
                    x.dtype(),
                    t.dtype()
                )));
            }
            let same_rank = t.rank() == x.rank();
            if !same_rank || (0..x.rank()).any(|a| a != axis && t.dims()[a] != x.dims()[a]) {
                return Err(IrError::Invalid(format!(
                    "input {k} has shape {:?}, input 0 {:?}",
                    t.dims(),
                    x.dims()
                )));
            }
        }
        if ins.len() == 1 {
            return Ok(vec![x.clone()]);
        }
        Ok(vec![Tensor::cat(ins, axis)?])
    }
}

impl Lower for Split {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let x = input(ins, 0)?;
        let axis = axis_of(self.axis, x.rank())?;
        let d = x.dims()[axis];
        if self.sizes.iter().sum::<usize>() != d {
            return Err(IrError::Invalid(format!(
                "sizes {:?} do not add up to {d}, the size of axis {axis}",
                self.sizes
            )));
        }
        let mut start = 0;
        self.sizes
            .iter()
            .map(|&n| {
                let t = x.narrow(axis, start, n)?;
                start += n;
                Ok(t)
            })
            .collect()
    }
}

impl Lower for Slice {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let mut y = input(ins, 0)?.clone();
        let ranges = self.ranges(y.dims()).map_err(|e| IrError::Invalid(e.to_string()))?;
        for r in ranges {
            let ids = (0..r.len as i64).map(|k| r.start as i64 + k * r.step).collect();
            y = select(&y, r.axis, ids)?;
        }
        Ok(vec![y])
    }
}

/// For each output index of one padded axis, the input index it reads (`None`: the constant),
/// as the runtime's `pad_map`.
fn pad_map(d: usize, begin: i64, out: usize, mode: PadMode) -> Vec<Option<i64>> {
    let d = d as i64;
    (0..out as i64)
        .map(|o| {
            let i = o - begin;
            if (0..d).contains(&i) {
                return Some(i);
            }
            match mode {
                PadMode::Constant => None,
                PadMode::Edge => Some(i.clamp(0, d - 1)),
                PadMode::Reflect if d == 1 => Some(0),
                PadMode::Reflect => {
                    let m = i.rem_euclid(2 * (d - 1));
                    Some(if m >= d { 2 * (d - 1) - m } else { m })
                }
            }
        })
        .collect()
}

impl Lower for Pad {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let x = input(ins, 0)?;
        let r = x.rank();
        if self.pads.len() != 2 * r {
            return Err(IrError::Invalid(format!(
                "pads has {} entries for an input of rank {r}",
                self.pads.len()
            )));
        }
        let mut y = x.clone();
        for a in 0..r {
            let (d, b, e) = (x.dims()[a] as i64, self.pads[a], self.pads[a + r]);
            if b == 0 && e == 0 {
                continue;
            }
            let n = d + b + e;
            let bad_reflect = self.mode == PadMode::Reflect && (b >= d || e >= d);
            if n < 0 || (self.mode != PadMode::Constant && d == 0 && n > 0) || bad_reflect {
                return Err(IrError::Invalid(format!("pads ({b}, {e}) do not fit axis {a} of size {d}")));
            }
            let map = pad_map(d as usize, b, n as usize, self.mode);
            if self.mode != PadMode::Constant {
                y = select(&y, a, map.into_iter().flatten().collect())?;
                continue;
            }
            // Constant: the kept input run (a view), between blocks of the value.
            let kept: Vec<i64> = map.iter().flatten().copied().collect();
            let lead = map.iter().take_while(|m| m.is_none()).count();
            let trail = map.len() - lead - kept.len();
            let mut parts = Vec::with_capacity(3);
            let block = |len: usize, parts: &mut Vec<Tensor>, y: &Tensor| -> Result<()> {
                if len > 0 {
                    let mut shape = y.dims().to_vec();
                    shape[a] = len;
                    parts.push(filled(y, &shape, self.value)?);
                }
                Ok(())
            };
            block(lead, &mut parts, &y)?;
            let mid = select(&y, a, kept)?;
            block(trail, &mut parts, &y)?;
            if mid.dims()[a] > 0 {
                parts.insert(usize::from(lead > 0), mid);
            }
            y = match parts.len() {
                0 => y.narrow(a, 0, 0)?,
                1 => parts.remove(0),
                _ => Tensor::cat(&parts, a)?,
            };
        }
        Ok(vec![y])
    }
}

impl Lower for Gather {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let (data, idx) = (input(ins, 0)?, input(ins, 1)?);
        if data.rank() == 0 {
            return Err(IrError::Invalid("cannot gather from a scalar".into()));
        }
        let axis = axis_of(self.axis, data.rank())?;
        let d = data.dims()[axis] as i64;
        if idx.dtype() != CDType::I64 {
            return Err(IrError::Invalid(format!("indices must be i64, got {:?}", idx.dtype())));
        }
        // Indices are read on the host: negative ones wrap, out-of-range ones are an error
        // (index kernels would read out of bounds on some devices).
        let ids = idx
            .flatten_all()?
            .to_vec1::<i64>()?
            .into_iter()
            .map(|i| {
                let j = if i < 0 { i + d } else { i };
                if (0..d).contains(&j) {
                    Ok(j)
                } else {
                    Err(IrError::Invalid(format!("index {i} is out of range for axis {axis} of size {d}")))
                }
            })
            .collect::<Result<Vec<i64>>>()?;
        let mut shape = data.dims()[..axis].to_vec();
        shape.extend(idx.dims());
        shape.extend(&data.dims()[axis + 1..]);
        let rows = if ids.is_empty() {
            data.narrow(axis, 0, 0)?
        } else {
            data.index_select(&index_tensor(ids, data.device())?, axis)?
        };
        Ok(vec![reshaped(&rows, shape)?])
    }
}

impl Lower for Identity {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Ok(vec![input(ins, 0)?.clone()])
    }
}
