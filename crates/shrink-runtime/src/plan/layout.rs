//! Native f32 Slice (any steps) and constant Pad: strided copies from the input (wherever it
//! lives) into the step's arena slot, row by row, with no allocation per call. Other pad modes
//! and ranks above [`MAX_RANK`] keep the reference evaluation.

use shrink_graph::ops::combine::{PadMode, Slice};

/// Largest rank the native copies handle.
pub const MAX_RANK: usize = 8;

/// Row-major strides of `shape` (elements).
fn strides(shape: &[usize]) -> [isize; MAX_RANK] {
    let mut st = [0isize; MAX_RANK];
    let mut s = 1isize;
    for a in (0..shape.len()).rev() {
        st[a] = s;
        s *= shape[a] as isize;
    }
    st
}

/// `out[i…] = src[off + Σ i_a·st_a]` over the output `shape`, one innermost row at a time.
fn gather(src: &[f32], off: isize, st: &[isize], shape: &[usize], out: &mut [f32]) -> Result<(), String> {
    let r = shape.len();
    let total: usize = shape.iter().product();
    if out.len() != total {
        return Err(format!("output has {} values, the slice {total}", out.len()));
    }
    if total == 0 {
        return Ok(());
    }
    if r == 0 {
        out[0] = src[off as usize];
        return Ok(());
    }
    // Every read is inside the source: check the extreme offsets once.
    let (mut lo, mut hi) = (off, off);
    for a in 0..r {
        let span = st[a] * (shape[a] as isize - 1);
        if span < 0 {
            lo += span;
        } else {
            hi += span;
        }
    }
    if lo < 0 || hi as usize >= src.len() {
        return Err(format!("slice reads outside its input of {} values", src.len()));
    }
    let (len, s) = (shape[r - 1], st[r - 1]);
    let mut idx = [0usize; MAX_RANK];
    let mut base = off;
    for row in out.chunks_exact_mut(len) {
        if s == 1 {
            row.copy_from_slice(&src[base as usize..base as usize + len]);
        } else {
            row.iter_mut().enumerate().for_each(|(i, o)| *o = src[(base + i as isize * s) as usize]);
        }
        // Odometer over the outer axes.
        let mut a = r - 1;
        while a > 0 {
            a -= 1;
            idx[a] += 1;
            base += st[a];
            if idx[a] < shape[a] {
                break;
            }
            base -= st[a] * shape[a] as isize;
            idx[a] = 0;
        }
    }
    Ok(())
}

/// Slice `x` of shape `shape` into `out`.
pub fn slice(op: &Slice, x: &[f32], shape: &[usize], out: &mut [f32]) -> Result<(), String> {
    if shape.len() > MAX_RANK || shape.iter().product::<usize>() != x.len() {
        return Err(format!("slice input of shape {shape:?} holds {} values", x.len()));
    }
    let st = strides(shape);
    let mut oshape = [0usize; MAX_RANK];
    oshape[..shape.len()].copy_from_slice(shape);
    let mut sst = st;
    let mut off = 0isize;
    // The axes' kept ranges, as the reference computes them (a handful of entries).
    for r in op.ranges(shape).map_err(|e| e.to_string())? {
        oshape[r.axis] = r.len;
        if r.len > 0 {
            off += r.start as isize * st[r.axis];
        }
        sst[r.axis] = st[r.axis] * r.step as isize;
    }
    gather(x, off, &sst[..shape.len()], &oshape[..shape.len()], out)
}

/// Constant-pad (or crop, for negative pads) `x` of shape `shape` into `out`.
pub fn pad(pads: &[i64], value: f32, x: &[f32], shape: &[usize], out: &mut [f32]) -> Result<(), String> {
    let r = shape.len();
    if r > MAX_RANK || pads.len() != 2 * r || shape.iter().product::<usize>() != x.len() {
        return Err(format!("pads {pads:?} do not fit an input of shape {shape:?}"));
    }
    let mut oshape = [0usize; MAX_RANK];
    for a in 0..r {
        let n = shape[a] as i64 + pads[a] + pads[a + r];
        if n < 0 {
            return Err(format!("pads {pads:?} do not fit an input of shape {shape:?}"));
        }
        oshape[a] = n as usize;
    }
    let total: usize = oshape[..r].iter().product();
    if out.len() != total {
        return Err(format!("output has {} values, the padded input {total}", out.len()));
    }
    if total == 0 {
        return Ok(());
    }
    if r == 0 {
        out[0] = x[0];
        return Ok(());
    }
    let st = strides(shape);
    let (d, b, n) = (shape[r - 1] as i64, pads[r - 1], oshape[r - 1] as i64);
    // Output columns [lo, hi) read input columns lo − b ..; the rest is the constant.
    let (lo, hi) = (b.max(0).min(n), (d + b).min(n).max(b.max(0).min(n)));
    let mut idx = [0usize; MAX_RANK];
    for row in out.chunks_exact_mut(n as usize) {
        // The input row, unless an outer index falls in the padding.
        let mut base = Some(0isize);
        for a in 0..r - 1 {
            let i = idx[a] as i64 - pads[a];
            base = match base {
                Some(o) if (0..shape[a] as i64).contains(&i) => Some(o + i as isize * st[a]),
                _ => None,
            };
        }
        match base {
            Some(o) if hi > lo => {
                let (lo, hi) = (lo as usize, hi as usize);
                row[..lo].fill(value);
                let s = (o + lo as isize - b as isize) as usize;
                row[lo..hi].copy_from_slice(&x[s..s + (hi - lo)]);
                row[hi..].fill(value);
            }
            _ => row.fill(value),
        }
        let mut a = r - 1;
        while a > 0 {
            a -= 1;
            idx[a] += 1;
            if idx[a] < oshape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    Ok(())
}

/// Whether a Pad runs natively: constant mode, rank within [`MAX_RANK`].
pub fn pad_is_native(mode: PadMode, rank: usize) -> bool {
    mode == PadMode::Constant && rank <= MAX_RANK
}
