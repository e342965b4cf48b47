//! Sparse weight formats `W[N, K]` (one row per output channel): CSR f32, CSR i8 with a scale
//! per row, and block-sparse 1×4 (4 consecutive K per stored block) f32.
use crate::error::{check_len, mul, KernelError, Result};

/// Largest K a sparse format indexes (columns are stored as u16 to halve index traffic;
/// block 1×4 stores the block number, so it reaches 4× further).
pub const MAX_SPARSE_K: usize = 1 << 16;

fn check_k(what: &str, k: usize, limit: usize) -> Result<()> {
    if k > limit {
        Err(KernelError::new(format!("{what}: K = {k} exceeds {limit}")))
    } else {
        Ok(())
    }
}

/// f32 weights in compressed sparse row form; only entries that are not `0.0` are stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    pub(crate) n: usize,
    pub(crate) k: usize,
    /// `indptr[r]..indptr[r + 1]` index the nonzeros of row r.
    pub(crate) indptr: Vec<usize>,
    pub(crate) indices: Vec<u16>,
    pub(crate) values: Vec<f32>,
}

impl Csr {
    /// Compresses row-major `w` (`[n, k]`), dropping `0.0` and `-0.0`. Errors if
    /// `w.len() != n · k` or `k > MAX_SPARSE_K`.
    pub fn from_dense(w: &[f32], n: usize, k: usize) -> Result<Csr> {
        check_len("CSR dense weights", w.len(), mul("CSR dense weights", n, k)?)?;
        check_k("CSR dense weights", k, MAX_SPARSE_K)?;
        let mut indptr = Vec::with_capacity(n + 1);
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        indptr.push(0);
        for r in 0..n {
            for (c, &v) in w[r * k..(r + 1) * k].iter().enumerate() {
                if v != 0.0 {
                    indices.push(c as u16);
                    values.push(v);
                }
            }
            indptr.push(values.len());
        }
        Ok(Csr { n, k, indptr, indices, values })
    }

    /// Output channels `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Stored nonzeros.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Bytes of values and indices (what a batch-1 call streams).
    pub fn stored_bytes(&self) -> usize {
        self.values.len() * 4 + self.indices.len() * 2 + self.indptr.len() * 8
    }
}

/// i8 weights in CSR form with one f32 scale per row: `W[r, c] = scale[r] · q[r, c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CsrI8 {
    pub(crate) n: usize,
    pub(crate) k: usize,
    pub(crate) indptr: Vec<usize>,
    pub(crate) indices: Vec<u16>,
    pub(crate) values: Vec<i8>,
    pub(crate) scales: Vec<f32>,
}

impl CsrI8 {
    /// Compresses row-major codes `q` (`[n, k]`, zeros dropped) with per-row `scales` (`n`).
    pub fn from_dense(q: &[i8], scales: &[f32], n: usize, k: usize) -> Result<CsrI8> {
        check_len("CSR i8 codes", q.len(), mul("CSR i8 codes", n, k)?)?;
        check_len("CSR i8 scales", scales.len(), n)?;
        check_k("CSR i8 codes", k, MAX_SPARSE_K)?;
        let mut indptr = Vec::with_capacity(n + 1);
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        indptr.push(0);
        for r in 0..n {
            for (c, &v) in q[r * k..(r + 1) * k].iter().enumerate() {
                if v != 0 {
                    indices.push(c as u16);
                    values.push(v);
                }
            }
            indptr.push(values.len());
        }
        Ok(CsrI8 { n, k, indptr, indices, values, scales: scales.to_vec() })
    }

    /// Symmetric per-row quantization of f32 weights (`scale = max|w| / 127`), then
    /// [`CsrI8::from_dense`]: zeros stay zeros.
    pub fn quantize(w: &[f32], n: usize, k: usize) -> Result<CsrI8> {
        check_len("CSR i8 f32 weights", w.len(), mul("CSR i8 f32 weights", n, k)?)?;
        let mut scales = vec![1f32; n];
        let mut q = vec![0i8; n * k];
        for r in 0..n {
            let row = &w[r * k..(r + 1) * k];
            let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
            scales[r] = s;
            for (d, &v) in q[r * k..(r + 1) * k].iter_mut().zip(row) {
                *d = (v / s).round().clamp(-127.0, 127.0) as i8;
            }
        }
        CsrI8::from_dense(&q, &scales, n, k)
    }

    /// Output channels `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Stored nonzeros.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }
}

/// Block-sparse f32 weights with 1×4 blocks: each stored block is 4 consecutive K of one row,
/// starting at a multiple of 4 (a block past K is zero-padded). A block is stored when any of
/// its entries is nonzero.
#[derive(Debug, Clone, PartialEq)]
pub struct Block14 {
    pub(crate) n: usize,
    pub(crate) k: usize,
    pub(crate) indptr: Vec<usize>,
    /// Block number (`k0 / 4`) of each stored block.
    pub(crate) blocks: Vec<u16>,
    /// 4 values per stored block.
    pub(crate) values: Vec<f32>,
}

impl Block14 {
    /// Compresses row-major `w` (`[n, k]`) into 1×4 blocks. Errors if `w.len() != n · k` or
    /// `k > 4 · MAX_SPARSE_K`.
    pub fn from_dense(w: &[f32], n: usize, k: usize) -> Result<Block14> {
        check_len("block 1x4 dense weights", w.len(), mul("block 1x4 dense weights", n, k)?)?;
        check_k("block 1x4 dense weights", k, 4 * MAX_SPARSE_K)?;
        let mut indptr = Vec::with_capacity(n + 1);
        let (mut blocks, mut values) = (Vec::new(), Vec::new());
        indptr.push(0);
        for r in 0..n {
            let row = &w[r * k..(r + 1) * k];
            for (b, quad) in row.chunks(4).enumerate() {
                if quad.iter().any(|&v| v != 0.0) {
                    blocks.push(b as u16);
                    let mut v4 = [0f32; 4];
                    v4[..quad.len()].copy_from_slice(quad);
                    values.extend_from_slice(&v4);
                }
            }
            indptr.push(blocks.len());
        }
        Ok(Block14 { n, k, indptr, blocks, values })
    }

    /// Output channels `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Stored blocks.
    pub fn nblocks(&self) -> usize {
        self.blocks.len()
    }
}
