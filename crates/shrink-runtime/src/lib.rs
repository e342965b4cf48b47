//! Deployment runtime for compressed models: an executor of `shrink-graph` graphs ([`exec`],
//! one evaluation per operator in [`eval`]), the compiled runtime [`plan`] (passes, fp32
//! kernels with pre-packed weights, memory planning, sessions), bit-packed storage of integer quantization codes
//! ([`pack`], [`unpack`], [`PackedTensor`]) and sparse fully-connected kernels ([`Csr`]).
//!
//! The deploy format `.shrink` v1 ([`deploy`]) stores a graph with its constants compressed
//! (bit-packed, codebook, sparse, Huffman-coded).
//!
//! No candle, image, tar or protobuf dependency: a deployed program links only this crate and
//! the IR.
pub mod deploy;
pub mod eval;
pub mod exec;
pub mod pack;
pub mod plan;
pub mod sparse;
pub mod sparse_input;

pub use exec::{run, EvalError};
pub use pack::{pack, packed_len, unpack, PackError, PackedTensor};
pub use plan::{Plan, PlanOptions, Session};
pub use sparse::Csr;
pub use sparse_input::SparseActs;
