//! Sparse linear kernels: CSR f32, CSR i8 with per-row scales, block-sparse 1×4 f32.
pub(crate) mod formats;
pub(crate) mod kernels;

pub use formats::{Block14, Csr, CsrI8, MAX_SPARSE_K};
pub use kernels::{block14_linear, csr_i8_linear, csr_linear};
