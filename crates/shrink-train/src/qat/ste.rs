//! Quantization-aware training with a straight-through estimator: the labs' PTQ quantizers
//! (clip / symmetric / asymmetric, [`shrink_compress::quant::formula`]) in the forward pass, and
//! a gradient that is the identity where the value falls inside the quantizer's grid and zero
//! where it is clamped, as `torch.fake_quantize_per_{tensor,channel}_affine` does.
use crate::{Result, TrainError};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use shrink_compress::quant::activation::act_slot;
use shrink_compress::quant::formula::{affine, round_ties_even, Affine};
use shrink_compress::quant::{choose, RangeMethod, Scheme};
use shrink_ir::QuantSlot;
use std::cell::RefCell;

/// Fake quantization `clamp(round_half_even((x - offset)/scale), qmin, qmax)·scale + offset`
/// (per tensor, or per slice along `axis`) whose backward pass lets the gradient through where
/// the rounded code lies in `[qmin, qmax]` and blocks it elsewhere. A slice with `scale == 0`
/// (constant) passes through with the identity gradient.
#[derive(Debug, Clone)]
pub struct SteFakeQuant {
    pub scales: Vec<f32>,
    pub offsets: Vec<f32>,
    pub qmin: f32,
    pub qmax: f32,
    /// Axis of per-channel parameters (`None`: one scale for the whole tensor).
    pub axis: Option<usize>,
}

impl SteFakeQuant {
    /// The fake-quant op of a stored slot.
    pub fn from_slot(slot: &QuantSlot) -> Self {
        SteFakeQuant {
            scales: slot.scales.clone(),
            offsets: slot.offsets.clone(),
            qmin: slot.qmin,
            qmax: slot.qmax,
            axis: slot.axis,
        }
    }

    /// Channel of flat index `i` of a tensor of `dims`.
    fn channel(&self, i: usize, dims: &[usize]) -> usize {
        match self.axis {
            Some(a) => (i / dims[a + 1..].iter().product::<usize>()) % self.scales.len(),
            None => 0,
        }
    }

    /// The value of `x` and whether the gradient passes there.
    fn eval(&self, c: usize, x: f32) -> (f32, bool) {
        let (s, o) = (self.scales[c], self.offsets[c]);
        if s == 0.0 {
            return (x, true);
        }
        let r = round_ties_even((x - o) / s);
        (r.clamp(self.qmin, self.qmax) * s + o, r >= self.qmin && r <= self.qmax)
    }

    fn values(&self, x: &Tensor) -> candle_core::Result<(Vec<f32>, Vec<usize>)> {
        let dims = x.dims().to_vec();
        let v = x.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
        Ok((v, dims))
    }
}

impl CustomOp1 for SteFakeQuant {
    fn name(&self) -> &'static str {
        "ste-fake-quant"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let data = match storage {
            CpuStorage::F32(d) => d,
            _ => candle_core::bail!("ste-fake-quant expects f32"),
        };
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("ste-fake-quant expects a contiguous tensor".into()))?;
        let dims = layout.shape().dims();
        let out = data[start..end].iter().enumerate().map(|(i, &x)| self.eval(self.channel(i, dims), x).0);
        Ok((CpuStorage::F32(out.collect()), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (x, dims) = self.values(arg)?;
        let mask: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| if self.eval(self.channel(i, &dims), v).1 { 1.0 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, arg.shape(), grad_res.device())?;
        Ok(Some(grad_res.mul(&mask)?))
    }
}

/// Applies [`SteFakeQuant`] to `x` (any device: computed on the CPU).
pub fn ste_fake_quant(x: &Tensor, q: &SteFakeQuant) -> Result<Tensor> {
    if !x.device().is_cpu() {
        let cpu = x.to_device(&candle_core::Device::Cpu)?.contiguous()?;
        return Ok(cpu.apply_op1(q.clone())?.to_device(x.device())?);
    }
    Ok(x.contiguous()?.apply_op1(q.clone())?)
}

/// How a weight quantizer's range follows the weights during training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeMode {
    /// Recomputed from the current weights in every forward pass (the lab's).
    Dynamic,
    /// Computed once from the starting weights.
    Frozen,
    /// Exponential moving average `r ← m·r + (1 − m)·r_batch` of the per-forward range.
    Ema(f32),
}

impl RangeMode {
    /// Parses `dynamic`, `frozen` or `ema` (momentum 0.99).
    pub fn parse(s: &str) -> Result<RangeMode> {
        match s {
            "dynamic" => Ok(RangeMode::Dynamic),
            "frozen" => Ok(RangeMode::Frozen),
            "ema" => Ok(RangeMode::Ema(0.99)),
            other => {
                Err(TrainError::Config(format!("--range must be dynamic, frozen or ema, got `{other}`")))
            }
        }
    }
}

/// The STE quantizer of one weight tensor: a lab scheme at `bits`, per tensor or per output
/// channel, its range chosen over the unpruned entries (`keep`).
#[derive(Debug)]
pub struct SteWeight {
    pub scheme: Scheme,
    pub bits: u32,
    pub per_channel: bool,
    pub mode: RangeMode,
    keep: Option<Vec<bool>>,
    current: RefCell<Option<Vec<Affine>>>,
}

impl SteWeight {
    /// A quantizer whose range is not chosen yet (chosen at the first forward pass).
    pub fn new(
        scheme: Scheme,
        bits: u32,
        per_channel: bool,
        mode: RangeMode,
        keep: Option<Vec<bool>>,
    ) -> Self {
        SteWeight { scheme, bits, per_channel, mode, keep, current: RefCell::new(None) }
    }

