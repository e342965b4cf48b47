//! Compression algorithms for the `shrink` toolkit.
//!
//! * [`sparseopt`]: sparse optimization on a small linear model (the "linear-model lab":
//!   gradient descent, iterative hard thresholding, L1, proximal and trimmed-L1 updates),
//!   plus slice-level regularizers meant for network training.
//!
//! Pruning and quantization will live next to it as further modules.

pub mod sparseopt;
