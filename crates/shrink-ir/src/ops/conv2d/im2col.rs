//! Data movement for the im2col path: im2col panels / rows and col2im scatter-adds.
use super::geom::Geom;
use super::kernels::{copy, zero};

/// Range of output columns `ox` whose input column `ox*sw + kx - pw` lies in `[0, w)`.
#[inline]
fn valid_ox(g: &Geom, kx: usize) -> (usize, usize) {
    let lo = if g.pw > kx { (g.pw - kx).div_ceil(g.sw) } else { 0 };
    let hi = if g.w + g.pw > kx { (g.w - 1 + g.pw - kx) / g.sw + 1 } else { 0 };
    (lo.min(g.ow), hi.min(g.ow).max(lo.min(g.ow)))
}

/// Calls `f(dst_offset, oy, ox_a, ox_b)` for the runs of output pixels `[p0, p0+cnt)` that stay
/// on one output row.
#[inline]
fn for_segments(ow: usize, p0: usize, cnt: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
    let mut p = p0;
    let end = p0 + cnt;
    while p < end {
        let oy = p / ow;
        let ox_a = p - oy * ow;
        let ox_b = (ow).min(ox_a + (end - p));
        f(p - p0, oy, ox_a, ox_b);
        p += ox_b - ox_a;
    }
}

/// Fills `dst[..cnt]` with the im2col row of tap `(ky, kx)` of the input plane `xc`
/// (`h x w`) for output pixels `[p0, p0+cnt)`, and `dst[cnt..]` with zeros.
pub(crate) fn im2col_row(dst: &mut [f32], xc: &[f32], g: &Geom, ky: usize, kx: usize, p0: usize, cnt: usize) {
    let (lo, hi) = valid_ox(g, kx);
    for_segments(g.ow, p0, cnt, |d, oy, ox_a, ox_b| {
        let seg = &mut dst[d..d + (ox_b - ox_a)];
        let iy = (oy * g.sh + ky) as isize - g.ph as isize;
        if iy < 0 || iy >= g.h as isize {
            zero(seg);
            return;
        }
        let row = &xc[iy as usize * g.w..][..g.w];
        let a = lo.clamp(ox_a, ox_b);
        let b = hi.clamp(a, ox_b);
        zero(&mut seg[..a - ox_a]);
        zero(&mut seg[b - ox_a..]);
        if b > a {
            let ix0 = a * g.sw + kx - g.pw;
            let out = &mut seg[a - ox_a..b - ox_a];
            if g.sw == 1 {
                copy(out, &row[ix0..ix0 + (b - a)]);
            } else {
                for (t, o) in out.iter_mut().enumerate() {
                    *o = row[ix0 + t * g.sw];
                }
            }
        }
    });
    zero(&mut dst[cnt..]);
}

/// Adds `src[..cnt]`, a col row of tap `(ky, kx)` for output pixels `[p0, p0+cnt)`, into the
/// input-gradient plane `dxc` (`h x w`); padded positions are dropped.
pub(crate) fn col2im_row(
    src: &[f32],
    dxc: &mut [f32],
    g: &Geom,
    ky: usize,
    kx: usize,
    p0: usize,
    cnt: usize,
) {
    let (lo, hi) = valid_ox(g, kx);
    for_segments(g.ow, p0, cnt, |d, oy, ox_a, ox_b| {
        let iy = (oy * g.sh + ky) as isize - g.ph as isize;
        if iy < 0 || iy >= g.h as isize {
            return;
        }
        let row = &mut dxc[iy as usize * g.w..][..g.w];
        let (a, b) = (ox_a.max(lo), ox_b.min(hi));
        if b <= a {
            return;
        }
        let ix0 = a * g.sw + kx - g.pw;
        let s = &src[d + (a - ox_a)..d + (b - ox_a)];
        if g.sw == 1 {
            for (o, v) in row[ix0..ix0 + (b - a)].iter_mut().zip(s) {
                *o += v;
            }
        } else {
            for (t, v) in s.iter().enumerate() {
                row[ix0 + t * g.sw] += v;
            }
        }
    });
}
