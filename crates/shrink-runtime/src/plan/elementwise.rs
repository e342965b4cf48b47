//! Element-wise f32 steps: `Add` (same shapes, or NumPy broadcasting of either operand) with
//! a fused ReLU / Clip, a standalone ReLU / Clip, and the data movement around residual
//! shortcuts (Slice with steps, constant Pad; [`super::layout`]). They write into the session's arena like
//! the kernel steps (no allocation per call) and split large tensors over rayon's pool.
//!
//! Where an `Add` reads a convolution's output and nothing else reads that output, the plan
//! fuses it into the convolution instead (a residual input, see [`super::Plan::compile`]).

use super::epilogue::Epilogue;
use super::layout;
use crate::eval::binary::Broadcast;
use rayon::prelude::*;
use shrink_graph::ops::binary::BinaryKind;
use shrink_graph::ops::combine::Slice;
use shrink_graph::{DType, Graph, Op, ValueId};

/// Elements below which an element-wise step runs on the calling thread.
const PAR_MIN: usize = 1 << 15;
/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;

/// What an element-wise (or data-movement) step computes.
#[derive(Debug, Clone, PartialEq)]
pub enum ElementwiseStep {
    /// `epilogue(a + b)` with NumPy broadcasting (inputs `[a, b]`).
    Add { epilogue: Epilogue },
    /// `epilogue(x)`: a ReLU or Clip that no producer could absorb (input `[x]`).
    Activation(Epilogue),
    /// A Slice (any steps) of `x` ([`layout::slice`]).
    Slice(Slice),
    /// A constant Pad of `x` ([`layout::pad`]).
    Pad { pads: Vec<i64>, value: f32 },
}

impl ElementwiseStep {
    /// The kernel name shown in per-layer tables.
    pub fn kernel_name(&self) -> &'static str {
        match self {
            ElementwiseStep::Add { .. } => "f32-add",
            ElementwiseStep::Activation(_) => "f32-activation",
            ElementwiseStep::Slice(_) => "f32-slice",
            ElementwiseStep::Pad { .. } => "f32-pad",
        }
    }

    /// The epilogue (for the `+relu` suffix).
    pub fn epilogue(&self) -> Epilogue {
        match self {
            ElementwiseStep::Add { epilogue } => *epilogue,
            ElementwiseStep::Activation(e) => *e,
            ElementwiseStep::Slice(_) | ElementwiseStep::Pad { .. } => Epilogue::None,
        }
    }

    /// Run on `ins` (of shapes `shapes`) into `out` (the broadcast shape's volume).
    pub fn run(&self, ins: &[&[f32]], shapes: &[&[usize]], out: &mut [f32]) -> Result<(), String> {
        match (self, ins, shapes) {
            (ElementwiseStep::Activation(ep), [x], _) => {
                if x.len() != out.len() {
                    return Err(format!("input has {} values, {} expected", x.len(), out.len()));
                }
                chunks(out, |o, off| {
                    o.copy_from_slice(&x[off..off + o.len()]);
                    ep.apply(o);
                });
                Ok(())
            }
            (ElementwiseStep::Add { epilogue }, [a, b], [sa, sb]) => add(a, sa, b, sb, *epilogue, out),
            (ElementwiseStep::Slice(op), [x], [s]) => layout::slice(op, x, s, out),
            (ElementwiseStep::Pad { pads, value }, [x], [s]) => layout::pad(pads, *value, x, s, out),
            _ => Err("element-wise step: wrong number of inputs".into()),
        }
    }
}

/// `f(chunk, offset)` over `out` in chunks, in parallel when it is large.
fn chunks(out: &mut [f32], f: impl Fn(&mut [f32], usize) + Sync + Send) {
    if out.len() >= PAR_MIN && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(i, o)| f(o, i * CHUNK));
    } else {
        f(out, 0);
    }
}

/// `out = ep(a + b)`: equal lengths as one vectorizable loop; otherwise row by row of the
/// broadcast (each row has a constant or a contiguous run on either side).
fn add(
    a: &[f32],
    sa: &[usize],
    b: &[f32],
    sb: &[usize],
    ep: Epilogue,
    out: &mut [f32],
) -> Result<(), String> {
    if sa == sb {
        if a.len() != out.len() || b.len() != out.len() {
            return Err(format!("inputs have {} and {} values, {} expected", a.len(), b.len(), out.len()));
        }
        chunks(out, |o, off| {
            let n = o.len();
            for ((o, x), y) in o.iter_mut().zip(&a[off..off + n]).zip(&b[off..off + n]) {
                *o = x + y;
            }
            ep.apply(o);
        });
        return Ok(());
    }
    let bc = Broadcast::new([sa, sb]).map_err(|e| e.to_string())?;
    if bc.len() != out.len()
        || a.len() != sa.iter().product::<usize>()
        || b.len() != sb.iter().product::<usize>()
    {
        return Err(format!("shapes {sa:?} + {sb:?} do not give {} values", out.len()));
    }
    let mut pos = 0;
    bc.for_each_row(|[oa, ob], len, st| {
        let o = &mut out[pos..pos + len];
        match st {
            [1, 1] => {
                o.iter_mut().zip(&a[oa..oa + len]).zip(&b[ob..ob + len]).for_each(|((o, x), y)| *o = x + y)
            }
            [1, 0] => o.iter_mut().zip(&a[oa..oa + len]).for_each(|(o, x)| *o = x + b[ob]),
            [0, 1] => o.iter_mut().zip(&b[ob..ob + len]).for_each(|(o, y)| *o = a[oa] + y),
            [s, t] => o.iter_mut().enumerate().for_each(|(i, o)| *o = a[oa + i * s] + b[ob + i * t]),
        }
        ep.apply(o);
        pos += len;
    });
    Ok(())
}

/// The element-wise step of node `op` reading `ins`, when every value is f32 and the op is an
/// `Add` of two inputs or a ReLU / Clip.
pub fn lower(g: &Graph, op: &Op, ins: &[ValueId], outs: &[ValueId]) -> Option<ElementwiseStep> {
    let f32v = |v: &ValueId| g.values[*v].fact.dtype == DType::F32;
    if outs.len() != 1 || !ins.iter().all(f32v) || !outs.iter().all(f32v) {
        return None;
    }
    match op {
        Op::Binary(b) if b.kind == BinaryKind::Add && ins.len() == 2 => {
            Some(ElementwiseStep::Add { epilogue: Epilogue::None })
        }
        Op::Slice(sl) if ins.len() == 1 && g.values[ins[0]].fact.rank() <= layout::MAX_RANK => {
            Some(ElementwiseStep::Slice(sl.clone()))
        }
        Op::Pad(p) if ins.len() == 1 && layout::pad_is_native(p.mode, g.values[ins[0]].fact.rank()) => {
            Some(ElementwiseStep::Pad { pads: p.pads.clone(), value: p.value })
        }
        _ if ins.len() == 1 => Epilogue::of(op).map(ElementwiseStep::Activation),
        _ => None,
    }
}
