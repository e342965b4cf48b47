//! Dense f32 linear kernel on weights pre-packed in panels of [`NR`] output columns
//! (`[N/NR][K][NR]`, zero-padded): every panel is one contiguous stream, read once per block of
//! up to [`MR`] input rows whose products stay in registers (an outer-product micro-kernel:
//! two 16-lane weight loads and one broadcast per row feed 2·rows FMAs). One layout serves
//! batch 1 (a GEMV streaming the weights once) and larger batches; panels are split over the
//! threads. AVX-512 at run time, a scalar loop elsewhere.

use super::epilogue::Epilogue;
use rayon::prelude::*;

/// Output columns per panel.
pub const NR: usize = 32;
/// Most input rows per register tile.
pub const MR: usize = 12;
/// Inputs per cache block.
pub const KC: usize = 512;

/// `w` (`[N, K]` rows) packed as panels.
pub fn pack(w: &[f32], k: usize, n: usize) -> Vec<f32> {
    let panels = n.div_ceil(NR);
    let mut p = vec![0f32; panels * k * NR];
    for j in 0..n {
        let (pi, c) = (j / NR, j % NR);
        for t in 0..k {
            p[(pi * k + t) * NR + c] = w[j * k + t];
        }
    }
    p
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every task writes only the columns of its own panels.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// `out[rows·n] = x[rows·k] · Wᵀ + b`, then the epilogue.
pub fn run(
    packed: &[f32],
    bias: Option<&[f32]>,
    x: &[f32],
    out: &mut [f32],
    k: usize,
    n: usize,
    ep: Epilogue,
) {
    if n == 0 {
        return;
    }
    let rows = out.len() / n;
    let panels = n.div_ceil(NR);
    assert!(packed.len() >= panels * k * NR && x.len() >= rows * k, "panel kernel: operand too small");
    let ptr = OutPtr(out.as_mut_ptr());
    let task = |pi: usize| {
        let p = ptr;
        let panel = &packed[pi * k * NR..(pi + 1) * k * NR];
        let (j0, cols) = (pi * NR, NR.min(n - pi * NR));
        // SAFETY: row r, columns j0..j0+cols of the rows × n output; panels are disjoint
        // column ranges.
        let row = |r: usize| unsafe { std::slice::from_raw_parts_mut(p.0.add(r * n + j0), cols) };
        let mut tile = [[0f32; NR]; MR];
        // Blocks of KC inputs: a block of x rows and of the panel stay in L2 together.
        let mut k0 = 0;
        while k0 < k || (k == 0 && k0 == 0) {
            let kc = KC.min(k - k0);
            let mut m0 = 0;
            while m0 < rows {
                let mr = MR.min(rows - m0);
                for (r, t) in tile.iter_mut().enumerate().take(mr) {
                    if k0 == 0 {
                        *t = [0.0; NR];
                    } else {
                        t[..cols].copy_from_slice(row(m0 + r));
                    }
                }
                if kc > 0 {
                    tile_product(&x[m0 * k + k0..], k, kc, &panel[k0 * NR..], mr, &mut tile);
                }
                for (r, t) in tile.iter().enumerate().take(mr) {
                    row(m0 + r).copy_from_slice(&t[..cols]);
                }
                m0 += mr;
            }
            k0 += KC.max(1);
        }
        for r in 0..rows {
            let o = row(r);
            if let Some(b) = bias {
                o.iter_mut().zip(&b[j0..j0 + cols]).for_each(|(v, b)| *v += b);
            }
            ep.apply(o);
        }
    };
    if panels > 1 && rows * n * k >= 1 << 16 {
        (0..panels).into_par_iter().for_each(task);
    } else {
        (0..panels).for_each(task);
    }
}

/// `tile[r][c] += Σ_{t<kc} x[r·ldx + t] · panel[t·NR + c]` for `r < mr`.
fn tile_product(x: &[f32], ldx: usize, kc: usize, panel: &[f32], mr: usize, tile: &mut [[f32; NR]; MR]) {
    assert!(
        panel.len() >= kc * NR && (mr == 0 || x.len() >= (mr - 1) * ldx + kc),
        "panel tile: operand too small"
    );
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F is present; the assert above bounds every read.
        unsafe { avx512::tile(x, ldx, kc, panel, mr, tile) };
        return;
    }
    tile_scalar(x, ldx, kc, panel, mr, tile)
}

