//! Evaluation of pooling and nearest-neighbour resizing.

use super::conv::infer_fixed;
use super::{f32_input, Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::pool::*;
use shrink_graph::{Dim, Tensor};

/// Pad a per-spatial-axis list to three entries by prepending `fill`.
fn three(v: &[usize], fill: usize) -> Result<[usize; 3], EvalError> {
    if v.len() > 3 {
        return Err(EvalError::op(format!("{} spatial axes; at most 3 are supported", v.len())));
    }
    let mut r = [fill; 3];
    r[3 - v.len()..].copy_from_slice(v);
    Ok(r)
}

/// The input positions of one window along one axis: every `dil`-th position from `start`
/// (may be negative: padding) over `kernel` taps; returns (valid positions, taps inside the
/// padded range `[-pad_begin, size + pad_end)`).
fn taps(start: isize, kernel: usize, dil: usize, size: usize, pad_end: usize) -> (Vec<usize>, usize) {
    let mut valid = Vec::with_capacity(kernel);
    let mut padded = 0;
    for k in 0..kernel {
        let p = start + (k * dil) as isize;
        if p < size as isize + pad_end as isize {
            padded += 1;
        }
        if p >= 0 && (p as usize) < size {
            valid.push(p as usize);
        }
    }
    (valid, padded)
}

impl Eval for Pool {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let out_shape = infer_fixed(self, ins)?.remove(0);
        let x = f32_input(ins, 0)?;
        let ns = out_shape.len() - 2;
        let inp = three(&ins[0].shape[2..], 1)?;
        let out = three(&out_shape[2..], 1)?;
        let k = three(&self.kernel, 1)?;
        let st = three(&self.strides, 1)?;
        let dil = three(&self.dilations, 1)?;
        let pb = three(&self.pads[..ns], 0)?;
        let pe = three(&self.pads[ns..], 0)?;
        // Window taps of every output position along each axis.
        let axis_taps: Vec<Vec<(Vec<usize>, usize)>> = (0..3)
            .map(|a| {
                (0..out[a])
                    .map(|o| taps((o * st[a]) as isize - pb[a] as isize, k[a], dil[a], inp[a], pe[a]))
                    .collect()
            })
            .collect();
        let planes = out_shape[0] * out_shape[1];
        let (isz, osz): (usize, usize) = (inp.iter().product(), out.iter().product());
        let mut y = Vec::with_capacity(planes * osz);
        for p in 0..planes {
            let xp = &x[p * isz..][..isz];
            for (td, cd) in &axis_taps[0] {
                for (th, ch) in &axis_taps[1] {
                    for (tw, cw) in &axis_taps[2] {
                        let mut acc = if self.kind == PoolKind::Max { f32::NEG_INFINITY } else { 0.0 };
                        for &d in td {
                            for &h in th {
                                let row = &xp[(d * inp[1] + h) * inp[2]..][..inp[2]];
                                for &w in tw {
                                    match self.kind {
                                        PoolKind::Max => acc = acc.max(row[w]),
                                        PoolKind::Avg => acc += row[w],
                                    }
                                }
                            }
                        }
                        if self.kind == PoolKind::Avg {
                            let count = if self.count_include_pad {
                                cd * ch * cw
                            } else {
                                td.len() * th.len() * tw.len()
                            };
                            acc /= count.max(1) as f32;
                        }
                        y.push(acc);
                    }
                }
            }
        }
        Ok(vec![Tensor::f32(out_shape, y)])
    }
}

impl Eval for GlobalPool {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let out_shape = infer_fixed(self, ins)?.remove(0);
        let x = f32_input(ins, 0)?;
        let plane: usize = ins[0].shape[2..].iter().product();
        let y = x
            .chunks(plane)
            .map(|c| match self.kind {
                PoolKind::Max => c.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                PoolKind::Avg => (c.iter().map(|&v| v as f64).sum::<f64>() / plane as f64) as f32,
            })
            .collect();
        Ok(vec![Tensor::f32(out_shape, y)])
    }
}

