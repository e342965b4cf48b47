//! Tensor operations the graph executes. Each op lives in its own file so hot paths can be
//! replaced by faster kernels without touching the graph code.
mod batchnorm;
mod channel_bias;
mod conv2d;
mod fake_quant;
pub mod in_backward;
mod linear;
mod pool;
mod shortcut;
mod sparse_linear;
pub mod weight_grad;

/// The f32 values a contiguous layout addresses; `what` names the operand in the error.
pub(crate) fn contiguous_f32<'a>(
    s: &'a candle_core::CpuStorage,
    l: &candle_core::Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{what} must be contiguous"),
    }
}

pub use batchnorm::{
    add_relu, batch_norm_eval, batch_norm_relu_train, batch_norm_train, relu, shortcut_a_fused, BatchStats,
};
pub use channel_bias::add_channel_bias;
pub use conv2d::conv2d;
pub use fake_quant::{fake_quant, round_half_even, FakeQuant};
pub use linear::{backward, linear, linear_streamed, sparse_input_max_density, SPARSE_INPUT_MAX_DENSITY};
pub use pool::{avg_pool2d, max_pool2d};
pub use shortcut::shortcut_a;
pub use sparse_linear::sparse_linear;