/// The portable path (and the reference of the SIMD one).
pub fn tile_scalar(x: &[f32], ldx: usize, kc: usize, panel: &[f32], mr: usize, tile: &mut [[f32; NR]; MR]) {
    for (r, row) in tile.iter_mut().enumerate().take(mr) {
        for t in 0..kc {
            let xv = x[r * ldx + t];
            for (o, w) in row.iter_mut().zip(&panel[t * NR..(t + 1) * NR]) {
                *o += xv * w;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile_n<const R: usize>(
        x: *const f32,
        ldx: usize,
        k: usize,
        panel: *const f32,
        tile: &mut [[f32; NR]; MR],
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for (r, a) in acc.iter_mut().enumerate() {
            a[0] = _mm512_loadu_ps(tile[r].as_ptr());
            a[1] = _mm512_loadu_ps(tile[r].as_ptr().add(16));
        }
        for t in 0..k {
            let w0 = _mm512_loadu_ps(panel.add(t * NR));
            let w1 = _mm512_loadu_ps(panel.add(t * NR + 16));
            for (r, a) in acc.iter_mut().enumerate() {
                let xb = _mm512_set1_ps(*x.add(r * ldx + t));
                a[0] = _mm512_fmadd_ps(w0, xb, a[0]);
                a[1] = _mm512_fmadd_ps(w1, xb, a[1]);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(tile[r].as_mut_ptr(), a[0]);
            _mm512_storeu_ps(tile[r].as_mut_ptr().add(16), a[1]);
        }
    }

    /// Batch 1: four independent accumulator pairs over consecutive k (latency hidden).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile_1(x: *const f32, k: usize, panel: *const f32, tile: &mut [[f32; NR]; MR]) {
        let mut acc = [_mm512_setzero_ps(); 8];
        acc[0] = _mm512_loadu_ps(tile[0].as_ptr());
        acc[1] = _mm512_loadu_ps(tile[0].as_ptr().add(16));
        let mut t = 0;
        while t + 4 <= k {
            for u in 0..4 {
                let xb = _mm512_set1_ps(*x.add(t + u));
                acc[2 * u] = _mm512_fmadd_ps(_mm512_loadu_ps(panel.add((t + u) * NR)), xb, acc[2 * u]);
                acc[2 * u + 1] =
                    _mm512_fmadd_ps(_mm512_loadu_ps(panel.add((t + u) * NR + 16)), xb, acc[2 * u + 1]);
            }
            t += 4;
        }
        while t < k {
            let xb = _mm512_set1_ps(*x.add(t));
            acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(panel.add(t * NR)), xb, acc[0]);
            acc[1] = _mm512_fmadd_ps(_mm512_loadu_ps(panel.add(t * NR + 16)), xb, acc[1]);
            t += 1;
        }
        let lo = _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[4], acc[6]));
        let hi = _mm512_add_ps(_mm512_add_ps(acc[1], acc[3]), _mm512_add_ps(acc[5], acc[7]));
        _mm512_storeu_ps(tile[0].as_mut_ptr(), lo);
        _mm512_storeu_ps(tile[0].as_mut_ptr().add(16), hi);
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn tile(
        x: &[f32],
        ldx: usize,
        k: usize,
        panel: &[f32],
        mr: usize,
        tile: &mut [[f32; NR]; MR],
    ) {
        let (x, p) = (x.as_ptr(), panel.as_ptr());
        match mr {
            1 => tile_1(x, k, p, tile),
            2 => tile_n::<2>(x, ldx, k, p, tile),
            3 => tile_n::<3>(x, ldx, k, p, tile),
            4 => tile_n::<4>(x, ldx, k, p, tile),
            5 => tile_n::<5>(x, ldx, k, p, tile),
            6 => tile_n::<6>(x, ldx, k, p, tile),
            7 => tile_n::<7>(x, ldx, k, p, tile),
            8 => tile_n::<8>(x, ldx, k, p, tile),
            9 => tile_n::<9>(x, ldx, k, p, tile),
            10 => tile_n::<10>(x, ldx, k, p, tile),
            11 => tile_n::<11>(x, ldx, k, p, tile),
            _ => tile_n::<12>(x, ldx, k, p, tile),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tile_height_matches_scalar_and_a_naive_product() {
        for (rows, k, n) in
            [(1, 7, 5), (1, 300, 70), (13, 33, 40), (25, 64, 32), (12, 1, 1), (3, 0, 4), (14, 1100, 33)]
        {
            let w: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let x: Vec<f32> = (0..rows * k).map(|i| (i as f32 * 0.13).cos()).collect();
            let b: Vec<f32> = (0..n).map(|j| j as f32 * 0.1).collect();
            let p = pack(&w, k, n);
            let mut out = vec![f32::NAN; rows * n];
            run(&p, Some(&b), &x, &mut out, k, n, Epilogue::None);
            for r in 0..rows {
                for j in 0..n {
                    let want: f32 = (0..k).map(|t| x[r * k + t] * w[j * k + t]).sum::<f32>() + b[j];
                    let got = out[r * n + j];
                    assert!(
                        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{rows}x{k}x{n} [{r},{j}]: {got} vs {want}"
                    );
                }
            }
            // The scalar tile agrees with whatever path `run` took.
            if k > 0 && n > 0 {
                let mut t = [[0f32; NR]; MR];
                let mr = rows.min(MR);
                tile_scalar(&x, k, k, &p[..k * NR], mr, &mut t);
                for r in 0..mr {
                    for j in 0..NR.min(n) {
                        assert!(
                            (t[r][j] + b[j] - out[r * n + j]).abs() <= 1e-4 * out[r * n + j].abs().max(1.0)
                        );
                    }
                }
            }
        }
    }
}
