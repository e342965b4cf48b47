//! Int8 kernels: GEMM for linear layers and convolutions (via [`im2col_u8`]), a direct
//! stride-1 conv with pixels in the lanes ([`conv_direct_u8i8`]), depthwise conv.
pub(crate) mod depthwise;
pub(crate) mod direct;
pub(crate) mod gemm;
pub(crate) mod im2col;
#[cfg(target_arch = "aarch64")]
mod neon;
pub(crate) mod pack;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use depthwise::{depthwise_u8i8, DwOut};
pub use direct::{
    conv_direct_u8i8, lanes as direct_lanes, pack_direct_input_u8, DirectGeom, Lanes, PackedDirectI8,
    DIRECT_MC,
};
pub use gemm::{gemm_u8i8_f32, gemm_u8i8_f32_channel_major, gemm_u8i8_i32, gemm_u8i8_u8};
pub use im2col::{im2col_u8, Conv2dGeom};
pub use pack::{PackedI8, MAX_K, NB};
