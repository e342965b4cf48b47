//! Compression algorithms for the `shrink` toolkit.
//!
//! * [`sparseopt`]: sparse optimization on a small linear model (the "linear-model lab":
//!   gradient descent, iterative hard thresholding, L1, proximal and trimmed-L1 updates),
//!   plus slice-level regularizers meant for network training.
//!
//! * [`prune`]: unstructured masks and structured (physically removed, residual-aware) pruning.
//!
//! * [`quant`]: post-training weight quantization (the labs' clip / symmetric / asymmetric).
//!
//! * [`share`]: Deep Compression's weight sharing (per-layer 1-D k-means codebooks).

pub mod prune;
pub mod quant;
pub mod share;
pub mod sparseopt;
