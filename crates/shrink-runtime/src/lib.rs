//! Deployment runtime for compressed models: bit-packed storage of integer quantization codes
//! ([`pack`], [`unpack`], [`PackedTensor`]) and sparse fully-connected kernels ([`Csr`]).
//!
//! Only dependency: rayon. Model files glue this to the IR in `shrink-io` (`shrink_io::packed`),
//! and the IR's eval forward runs sparse layers through [`Csr::matmul_t`].
pub mod pack;
pub mod sparse;
pub mod sparse_input;

pub use pack::{pack, packed_len, unpack, PackError, PackedTensor};
pub use sparse::Csr;
pub use sparse_input::SparseActs;
