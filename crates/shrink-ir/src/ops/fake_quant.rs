//! Fake quantization with a straight-through gradient, and PyTorch's half-to-even rounding.
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

/// Rounds half to even, like `torch.round` (Rust's `f32::round` rounds half away from zero).
pub fn round_half_even(v: f32) -> f32 {
    let r = v.round();
    if (v - v.trunc()).abs() == 0.5 {
        2.0 * (v / 2.0).round()
    } else {
        r
    }
}

/// Affine fake quantization parameters for one tensor.
#[derive(Debug, Clone)]
pub struct FakeQuant {
    /// One scale (per tensor) or one per slice along `axis`.
    pub scales: Vec<f32>,
    /// Offsets matching `scales`: `wq = clamp(round((w - off)/scale), qmin, qmax)*scale + off`.
    pub offsets: Vec<f32>,
    pub qmin: f32,
    pub qmax: f32,
    /// Axis of per-channel parameters (0 for output channels).
    pub axis: Option<usize>,
}

impl CustomOp1 for FakeQuant {
    fn name(&self) -> &'static str {
        "fake-quant"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let data = match storage {
            CpuStorage::F32(d) => d,
            _ => candle_core::bail!("fake-quant expects f32"),
        };
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("fake-quant expects a contiguous tensor".into()))?;
        let data = &data[start..end];
        let dims = layout.shape().dims();
        let inner: usize = match self.axis {
            Some(a) => dims[a + 1..].iter().product(),
            None => data.len().max(1),
        };
        let channels = self.scales.len();
        let out: Vec<f32> = data
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let c = if self.axis.is_some() { (i / inner) % channels } else { 0 };
                let (s, o) = (self.scales[c], self.offsets[c]);
                if s == 0.0 {
                    return w;
                }
                round_half_even((w - o) / s).clamp(self.qmin, self.qmax) * s + o
            })
            .collect();
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        // Straight-through estimator.
        Ok(Some(grad_res.clone()))
    }
}

/// Applies fake quantization to `w`.
pub fn fake_quant(w: &Tensor, q: &FakeQuant) -> Result<Tensor> {
    if !w.device().is_cpu() {
        let cpu = w.to_device(&candle_core::Device::Cpu)?.contiguous()?;
        return cpu.apply_op1(q.clone())?.to_device(w.device());
    }
    w.contiguous()?.apply_op1(q.clone())
}
