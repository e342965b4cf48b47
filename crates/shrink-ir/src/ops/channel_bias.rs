//! Per-channel bias of a convolution, `y[n, c, ..] + b[c]`, with a parallel backward.
//!
//! As a broadcast add, candle's backward reduces the output gradient over (N, H, W) with a
//! single-threaded strided reduction: a fifth of a LeNet-5 training step. Here the forward adds
//! the bias plane by plane and the backward sums each channel's planes in 16 lanes, in parallel
//! over channels (the same order on every run).
use super::contiguous_f32;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `y + b` broadcast over channels for `y` [N, C, ...] and `b` [C]. Falls back to candle's
/// broadcast add off the CPU, for other dtypes or shapes.
pub fn add_channel_bias(y: &Tensor, b: &Tensor) -> Result<Tensor> {
    let fast = y.device().is_cpu()
        && y.dtype() == DType::F32
        && b.dtype() == DType::F32
        && y.rank() >= 2
        && b.dims() == [y.dim(1)?];
    if !fast {
        let mut shape = vec![1; y.rank()];
        shape[1] = b.elem_count();
        return y.broadcast_add(&b.reshape(shape)?);
    }
    y.contiguous()?.apply_op2(&b.contiguous()?, ChannelBias)
}

struct ChannelBias;

impl CustomOp2 for ChannelBias {
    fn name(&self) -> &'static str {
        "shrink-channel-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (y, b) =
            (contiguous_f32(s1, l1, "channel bias: input")?, contiguous_f32(s2, l2, "channel bias: bias")?);
        let plane = l1.dims()[2..].iter().product::<usize>().max(1);
        let channels = b.len();
        let mut out = vec![0f32; y.len()];
        out.par_chunks_mut(plane).zip(y.par_chunks(plane)).enumerate().for_each(|(i, (o, y))| {
            let bias = b[i % channels];
            for (o, y) in o.iter_mut().zip(y) {
                *o = y + bias;
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _y: &Tensor,
        b: &Tensor,
        _out: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = g.contiguous()?;
        let db = if b.track_op() {
            let (dims, channels) = (g.dims().to_vec(), b.elem_count());
            let plane = dims[2..].iter().product::<usize>().max(1);
            let batch = dims[0];
            let (gs, gl) = g.storage_and_layout();
            let candle_core::Storage::Cpu(gs) = &*gs else {
                candle_core::bail!("channel bias: CPU expected")
            };
            let gv = contiguous_f32(gs, gl, "channel bias: gradient")?;
            let sums: Vec<f32> = (0..channels)
                .into_par_iter()
                .map(|c| (0..batch).map(|n| lane_sum(&gv[(n * channels + c) * plane..][..plane])).sum())
                .collect();
            Some(Tensor::from_vec(sums, channels, g.device())?)
        } else {
            None
        };
        Ok((Some(g), db))
    }
}

/// The sum of `xs` over 16 independent lanes (so it vectorizes), then across the lanes.
pub(crate) fn lane_sum(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = xs.chunks_exact(16);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Forward and both gradients equal candle's broadcast add, for a 4-D and a 3-D input.
    #[test]
    fn matches_broadcast_add() {
        for dims in [vec![3usize, 5, 4, 7], vec![2, 3, 33]] {
            let y =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, dims.as_slice(), &Device::Cpu).unwrap()).unwrap();
            let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, dims[1], &Device::Cpu).unwrap()).unwrap();
            let r = Tensor::randn(0f32, 1.0, dims.as_slice(), &Device::Cpu).unwrap();
            let out = add_channel_bias(y.as_tensor(), b.as_tensor()).unwrap();
            let mut shape = vec![1; dims.len()];
            shape[1] = dims[1];
            let want = y.as_tensor().broadcast_add(&b.as_tensor().reshape(shape).unwrap()).unwrap();
            let diff = |a: &Tensor, b: &Tensor| -> f32 {
                (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
            };
            assert_eq!(diff(&out, &want), 0.0);
            let g = (&out * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let g_ref = (&want * &r).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&y, &b] {
                let d = diff(g.get(v.as_tensor()).unwrap(), g_ref.get(v.as_tensor()).unwrap());
                assert!(d < 1e-5, "{dims:?}: gradient differs by {d}");
            }
        }
    }
}