impl Eval for Resize {
    fn eval(&self, ins: &[&Tensor], ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        // Symbolic sizes (an unchanged batch) become the input's own sizes.
        let op = Resize {
            sizes: match &self.sizes {
                None => None,
                Some(s) => Some(s.iter().map(|d| ctx.dim(d).map(Dim::Fixed)).collect::<Result<_, _>>()?),
            },
            ..self.clone()
        };
        let out_shape = infer_fixed(&op, ins)?.remove(0);
        let x = f32_input(ins, 0)?;
        let in_shape = &ins[0].shape;
        let rank = in_shape.len();
        if x.is_empty() {
            return Ok(vec![Tensor::f32(out_shape.clone(), vec![0.0; out_shape.iter().product()])]);
        }
        // Source index of every output index, per axis.
        let maps: Vec<Vec<usize>> = (0..rank)
            .map(|a| {
                let (li, lo) = (in_shape[a], out_shape[a]);
                let scale = op.scales[a];
                (0..lo)
                    .map(|o| shrink_graph::ops::pool::nearest_source(op.coord, op.nearest, o, scale, li, lo))
                    .collect()
            })
            .collect();
        let mut in_strides = vec![1usize; rank];
        for a in (0..rank.saturating_sub(1)).rev() {
            in_strides[a] = in_strides[a + 1] * in_shape[a + 1];
        }
        let total: usize = out_shape.iter().product();
        let mut y = Vec::with_capacity(total);
        let mut idx = vec![0usize; rank];
        let mut src: usize = (0..rank).map(|a| maps[a].first().copied().unwrap_or(0) * in_strides[a]).sum();
        for _ in 0..total {
            y.push(x[src]);
            for a in (0..rank).rev() {
                src -= maps[a][idx[a]] * in_strides[a];
                idx[a] += 1;
                if idx[a] < out_shape[a] {
                    src += maps[a][idx[a]] * in_strides[a];
                    break;
                }
                idx[a] = 0;
                src += maps[a][0] * in_strides[a];
            }
        }
        Ok(vec![Tensor::f32(out_shape, y)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> EvalCtx {
        EvalCtx::default()
    }

    #[test]
    fn pools_with_padding_and_ceil_mode() {
        let x = Tensor::f32(vec![1, 1, 1, 5], vec![1.0, 5.0, 2.0, 4.0, 3.0]);
        let base = Pool {
            kind: PoolKind::Max,
            kernel: vec![1, 2],
            strides: vec![1, 2],
            pads: vec![0, 1, 0, 0],
            dilations: vec![1, 1],
            ceil_mode: true,
            count_include_pad: false,
        };
        let y = base.eval(&[&x], &ctx()).unwrap().remove(0);
        assert_eq!(y.as_f32().unwrap(), &[1.0, 5.0, 4.0]);
        let avg = Pool { kind: PoolKind::Avg, ..base.clone() };
        assert_eq!(avg.eval(&[&x], &ctx()).unwrap()[0].as_f32().unwrap(), &[1.0, 3.5, 3.5]);
        let incl = Pool { count_include_pad: true, ..avg };
        assert_eq!(incl.eval(&[&x], &ctx()).unwrap()[0].as_f32().unwrap(), &[0.5, 3.5, 3.5]);
    }

    #[test]
    fn global_pools_reduce_spatial_axes() {
        let x = Tensor::f32(vec![1, 2, 2], vec![1.0, 3.0, -1.0, -2.0]);
        let y = GlobalPool { kind: PoolKind::Avg }.eval(&[&x], &ctx()).unwrap().remove(0);
        assert_eq!((y.shape.clone(), y.as_f32().unwrap().to_vec()), (vec![1, 2, 1], vec![2.0, -1.5]));
        let y = GlobalPool { kind: PoolKind::Max }.eval(&[&x], &ctx()).unwrap().remove(0);
        assert_eq!(y.as_f32().unwrap(), &[3.0, -1.0]);
    }

    #[test]
    fn resize_nearest_modes() {
        let x = Tensor::f32(vec![1, 3], vec![1.0, 2.0, 3.0]);
        let op = Resize {
            scales: vec![1.0, 2.0],
            sizes: None,
            coord: CoordMode::Asymmetric,
            nearest: NearestMode::Floor,
        };
        let y = op.eval(&[&x], &ctx()).unwrap().remove(0);
        assert_eq!(y.as_f32().unwrap(), &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        let hp = Resize { coord: CoordMode::HalfPixel, nearest: NearestMode::RoundPreferCeil, ..op.clone() };
        // Half pixel: coordinates −0.25, 0.25, 0.75, 1.25, 1.75, 2.25.
        assert_eq!(hp.eval(&[&x], &ctx()).unwrap()[0].as_f32().unwrap(), &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        let sized = Resize {
            sizes: Some(vec![Dim::Sym("N".into()), Dim::Fixed(2)]),
            scales: vec![1.0, 2.0 / 3.0],
            ..op
        };
        let mut c = ctx();
        c.syms.insert("N".into(), 1);
        assert_eq!(sized.eval(&[&x], &c).unwrap()[0].as_f32().unwrap(), &[1.0, 2.0]);
    }
}
