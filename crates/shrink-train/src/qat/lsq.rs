//! Learned Step size Quantization (Esser et al., ICLR 2020), with the optional LSQ+ offset
//! (Bhalgat et al. 2020):
//!
//! `v̂ = round(clamp((v − β)/s', −Qn, Qp))·s' + β`, `s' = gradscale(s, g)`, `g = 1/√(N·Qp)`,
//!
//! where `round` passes the gradient straight through, `clamp` has PyTorch's gradient (one
//! inside `[−Qn, Qp]` bounds included, zero outside), `gradscale` is the identity forward and
//! scales the step's gradient by `g`, and `N` is the number of values sharing the step (a
//! weight tensor's elements, or one output channel's per channel; an activation's features per
//! example). Steps start at `2·mean|v|/√Qp` (activations: over the first training batch).
use crate::Result;
use candle_core::{Tensor, Var};
use shrink_compress::quant::formula::round_ties_even;
use shrink_ir::QuantSlot;
use std::cell::Cell;

/// Integer range of a signed (`−2^(b−1) ..= 2^(b−1) − 1`) or unsigned (`0 ..= 2^b − 1`) grid.
pub fn grid(bits: u32, signed: bool) -> (f32, f32) {
    if signed {
        ((1u32 << (bits - 1)) as f32, ((1u32 << (bits - 1)) - 1) as f32)
    } else {
        (0.0, ((1u32 << bits) - 1) as f32)
    }
}

/// `x` forward, `g·∂` backward.
pub fn grad_scale(x: &Tensor, g: f64) -> Result<Tensor> {
    let scaled = (x * g)?;
    Ok(((&scaled - scaled.detach())? + x.detach())?)
}

/// `round_half_even(x)` forward (`torch.round`), identity gradient.
pub fn round_pass(x: &Tensor) -> Result<Tensor> {
    let v: Vec<f32> = x.flatten_all()?.to_vec1::<f32>()?.into_iter().map(round_ties_even).collect();
    let r = Tensor::from_vec(v, x.shape(), x.device())?;
    Ok(((r - x.detach())? + x)?)
}

/// `clamp(x, lo, hi)` with PyTorch's gradient: 1 where `lo <= x <= hi`, else 0.
pub fn clamp_pass(x: &Tensor, lo: f32, hi: f32) -> Result<Tensor> {
    let v = x.flatten_all()?.to_vec1::<f32>()?;
    let inside: Vec<f32> = v.iter().map(|&a| if a >= lo && a <= hi { 1.0 } else { 0.0 }).collect();
    let outside: Vec<f32> =
        v.iter().map(|&a| if a >= lo && a <= hi { 0.0 } else { a.clamp(lo, hi) }).collect();
    let inside = Tensor::from_vec(inside, x.shape(), x.device())?;
    let outside = Tensor::from_vec(outside, x.shape(), x.device())?;
    Ok((x.mul(&inside)? + outside)?)
}

/// One LSQ quantizer: a learnable step (one, or one per output channel) and optional offset.
#[derive(Debug)]
pub struct Lsq {
    pub step: Var,
    pub offset: Option<Var>,
    pub bits: u32,
    pub qn: f32,
    pub qp: f32,
    /// One step per slice along axis 0.
    pub per_channel: bool,
    /// Whether the step was set from data (activations start uninitialized).
    initialized: Cell<bool>,
}

impl Lsq {
    /// A quantizer of `channels` steps (1 = per tensor), not yet initialized.
    pub fn new(bits: u32, signed: bool, channels: usize, offset: bool) -> Result<Lsq> {
        let (qn, qp) = grid(bits, signed);
        let dev = candle_core::Device::Cpu;
        Ok(Lsq {
            step: Var::ones(channels, candle_core::DType::F32, &dev)?,
            offset: if offset { Some(Var::zeros(1, candle_core::DType::F32, &dev)?) } else { None },
            bits,
            qn,
            qp,
            per_channel: channels > 1,
            initialized: Cell::new(false),
        })
    }

    /// Whether the step has been initialized (from data or a stored slot).
    pub fn is_initialized(&self) -> bool {
        self.initialized.get()
    }

    /// `s = 2·mean|v|/√Qp` (per output channel when per channel).
    pub fn init_from(&self, v: &Tensor) -> Result<()> {
        let c = self.step.elem_count();
        let a = v.detach().abs()?.reshape((c, v.elem_count() / c))?.mean(1)?;
        let s = ((a * 2.0)? / (self.qp as f64).sqrt())?;
        // A slice of zeros would get a zero step: keep a tiny positive one instead.
        let s = s.maximum(1e-8)?;
        self.step.set(&s)?;
        self.initialized.set(true);
        Ok(())
    }

    /// Starts from a stored slot (a resumed run).
    pub fn restore(&self, slot: &QuantSlot) -> Result<()> {
        let dev = self.step.device().clone();
        self.step.set(&Tensor::new(slot.scales.as_slice(), &dev)?)?;
        if let Some(o) = &self.offset {
            o.set(&Tensor::new(&slot.offsets[..1], &dev)?)?;
        }
        self.initialized.set(true);
        Ok(())
    }

    /// The fake-quantized `v`; `n` is the number of values sharing one step.
    pub fn forward(&self, v: &Tensor, n: usize) -> Result<Tensor> {
        let g = 1.0 / ((n as f64) * self.qp as f64).sqrt();
        let s = grad_scale(self.step.as_tensor(), g)?;
        let mut shape = vec![1usize; v.rank()];
        if self.per_channel {
            shape[0] = self.step.elem_count();
        }
        let s = s.reshape(shape.as_slice())?;
        let shifted = match &self.offset {
            Some(b) => v.broadcast_sub(&b.as_tensor().reshape(vec![1usize; v.rank()])?)?,
            None => v.clone(),
        };
        let x = clamp_pass(&shifted.broadcast_div(&s)?, -self.qn, self.qp)?;
        let q = round_pass(&x)?.broadcast_mul(&s)?;
        Ok(match &self.offset {
            Some(b) => q.broadcast_add(&b.as_tensor().reshape(vec![1usize; v.rank()])?)?,
            None => q,
        })
    }

    /// The quantizer as a model slot (`scheme` names it in files).
    pub fn slot(&self, scheme: &str) -> Result<QuantSlot> {
        let scales = self.step.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let off = match &self.offset {
            Some(b) => b.as_tensor().flatten_all()?.to_vec1::<f32>()?[0],
            None => 0.0,
        };
        Ok(QuantSlot {
            scheme: scheme.to_string(),
            bits: self.bits,
            offsets: vec![off; scales.len()],
            scales,
            qmin: -self.qn,
            qmax: self.qp,
            axis: if self.per_channel { Some(0) } else { None },
        })
    }
}
