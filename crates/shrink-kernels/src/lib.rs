//! # shrink-kernels: the low-level CPU kernels of shrink's runtime
//!
//! Dependency-light (rayon only) kernels that the runtime's compiled plan calls per layer.
//! Every kernel computes a linear layer `Y[M, N] = X[M, K] · W[N, K]ᵀ` (row-major, one weight
//! row per output channel, as in ONNX `Gemm(transB=1)` / PyTorch `Linear`) or a convolution
//! built on it, in one of these representations:
//!
//! | kernel | weights | activations | entry points |
//! |---|---|---|---|
//! | int8 GEMM | [`PackedI8`]: i8, per-channel scale, zero point 0 | u8, per-tensor scale + zero point | [`gemm_u8i8_f32`], [`gemm_u8i8_u8`], [`gemm_u8i8_i32`] |
//! | int8 conv | same, `[oc, c·kh·kw]` | u8 NCHW → [`im2col_u8`] | the GEMM above |
//! | int8 direct conv (stride 1) | [`PackedDirectI8`]: i8 `[oc/8][c/4·kh·kw][8]` words | u8, padded `[c/4][h][w][4]` ([`pack_direct_input_u8`]) | [`conv_direct_u8i8`] |
//! | int8 depthwise | i8 `[c, kh, kw]`, per-channel scale | u8 NCHW | [`depthwise_u8i8`] |
//! | int4 weight-only | [`PackedI4`]: 2 codes per byte, scale per channel or group of 32/64/128 | f32 | [`linear_i4`] |
//! | int4 × u8 (W4A8) | [`PackedI4U8`]: 2 codes per byte, scale per channel or group of 128·j | f32, quantized to u8 per row on the fly | [`linear_i4u8`] |
//! | sparse | [`Csr`] (f32), [`CsrI8`] (i8 + row scale), [`Block14`] (1×4 blocks, f32) | f32 | [`csr_linear`], [`csr_i8_linear`], [`block14_linear`] |
//!
//! ## Instruction sets
//! Each entry takes an explicit [`Isa`]. Pass [`Isa::detect()`] (best level of this CPU, capped
//! by the `SHRINK_ISA` environment variable: `scalar|avx2|avx512|avx512vnni`); tests pass each of
//! [`Isa::available()`]. A level the CPU cannot run falls back to the best one below it.
//! Integer results (int8 sums, hence also the int8 f32/u8 epilogues) are bit-identical on every
//! path; f32 kernels (int4, sparse) differ only in summation order.
//!
//! ## Quantization conventions (int8)
//! Real activation `a = sa · (qa − za)` (u8), real weight `w = sw[n] · qw` (i8, symmetric).
//! The GEMM accumulates `Σ_k qa·qw` in i32 and subtracts `za · Σ_k qw[n, k]` (row sums stored at
//! pack time), so the sum is exact for any i8 weight and `K ≤` [`MAX_K`]. The fused epilogue
//! ([`Int8Epilogue`]) then gives `act(acc · sa · sw[n] + bias[n])` as f32, or requantized to u8
//! (`round_half_even(y / so) + zo`, saturated) to chain int8 layers.
//!
//! ## Threads and memory
//! Large calls split their output over rayon's pool (set `RAYON_NUM_THREADS`); small ones run on
//! the caller's thread. Weights are packed once; the int8 and int4 kernels allocate nothing per
//! call, the sparse kernels allocate one padded/transposed copy of X.
//!
//! ## Example: a quantized linear layer
//! ```
//! use shrink_kernels::{gemm_u8i8_f32, Activation, Int8Epilogue, Isa, PackedI8, QuantParams};
//! let (n, k) = (3, 5);
//! let w: Vec<i8> = (0..n * k).map(|i| (i as i8) - 7).collect();
//! let packed = PackedI8::pack(&w, n, k).unwrap();
//! let xq = QuantParams { scale: 0.02, zero_point: 128 };
//! let x: Vec<u8> = vec![128, 130, 120, 255, 0];
//! let ep = Int8Epilogue { weight_scales: &[0.1, 0.1, 0.1], bias: None, act: Activation::None };
//! let mut y = vec![0f32; n];
//! gemm_u8i8_f32(Isa::detect(), &x, 1, xq, &packed, &ep, &mut y).unwrap();
//! for j in 0..n {
//!     let r: f32 = (0..k).map(|c| xq.dequantize(x[c]) * 0.1 * w[j * k + c] as f32).sum();
//!     assert!((y[j] - r).abs() < 1e-4);
//! }
//! ```
#![warn(missing_docs)]
// SIMD register tiles index several arrays (accumulators, loads, pointers) in lockstep.
#![allow(clippy::needless_range_loop)]

mod epilogue;
mod error;
mod int4;
mod int4_u8;
mod int8;
mod isa;
mod par;
mod sparse;

pub use epilogue::{Activation, Int8Epilogue, QuantParams};
pub use error::{KernelError, Result};
pub use int4::{linear_i4, Int4Group, PackedI4};
pub use int4_u8::{linear_i4u8, quantize_row_u8, row_params, PackedI4U8, MAX_K_I4U8};
pub use int8::{
    conv_direct_u8i8, depthwise_u8i8, direct_lanes, gemm_u8i8_f32, gemm_u8i8_f32_channel_major,
    gemm_u8i8_i32, gemm_u8i8_u8, im2col_u8, pack_direct_input_u8, Conv2dGeom, DirectGeom, DwOut, Lanes,
    PackedDirectI8, PackedI8, DIRECT_MC, MAX_K, NB,
};
pub use isa::{Isa, ISA_ENV};
pub use sparse::{block14_linear, csr_i8_linear, csr_linear, Block14, Csr, CsrI8, MAX_SPARSE_K};
