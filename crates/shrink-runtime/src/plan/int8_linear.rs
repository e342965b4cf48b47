//! Int8 linear steps: a QDQ Gemm / MatMul ([`super::int8`]) run as one u8 × i8 → i32 GEMM
//! (`shrink_kernels::gemm_u8i8_f32`) with the weights packed once at compile time and the
//! f32 epilogue fused: `y[m, n] = act(sx · sw[n] · (Σ_k qx[m,k]·qw[n,k] − zx·Σ_k qw[n,k]) + b[n])`.

use super::epilogue::Epilogue;
use super::int8::{activation, quantize_slice, InputQuant};
use shrink_kernels::{gemm_u8i8_f32, Int8Epilogue, Isa, PackedI8};

/// A compiled int8 linear layer.
#[derive(Debug, Clone)]
pub struct Int8LinearStep {
    /// Input features.
    pub k: usize,
    /// Output features.
    pub n: usize,
    /// The input's quantization (u8 codes).
    pub xq: InputQuant,
    /// Weight codes `[N, K]`, packed for the GEMM.
    pub weights: PackedI8,
    /// Per-output weight scale (Gemm's alpha folded in).
    pub weight_scales: Vec<f32>,
    /// Per-output bias (beta·C folded in).
    pub bias: Option<Vec<f32>>,
    pub epilogue: Epilogue,
}

impl Int8LinearStep {
    /// The kernel name shown in per-layer tables.
    pub const KERNEL: &'static str = "int8-gemm";

    /// u8 scratch bytes a call on `rows` input rows needs (the quantized input).
    pub fn scratch_len(&self, rows: usize) -> usize {
        rows * self.k
    }

    /// `out[rows·n] = act(dequant(quantize(x) · Wᵀ) + b)` for `x` `[rows, k]`; `scratch` holds at
    /// least [`Self::scratch_len`] bytes. Errors only on inconsistent lengths.
    pub fn run(&self, x: &[f32], out: &mut [f32], scratch: &mut [u8]) -> Result<(), String> {
        let rows = x.len() / self.k;
        let xq = scratch.get_mut(..rows * self.k).ok_or("int8 scratch too small")?;
        quantize_slice(x, self.xq, xq);
        let ep = Int8Epilogue {
            weight_scales: &self.weight_scales,
            bias: self.bias.as_deref(),
            act: activation(self.epilogue),
        };
        let out = out.get_mut(..rows * self.n).ok_or("int8 output too small")?;
        gemm_u8i8_f32(Isa::detect(), xq, rows, self.xq.q, &self.weights, &ep, out).map_err(|e| e.to_string())
    }
}
