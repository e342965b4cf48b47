//! Packing of int8 weights `W[N, K]` for the int8 GEMM.
//!
//! Layout: output channels in blocks of [`NB`] = 16, K in quads of 4 (zero-padded):
//! `data[((blk · nq + q) · 16 + c) · 4 + j] = W[16·blk + c, 4·q + j]`. One 64-byte line holds
//! 16 channels × 4 consecutive K, which is exactly one `vpdpbusd` operand (16 i32 lanes, each a
//! dot product of 4 u8 × i8), and four 16-byte AVX2 loads (4 channels × 4 K each) that are
//! widened to i16 and multiplied with `vpmaddwd` (exact, no `pmaddubsw` saturation).
use crate::error::{check_len, mul, KernelError, Result};

/// Output channels per packed block.
pub const NB: usize = 16;

/// Largest K for which i32 accumulation is exact (`|Σ (x − za)·w| ≤ 255 · 128 · K < 2³¹`).
pub const MAX_K: usize = 65_536;

/// Int8 weights `W[N, K]` (symmetric, zero point 0) packed once for [`crate::gemm_u8i8_f32`]
/// and friends, with the per-channel sums `Σ_k W[n, k]` used for the activation zero point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedI8 {
    pub(crate) n: usize,
    pub(crate) k: usize,
    /// Number of K quads (`ceil(k / 4)`).
    pub(crate) nq: usize,
    pub(crate) data: Vec<i8>,
    pub(crate) row_sums: Vec<i32>,
}

impl PackedI8 {
    /// Packs row-major `w` (`[n, k]`: one row per output channel).
    ///
    /// Errors if `w.len() != n · k` or `k` exceeds [`MAX_K`].
    pub fn pack(w: &[i8], n: usize, k: usize) -> Result<PackedI8> {
        check_len("int8 weights", w.len(), mul("int8 weights", n, k)?)?;
        if k > MAX_K {
            return Err(KernelError::new(format!("int8 weights: K = {k} exceeds {MAX_K}")));
        }
        let nq = k.div_ceil(4);
        let nblk = n.div_ceil(NB);
        let mut data = vec![0i8; nblk * nq * NB * 4];
        let mut row_sums = vec![0i32; n];
        for (r, row) in w.chunks_exact(k.max(1)).take(n).enumerate() {
            let (blk, c) = (r / NB, r % NB);
            for (kk, &v) in row.iter().enumerate() {
                data[((blk * nq + kk / 4) * NB + c) * 4 + kk % 4] = v;
            }
            row_sums[r] = row.iter().map(|&v| v as i32).sum();
        }
        Ok(PackedI8 { n, k, nq, data, row_sums })
    }

    /// Output channels `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// `Σ_k W[n, k]` per output channel.
    pub fn row_sums(&self) -> &[i32] {
        &self.row_sums
    }

    /// Bytes of packed weights (what a batch-1 call streams from memory).
    pub fn packed_bytes(&self) -> usize {
        self.data.len()
    }

    /// The row-major `[n, k]` weights back (for tests and debugging).
    pub fn unpack(&self) -> Vec<i8> {
        let mut w = vec![0i8; self.n * self.k];
        for r in 0..self.n {
            for kk in 0..self.k {
                w[r * self.k + kk] = self.get(r, kk);
            }
        }
        w
    }

    #[inline(always)]
    pub(crate) fn get(&self, r: usize, kk: usize) -> i8 {
        self.data[(((r / NB) * self.nq + kk / 4) * NB + r % NB) * 4 + kk % 4]
    }

    /// Pointer to the start of block `blk` (`nq · 64` bytes).
    #[inline(always)]
    pub(crate) fn block_ptr(&self, blk: usize) -> *const i8 {
        debug_assert!(blk < self.n.div_ceil(NB));
        // SAFETY (for callers): blk < number of blocks, each nq * 64 bytes.
        unsafe { self.data.as_ptr().add(blk * self.nq * NB * 4) }
    }
}
