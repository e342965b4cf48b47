//! Post-training weight quantization: the labs' fixed-point quantizers, done exactly.
//!
//! * [`clip`] (MNIST lab): `N = 2^l`, `delta = 2q/N`, `wq = clip(delta*round(w/delta), -q, q - delta)`.
//! * [`symmetric`] (ResNet lab 3e): `alpha = max|w|`, `s = 2^(b-1) - 1`, `wq = round(w/alpha*s)/s*alpha`.
//! * [`asymmetric`] (ResNet lab 3a): `alpha = max - min`, `beta = min`,
//!   `wq = round((w - beta)/alpha*(2^b - 1))/(2^b - 1)*alpha + beta`.
//!
//! `round` is half-to-even like `torch.round`; the float32 operations run in the labs' order, so
//! values equal PyTorch's bit for bit (`tests/quant_golden.rs`). Pruned weights stay exactly
//! zero. Ranges: fixed, max, percentile or MSE-optimal ([`RangeMethod`]), per tensor or per
//! output channel. [`quantize_model`] bakes the values into the weights and attaches the
//! equivalent affine [`shrink_ir::QuantSlot`] (`scale = delta`, `alpha/s` or `alpha/(2^b-1)`,
//! `offset = 0` or `beta`), whose integer codes are what bit-packed files store; the forward
//! pass's fake quant then returns the same codes and values within 2 ulp of the weights' range.
//! [`mixed`] allocates a bit width per layer under an average-bits budget (mixed precision).
use std::fmt;
use thiserror::Error;

pub mod activation;
pub mod formula;
pub mod graph;
pub mod in_place;
pub mod mixed;
pub mod pass;
pub mod range;
pub mod stream;

pub use activation::{act_points, calibrate, ActConfig, ActRange, Calibrator};
pub use formula::{
    affine, asymmetric, check_bits, clip, levels, quantize_slice, quantize_slice_into, symmetric, Affine,
    Range,
};
pub use in_place::{quantize_model_in_place, QuantizedTensor};
pub use pass::{
    apply, quantize_model, quantize_source, quantize_source_into, quantize_sources, sources, Include,
    QuantConfig, Quantized, Source,
};
pub use range::{choose, percentile, RangeMethod, MSE_GRID};
pub use stream::WeightSweep;

/// A weight quantizer of the labs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Clip,
    Symmetric,
    Asymmetric,
}

impl Scheme {
    /// All schemes.
    pub const ALL: [Scheme; 3] = [Scheme::Clip, Scheme::Symmetric, Scheme::Asymmetric];

    /// The name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Clip => "clip",
            Scheme::Symmetric => "symmetric",
            Scheme::Asymmetric => "asymmetric",
        }
    }

    /// Parses a scheme name.
    pub fn parse(s: &str) -> Result<Scheme> {
        Scheme::ALL.into_iter().find(|x| x.name() == s).ok_or_else(|| QuantError::Scheme(s.to_string()))
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Quantization errors (one line each).
#[derive(Debug, Error)]
pub enum QuantError {
    #[error("{scheme} quantization needs bits in {min}..=16, got {bits}")]
    Bits { scheme: Scheme, bits: u32, min: u32 },
    #[error("{0}")]
    Range(String),
    #[error("unknown quantization scheme `{0}` (expected clip, symmetric, asymmetric)")]
    Scheme(String),
    #[error("per-channel quantization needs output channels, but `{name}` has shape {dims:?}")]
    NoChannels { name: String, dims: Vec<usize> },
    #[error(transparent)]
    Ir(#[from] shrink_ir::IrError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, QuantError>;
