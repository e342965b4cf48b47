//! Sparse fully-connected kernels: a weight matrix in CSR form times a batch of activations, so
//! pruned (or quantized-to-zero) weights cost nothing.
//!
//! Activations are feature-major, like shrink's dense linear op: `Xᵀ` is `[in, n]` row-major and
//! the result `Yᵀ = act(W Xᵀ + b)` is `[out, n]`. Every nonzero `W[o, i]` then adds
//! `W[o, i] * Xᵀ[i, ..]` to `Yᵀ[o, ..]`: one contiguous multiply-add over the batch, which the
//! compiler vectorizes. The batch is processed in column tiles so a tile of `Xᵀ` stays in cache
//! while a thread sweeps its rows; rows are split across threads (rayon). AVX-512 or AVX2+FMA code
//! paths are chosen at run time by CPU feature detection (no `target-cpu` flags needed).
use rayon::prelude::*;

/// Columns of `Xᵀ` (batch entries) handled per tile: 64 f32 = 4 AVX-512 registers per row.
const TILE: usize = 64;

/// A row-major f32 matrix in compressed sparse row form.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    pub rows: usize,
    pub cols: usize,
    /// `indptr[r]..indptr[r + 1]` index the nonzeros of row `r`.
    pub indptr: Vec<usize>,
    /// Column of each nonzero.
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    /// Compresses a dense row-major `[rows, cols]` matrix, keeping entries that are not `0.0`
    /// (`-0.0` is dropped too: it contributes nothing to a sum).
    ///
    /// # Panics
    /// If `dense.len() != rows * cols` or `cols` does not fit in `u32`.
    pub fn from_dense(dense: &[f32], rows: usize, cols: usize) -> Csr {
        assert_eq!(dense.len(), rows * cols, "dense matrix has the wrong length");
        assert!(u32::try_from(cols).is_ok(), "too many columns for u32 indices");
        let mut indptr = Vec::with_capacity(rows + 1);
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        indptr.push(0);
        for row in dense.chunks_exact(cols.max(1)).take(rows) {
            for (c, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    indices.push(c as u32);
                    values.push(v);
                }
            }
            indptr.push(values.len());
        }
        indptr.resize(rows + 1, values.len());
        Csr { rows, cols, indptr, indices, values }
    }

    /// An empty matrix of `cols` columns with room for `rows` rows and `nnz` nonzeros, filled
    /// row by row with [`Csr::push_row`].
    ///
    /// # Panics
    /// If `cols` does not fit in `u32`.
    pub fn with_capacity(cols: usize, rows: usize, nnz: usize) -> Csr {
        assert!(u32::try_from(cols).is_ok(), "too many columns for u32 indices");
        let mut indptr = Vec::with_capacity(rows + 1);
        indptr.push(0);
        Csr { rows: 0, cols, indptr, indices: Vec::with_capacity(nnz), values: Vec::with_capacity(nnz) }
    }

    /// Appends one dense row (its entries that are not `0.0`).
    ///
    /// # Panics
    /// If `row.len() != cols`.
    pub fn push_row(&mut self, row: &[f32]) {
        assert_eq!(row.len(), self.cols, "row has the wrong length");
        for (c, &v) in row.iter().enumerate() {
            if v != 0.0 {
                self.indices.push(c as u32);
                self.values.push(v);
            }
        }
        self.indptr.push(self.values.len());
        self.rows += 1;
    }

    /// Number of stored nonzeros.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Fraction of entries stored (`nnz / (rows * cols)`).
    pub fn density(&self) -> f64 {
        self.nnz() as f64 / (self.rows * self.cols).max(1) as f64
    }

    /// `out = act(self · xt + bias)` with `xt` `[cols, n]` and `out` `[rows, n]`, both row-major;
    /// `bias` has `rows` entries; `relu` applies `max(·, 0)`.
    ///
    /// # Panics
    /// If a slice length does not match.
    pub fn matmul_t(&self, xt: &[f32], n: usize, bias: Option<&[f32]>, relu: bool, out: &mut [f32]) {
        assert_eq!(xt.len(), self.cols * n, "xt must be [cols, n]");
        assert_eq!(out.len(), self.rows * n, "out must be [rows, n]");
        if let Some(b) = bias {
            assert_eq!(b.len(), self.rows, "bias must have one entry per row");
        }
        if n == 0 || self.rows == 0 {
            return;
        }
        // Enough rows per task to amortize scheduling; at least one task per thread.
        let per_task = (self.rows / (4 * rayon::current_num_threads()).max(1)).clamp(1, 256);
        out.par_chunks_mut(per_task * n).enumerate().for_each(|(t, chunk)| {
            let r0 = t * per_task;
            let rows = chunk.len() / n;
            rows_kernel(self, xt, n, bias, relu, r0, rows, chunk);
        });
    }
}

/// Computes rows `r0..r0 + rows` into `out` (`[rows, n]`), dispatching on CPU features.
#[allow(clippy::too_many_arguments)]
fn rows_kernel(
    m: &Csr,
    xt: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    relu: bool,
    r0: usize,
    rows: usize,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked above).
            return unsafe { rows_avx512(m, xt, n, bias, relu, r0, rows, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked above).
            return unsafe { rows_avx2(m, xt, n, bias, relu, r0, rows, out) };
        }
    }
    rows_generic(m, xt, n, bias, relu, r0, rows, out)
}