    /// Starts from a stored slot's ranges (a resumed run).
    pub fn restore(&self, slot: &QuantSlot) {
        let ranges = slot
            .scales
            .iter()
            .zip(&slot.offsets)
            .map(|(&scale, &offset)| Affine { scale, offset, qmin: slot.qmin, qmax: slot.qmax })
            .collect();
        *self.current.borrow_mut() = Some(ranges);
    }

    /// The per-slice affine ranges of the lab scheme over `w` (max range, as the PTQ default).
    fn ranges_of(&self, w: &Tensor) -> Result<Vec<Affine>> {
        let v = w.flatten_all()?.to_vec1::<f32>()?;
        let channels = if self.per_channel && w.dims().len() >= 2 { w.dims()[0] } else { 1 };
        let inner = v.len() / channels.max(1);
        (0..channels)
            .map(|c| {
                let span = c * inner..(c + 1) * inner;
                let keep = self.keep.as_ref().map(|k| &k[span.clone()]);
                let range = choose(self.scheme, self.bits, RangeMethod::Max, &v[span], keep)
                    .map_err(|e| TrainError::Config(e.to_string()))?;
                let a = affine(range, self.bits);
                Ok(if a.scale.is_finite() { a } else { Affine { scale: 0.0, ..a } })
            })
            .collect()
    }

    /// Updates the range from `w` per the mode (a dynamic range follows the weights in every
    /// pass, an EMA moves in training passes only); returns the ranges in force.
    fn update(&self, w: &Tensor, training: bool) -> Result<Vec<Affine>> {
        let mut cur = self.current.borrow_mut();
        let next = match (&*cur, self.mode) {
            (None, _) => self.ranges_of(w)?,
            (Some(_), RangeMode::Dynamic) => self.ranges_of(w)?,
            (Some(old), RangeMode::Ema(m)) if training => old
                .iter()
                .zip(self.ranges_of(w)?)
                .map(|(o, n)| Affine {
                    scale: m * o.scale + (1.0 - m) * n.scale,
                    offset: m * o.offset + (1.0 - m) * n.offset,
                    ..n
                })
                .collect(),
            (Some(old), _) => old.clone(),
        };
        *cur = Some(next.clone());
        Ok(next)
    }

    /// The weight as the forward pass sees it.
    pub fn forward(&self, w: &Tensor, training: bool) -> Result<Tensor> {
        let r = self.update(w, training)?;
        ste_fake_quant(w, &self.op(&r))
    }

    fn op(&self, r: &[Affine]) -> SteFakeQuant {
        SteFakeQuant {
            scales: r.iter().map(|a| a.scale).collect(),
            offsets: r.iter().map(|a| a.offset).collect(),
            qmin: r[0].qmin,
            qmax: r[0].qmax,
            axis: if r.len() > 1 || self.per_channel { Some(0) } else { None },
        }
    }

    /// The quantizer in force as a model slot (ranges chosen from `w` if none is yet).
    pub fn slot(&self, w: &Tensor) -> Result<QuantSlot> {
        let r = self.update(w, false)?;
        let op = self.op(&r);
        Ok(QuantSlot {
            scheme: self.scheme.name().to_string(),
            bits: self.bits,
            scales: op.scales,
            offsets: op.offsets,
            qmin: op.qmin,
            qmax: op.qmax,
            axis: op.axis,
        })
    }
}

/// Per-tensor asymmetric activation fake-quant with an EMA of the batch range (`[0, max]` for
/// non-negative activations), as the PTQ activation slots ([`act_slot`]).
#[derive(Debug)]
pub struct SteActivation {
    pub bits: u32,
    pub momentum: f32,
    range: RefCell<Option<(f32, f32)>>,
}

impl SteActivation {
    /// A quantizer whose range is set by the first training batch.
    pub fn new(bits: u32, momentum: f32) -> Self {
        SteActivation { bits, momentum, range: RefCell::new(None) }
    }

    /// Starts from a stored slot (a resumed run).
    pub fn restore(&self, slot: &QuantSlot) {
        let lo = slot.offsets[0];
        *self.range.borrow_mut() = Some((lo, lo + slot.scales[0] * slot.qmax));
    }

    /// The activation as later layers see it; training batches move the range.
    pub fn forward(&self, y: &Tensor, training: bool) -> Result<Tensor> {
        let mut range = self.range.borrow_mut();
        if training || range.is_none() {
            let v = y.flatten_all()?.to_vec1::<f32>()?;
            let lo = v.iter().fold(f32::INFINITY, |m, &x| m.min(x)).min(0.0);
            let hi = v.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)).max(0.0);
            *range = Some(match *range {
                None => (lo, hi),
                Some((l, h)) => {
                    let m = self.momentum;
                    (m * l + (1.0 - m) * lo, m * h + (1.0 - m) * hi)
                }
            });
        }
        let (lo, hi) = range.unwrap_or((0.0, 0.0));
        ste_fake_quant(y, &SteFakeQuant::from_slot(&act_slot(lo, hi, self.bits)))
    }

    /// The quantizer in force as a model slot (`None` before any batch).
    pub fn slot(&self) -> Option<QuantSlot> {
        self.range.borrow().map(|(lo, hi)| act_slot(lo, hi, self.bits))
    }
}
