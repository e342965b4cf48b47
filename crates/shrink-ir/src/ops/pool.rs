//! Max and average pooling with PyTorch padding semantics.
use candle_core::{Result, Tensor};

/// Max pooling; padded positions never win (PyTorch pads with -inf).
pub fn max_pool2d(x: &Tensor, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Result<Tensor> {
    if padding == [0, 0] {
        return x.max_pool2d_with_stride((kernel[0], kernel[1]), (stride[0], stride[1]));
    }
    // Shift values to be >= 0 so zero padding never exceeds a real value, pool, shift back.
    let low = x.min_all()?.detach();
    let shifted = x.broadcast_sub(&low)?;
    let padded = shifted.pad_with_zeros(2, padding[0], padding[0])?.pad_with_zeros(3, padding[1], padding[1])?;
    padded.max_pool2d_with_stride((kernel[0], kernel[1]), (stride[0], stride[1]))?.broadcast_add(&low)
}

/// Average pooling counting padded zeros (PyTorch `count_include_pad=True`).
pub fn avg_pool2d(x: &Tensor, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Result<Tensor> {
    let x = if padding == [0, 0] {
        x.clone()
    } else {
        x.pad_with_zeros(2, padding[0], padding[0])?.pad_with_zeros(3, padding[1], padding[1])?
    };
    x.avg_pool2d_with_stride((kernel[0], kernel[1]), (stride[0], stride[1]))
}
