//! The option-A ResNet shortcut: spatial subsampling plus zero channel padding.
use candle_core::{Result, Tensor};

/// `pad(x[:, :, ::stride, ::stride], channels: before/after)` on an NCHW tensor.
pub fn shortcut_a(x: &Tensor, stride: usize, pad_before: usize, pad_after: usize) -> Result<Tensor> {
    let x = if stride == 1 {
        x.clone()
    } else {
        let (_, _, h, w) = x.dims4()?;
        let rows = Tensor::arange_step(0u32, h as u32, stride as u32, x.device())?;
        let cols = Tensor::arange_step(0u32, w as u32, stride as u32, x.device())?;
        x.index_select(&rows, 2)?.index_select(&cols, 3)?
    };
    if pad_before == 0 && pad_after == 0 {
        return Ok(x);
    }
    x.pad_with_zeros(1, pad_before, pad_after)
}
