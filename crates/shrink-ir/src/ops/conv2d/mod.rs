//! 2-D convolution (NCHW) with autograd.
//!
//! On the CPU (f32) the convolution is a candle [`CustomOp2`] backed by cache-blocked
//! im2col / direct kernels ([`cpu`], [`kernels`]); its backward pass returns the input gradient
//! (a transposed convolution) and the weight gradient (`dY x cols^T`), each computed by
//! another custom op. Other devices and dtypes use candle's own `Tensor::conv2d`.
// `x % m == 0` is kept over `is_multiple_of` (stable only since 1.87; workspace MSRV is 1.85).
#![allow(clippy::manual_is_multiple_of)]

mod cpu;
pub(crate) mod geom;
mod im2col;
mod kernels;
pub(crate) mod par;

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use geom::Geom;

/// Convolves `x` [N,C,H,W] with `w` [O,C/groups,kh,kw].
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: [usize; 2],
    padding: [usize; 2],
    groups: usize,
) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 || w.dtype() != DType::F32 {
        return reference_conv2d(x, w, stride, padding, groups);
    }
    let geo = Geom::new(dims4(x)?, dims4(w)?, stride, padding, groups).map_err(candle_core::Error::msg)?;
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    x.apply_op2(&w, Conv2dOp { geo })
}

/// candle's convolution with the same semantics (non-CPU devices, other dtypes).
pub(crate) fn reference_conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: [usize; 2],
    padding: [usize; 2],
    groups: usize,
) -> Result<Tensor> {
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

fn dims4(t: &Tensor) -> Result<[usize; 4]> {
    let (a, b, c, d) = t.dims4()?;
    Ok([a, b, c, d])
}

/// The f32 slice a contiguous layout addresses.
fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    super::contiguous_f32(s, l, &format!("conv2d: {what}"))
}

fn check(l: &Layout, want: [usize; 4], what: &str) -> Result<()> {
    if l.shape().dims() != want {
        candle_core::bail!("conv2d: {what} has shape {:?}, expected {want:?}", l.shape().dims());
    }
    Ok(())
}

impl Geom {
    fn x_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
    fn w_dims(&self) -> [usize; 4] {
        [self.o, self.cg(), self.kh, self.kw]
    }
    fn y_dims(&self) -> [usize; 4] {
        [self.n, self.o, self.oh, self.ow]
    }
}

/// Forward convolution `(x, w) -> y`.
struct Conv2dOp {
    geo: Geom,
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "shrink-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.geo;
        check(l1, g.x_dims(), "input")?;
        check(l2, g.w_dims(), "weight")?;
        let y = cpu::forward(slice(s1, l1, "input")?, slice(s2, l2, "weight")?, g);
        Ok((CpuStorage::F32(y), Shape::from(g.y_dims().to_vec())))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let geo = self.geo;
        let dx = if x.track_op() { Some(dy.apply_op2_no_bwd(w, &Conv2dBwdData { geo })?) } else { None };
        let dw = if w.track_op() { Some(x.apply_op2_no_bwd(&dy, &Conv2dBwdFilter { geo })?) } else { None };
        Ok((dx, dw))
    }
}

/// Input gradient `(dy, w) -> dx` (a transposed convolution).
struct Conv2dBwdData {
    geo: Geom,
}

impl CustomOp2 for Conv2dBwdData {
    fn name(&self) -> &'static str {
        "shrink-conv2d-bwd-data"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.geo;
        check(l1, g.y_dims(), "output gradient")?;
        check(l2, g.w_dims(), "weight")?;
        let dx = cpu::backward_data(slice(s1, l1, "output gradient")?, slice(s2, l2, "weight")?, g);
        Ok((CpuStorage::F32(dx), Shape::from(g.x_dims().to_vec())))
    }
}

/// Weight gradient `(x, dy) -> dw`.
struct Conv2dBwdFilter {
    geo: Geom,
}

impl CustomOp2 for Conv2dBwdFilter {
    fn name(&self) -> &'static str {
        "shrink-conv2d-bwd-filter"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.geo;
        check(l1, g.x_dims(), "input")?;
        check(l2, g.y_dims(), "output gradient")?;
        let dw = cpu::backward_filter(slice(s1, l1, "input")?, slice(s2, l2, "output gradient")?, g);
        Ok((CpuStorage::F32(dw), Shape::from(g.w_dims().to_vec())))
    }
}

#[cfg(test)]
mod tests;
