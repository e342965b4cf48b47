//! 2-D convolution (NCHW) with autograd.
use candle_core::{Result, Tensor};

/// Convolves `x` [N,C,H,W] with `w` [O,C/groups,kh,kw].
pub fn conv2d(x: &Tensor, w: &Tensor, stride: [usize; 2], padding: [usize; 2], groups: usize) -> Result<Tensor> {
    if stride[0] == stride[1] && padding[0] == padding[1] {
        return x.conv2d(w, padding[0], stride[0], 1, groups);
    }
    // Asymmetric settings: pad explicitly, then use a square stride when possible.
    let x = x.pad_with_zeros(2, padding[0], padding[0])?.pad_with_zeros(3, padding[1], padding[1])?;
    if stride[0] == stride[1] {
        return x.conv2d(w, 0, stride[0], 1, groups);
    }
    let y = x.conv2d(w, 0, 1, 1, groups)?;
    let (_, _, h, wd) = y.dims4()?;
    let rows = Tensor::arange_step(0u32, h as u32, stride[0] as u32, x.device())?;
    let cols = Tensor::arange_step(0u32, wd as u32, stride[1] as u32, x.device())?;
    y.index_select(&rows, 2)?.index_select(&cols, 3)
}