/// Defines a wrapper around [`rows_impl`]; `$feature` compiles it for that instruction set
/// (the caller checks the CPU first), `$fma` selects fused multiply-adds.
macro_rules! rows_variant {
    ($(#[$attr:meta])* $name:ident, $fma:literal) => {
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        fn $name(
            m: &Csr,
            xt: &[f32],
            n: usize,
            bias: Option<&[f32]>,
            relu: bool,
            r0: usize,
            rows: usize,
            out: &mut [f32],
        ) {
            rows_impl::<$fma>(m, xt, n, bias, relu, r0, rows, out)
        }
    };
}

rows_variant!(
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    rows_avx512,
    true
);
rows_variant!(
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    rows_avx2,
    true
);
// The portable kernel: multiply then add (without hardware FMA, `mul_add` is a libm call).
rows_variant!(rows_generic, false);

/// The kernel body, inlined into each feature-specific wrapper so each gets its own
/// vectorization; `FMA` selects fused multiply-adds.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rows_impl<const FMA: bool>(
    m: &Csr,
    xt: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    relu: bool,
    r0: usize,
    rows: usize,
    out: &mut [f32],
) {
    let mut c0 = 0;
    while c0 < n {
        let w = TILE.min(n - c0);
        for r in 0..rows {
            let row = r0 + r;
            let b0 = bias.map_or(0.0, |b| b[row]);
            let (a, b) = (m.indptr[row], m.indptr[row + 1]);
            let nz = m.indices[a..b].iter().zip(&m.values[a..b]);
            let dst = &mut out[r * n + c0..r * n + c0 + w];
            if w == TILE {
                // A full tile: the accumulator is a fixed-size array, kept in registers.
                let mut acc = [b0; TILE];
                for (&col, &v) in nz {
                    let start = col as usize * n + c0;
                    let x: &[f32; TILE] = xt[start..start + TILE].try_into().expect("tile");
                    for j in 0..TILE {
                        acc[j] = if FMA { v.mul_add(x[j], acc[j]) } else { acc[j] + v * x[j] };
                    }
                }
                dst.copy_from_slice(&acc);
            } else {
                dst.fill(b0);
                for (&col, &v) in nz {
                    let start = col as usize * n + c0;
                    for (o, &xv) in dst.iter_mut().zip(&xt[start..start + w]) {
                        *o = if FMA { v.mul_add(xv, *o) } else { *o + v * xv };
                    }
                }
            }
            if relu {
                dst.iter_mut().for_each(|o| *o = o.max(0.0));
            }
        }
        c0 += w;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn dense_ref(
        w: &[f32],
        rows: usize,
        cols: usize,
        xt: &[f32],
        n: usize,
        b: &[f32],
        relu: bool,
    ) -> Vec<f32> {
        let mut out = vec![0.0; rows * n];
        for r in 0..rows {
            for j in 0..n {
                let mut s = b[r] as f64;
                for c in 0..cols {
                    s += w[r * cols + c] as f64 * xt[c * n + j] as f64;
                }
                out[r * n + j] = if relu { s.max(0.0) as f32 } else { s as f32 };
            }
        }
        out
    }

    #[test]
    fn matches_dense_product_for_odd_shapes_and_densities() {
        let mut seed = 7;
        for &(rows, cols, n, keep) in
            &[(1, 1, 1, 1.0), (37, 53, 5, 0.1), (300, 129, 130, 0.3), (64, 64, 64, 0.0), (5, 300, 200, 1.0)]
        {
            let w: Vec<f32> = (0..rows * cols)
                .map(|_| {
                    let v = lcg(&mut seed);
                    if (lcg(&mut seed) + 1.0) / 2.0 < keep {
                        v
                    } else {
                        0.0
                    }
                })
                .collect();
            let xt: Vec<f32> = (0..cols * n).map(|_| lcg(&mut seed)).collect();
            let b: Vec<f32> = (0..rows).map(|_| lcg(&mut seed)).collect();
            let m = Csr::from_dense(&w, rows, cols);
            assert_eq!(m.nnz(), w.iter().filter(|v| **v != 0.0).count());
            for relu in [false, true] {
                let mut out = vec![f32::NAN; rows * n];
                m.matmul_t(&xt, n, Some(&b), relu, &mut out);
                let want = dense_ref(&w, rows, cols, &xt, n, &b, relu);
                for (i, (g, e)) in out.iter().zip(&want).enumerate() {
                    assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()), "{rows}x{cols} n={n} [{i}]: {g} vs {e}");
                }
            }
        }
    }

    #[test]
    fn no_bias_and_empty_rows() {
        let w = [0.0, 2.0, 0.0, 0.0, 0.0, 0.0];
        let m = Csr::from_dense(&w, 2, 3);
        assert_eq!(m.indptr, vec![0, 1, 1]);
        let xt = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // [3, 2]
        let mut out = [9.0; 4];
        m.matmul_t(&xt, 2, None, false, &mut out);
        assert_eq!(out, [6.0, 8.0, 0.0, 0.0]);
        assert!((m.density() - 1.0 / 6.0).abs() < 1e-12);
    }
}
