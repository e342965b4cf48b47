//! Batch normalization over dim 1 of (N,C) or (N,C,H,W) tensors.
use candle_core::{Result, Tensor, D};

/// Per-channel batch statistics of a train-mode forward, detached from the graph.
pub struct BatchStats {
    pub mean: Tensor,
    /// Biased variance (used to normalize).
    pub var: Tensor,
    /// Number of elements per channel (for the unbiased running-variance update).
    pub count: usize,
}

fn channel_shape(x: &Tensor) -> Vec<usize> {
    let mut s = vec![1; x.rank()];
    s[1] = x.dim(1).unwrap_or(1);
    s
}

/// Eval-mode batch norm with running statistics.
pub fn batch_norm_eval(x: &Tensor, gamma: &Tensor, beta: &Tensor, mean: &Tensor, var: &Tensor, eps: f64) -> Result<Tensor> {
    let cs = channel_shape(x);
    let scale = (gamma / (var + eps)?.sqrt()?)?;
    let shift = (beta - (mean * &scale)?)?;
    x.broadcast_mul(&scale.reshape(cs.as_slice())?)?.broadcast_add(&shift.reshape(cs.as_slice())?)
}

/// Train-mode batch norm: normalizes with the batch's own statistics and returns them.
pub fn batch_norm_train(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<(Tensor, BatchStats)> {
    let cs = channel_shape(x);
    let c = cs[1];
    // Move channels first and flatten the rest: [C, N*H*W].
    let xc = if x.rank() == 2 { x.t()? } else { x.transpose(0, 1)?.flatten_from(1)? };
    let count = xc.dim(1)?;
    let mean = xc.mean_keepdim(D::Minus1)?;
    let centered = xc.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    let inv_std = (var.clone() + eps)?.sqrt()?.recip()?;
    let scale = (gamma.reshape((c, 1))? * inv_std)?;
    let shift = (beta.reshape((c, 1))? - (&mean * &scale)?)?;
    let y = x.broadcast_mul(&scale.reshape(cs.as_slice())?)?.broadcast_add(&shift.reshape(cs.as_slice())?)?;
    let stats = BatchStats { mean: mean.flatten_all()?.detach(), var: var.flatten_all()?.detach(), count };
    Ok((y, stats))
}
