//! Deployment runtime for compressed models. So far: bit-packed storage of integer quantization
//! codes ([`pack`], [`unpack`], [`PackedTensor`]); sparse and low-bit kernels are planned.
//!
//! No dependencies: model files glue this to the IR in `shrink-io` (`shrink_io::packed`).
pub mod pack;

pub use pack::{pack, packed_len, unpack, PackError, PackedTensor};
