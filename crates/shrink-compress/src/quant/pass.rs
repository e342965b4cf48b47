//! Post-training quantization of a model's weights: pick the tensors, quantize each per tensor
//! or per output channel, and store the result as baked values plus a [`QuantSlot`], so the
//! model evaluates with the plain forward pass (fake quant) and packs into integer codes.
use super::formula::{affine, check_bits, quantize_slice, quantize_slice_into, Range};
use super::range::{choose, RangeMethod};
use super::{QuantError, Result, Scheme};
use candle_core::Tensor;
use shrink_ir::{Model, ParamKind, QuantSlot};

/// Which tensors besides conv/linear weights are quantized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    /// Conv/linear biases.
    pub bias: bool,
    /// BatchNorm weight and bias (running statistics are never quantized).
    pub batchnorm: bool,
}

impl Include {
    /// Parses a comma list of `bias`, `batchnorm` (empty = neither).
    pub fn parse(s: &str) -> Result<Include> {
        let mut inc = Include::default();
        for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            match item {
                "bias" => inc.bias = true,
                "batchnorm" | "bn" => inc.batchnorm = true,
                other => {
                    return Err(QuantError::Range(format!(
                        "include: unknown tensor group `{other}` (expected bias, batchnorm)"
                    )))
                }
            }
        }
        Ok(inc)
    }

    /// Whether a parameter of `kind` is quantized.
    pub fn selects(&self, kind: ParamKind) -> bool {
        match kind {
            ParamKind::Weight => true,
            ParamKind::Bias => self.bias,
            ParamKind::BnWeight | ParamKind::BnBias => self.batchnorm,
            ParamKind::RunningMean | ParamKind::RunningVar => false,
        }
    }
}

/// A post-training quantization recipe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantConfig {
    pub scheme: Scheme,
    pub bits: u32,
    pub range: RangeMethod,
    /// One range per output channel (axis 0) instead of one per tensor.
    pub per_channel: bool,
    pub include: Include,
}

impl QuantConfig {
    /// Checks bits and range.
    pub fn check(&self) -> Result<()> {
        check_bits(self.scheme, self.bits)?;
        self.range.check()
    }
}

/// A tensor as it is before quantization (kept so sweeps always start from pristine weights).
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
    /// Keep flags from the weight's pruning mask, if it has one. (A weight is pruned iff it is
    /// masked: the lab's STE finds pruned weights as `w == 0` because it has no masks; here an
    /// unmasked exact zero is an ordinary value, so one stray zero never costs a dense mask.)
    pub keep: Option<Vec<bool>>,
}

/// One quantized tensor: its values (exactly the lab formula), integer codes and slot.
#[derive(Debug, Clone)]
pub struct Quantized {
    pub name: String,
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
    pub codes: Vec<i32>,
    pub slot: QuantSlot,
}

/// The (non-empty) tensors of `model` that `include` selects, as pristine copies.
pub fn sources(model: &Model, include: Include) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for (name, p) in model.params.iter() {
        if !include.selects(p.kind) || p.var.elem_count() == 0 {
            continue;
        }
        let t = p.var.as_tensor();
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        let keep = keep_flags(model, name)?;
        out.push(Source { name: name.clone(), dims: t.dims().to_vec(), values, keep });
    }
    Ok(out)
}

/// Quantizes one tensor per `cfg` (per output channel: every slice along axis 0 has its own
/// range; a tensor with fewer than 2 dims has no channels and is an error).
pub fn quantize_source(src: &Source, cfg: &QuantConfig) -> Result<Quantized> {
    cfg.check()?;
    let (channels, axis) = if cfg.per_channel {
        if src.dims.len() < 2 {
            return Err(QuantError::NoChannels { name: src.name.clone(), dims: src.dims.clone() });
        }
        (src.dims[0], Some(0))
    } else {
        (1, None)
    };
    let len = src.values.len();
    let inner = len / channels.max(1);
    let mut values = Vec::with_capacity(len);
    let mut codes = Vec::with_capacity(len);
    let (mut scales, mut offsets) = (Vec::with_capacity(channels), Vec::with_capacity(channels));
    let (mut qmin, mut qmax) = (0.0, 0.0);
    for c in 0..channels {
        let w = &src.values[c * inner..(c + 1) * inner];
        let keep = src.keep.as_ref().map(|k| &k[c * inner..(c + 1) * inner]);
        let range = choose(cfg.scheme, cfg.bits, cfg.range, w, keep)?;
        let (v, k) = quantize_slice(w, keep, range, cfg.bits);
        values.extend(v);
        codes.extend(k);
        let a = affine(range, cfg.bits);
        scales.push(if a.scale.is_finite() { a.scale } else { 0.0 });
        offsets.push(a.offset);
        (qmin, qmax) = (a.qmin, a.qmax);
    }
    let slot = QuantSlot {
        scheme: cfg.scheme.name().to_string(),
        bits: cfg.bits,
        scales,
        offsets,
        qmin,
        qmax,
        axis,
    };
    Ok(Quantized { name: src.name.clone(), dims: src.dims.clone(), values, codes, slot })
}

/// The values of [`quantize_source`] written straight into `out` (the tensor's storage, say):
/// no codes, slots or temporary copies of the tensor.
pub fn quantize_source_into(src: &Source, cfg: &QuantConfig, out: &mut [f32]) -> Result<()> {
    cfg.check()?;
    if out.len() != src.values.len() {
        return Err(QuantError::Range(format!("`{}`: output has the wrong length", src.name)));
    }
    let channels = if cfg.per_channel {
        if src.dims.len() < 2 {
            return Err(QuantError::NoChannels { name: src.name.clone(), dims: src.dims.clone() });
        }
        src.dims[0]
    } else {
        1
    };
    let inner = src.values.len() / channels.max(1);
    let ranges = channel_ranges(&src.values, src.keep.as_deref(), channels, cfg)?;
    for (c, range) in ranges.into_iter().enumerate() {
        let span = c * inner..(c + 1) * inner;
        let keep = src.keep.as_ref().map(|k| &k[span.clone()]);
        quantize_slice_into(&src.values[span.clone()], keep, range, cfg.bits, &mut out[span]);
    }
    Ok(())
}

/// The range of each of `channels` equal slices of `w` (one slice: per tensor).
pub(crate) fn channel_ranges(
    w: &[f32],
    keep: Option<&[bool]>,
    channels: usize,
    cfg: &QuantConfig,
) -> Result<Vec<Range>> {
    let inner = w.len() / channels.max(1);
    (0..channels)
        .map(|c| {
            let span = c * inner..(c + 1) * inner;
            choose(cfg.scheme, cfg.bits, cfg.range, &w[span.clone()], keep.map(|k| &k[span]))
        })
        .collect()
}

/// The keep flags of `name`'s pruning mask, if it has one.
pub(crate) fn keep_flags(model: &Model, name: &str) -> Result<Option<Vec<bool>>> {
    Ok(match model.params.mask(name) {
        Some(m) => Some(m.flatten_all()?.to_vec1::<f32>()?.iter().map(|&x| x != 0.0).collect()),
        None => None,
    })
}

/// Quantizes every source (nothing is changed on error).
pub fn quantize_sources(sources: &[Source], cfg: &QuantConfig) -> Result<Vec<Quantized>> {
    cfg.check()?;
    sources.iter().map(|s| quantize_source(s, cfg)).collect()
}

/// Writes quantized tensors into `model`: values as the stored weights, slots attached (the
/// forward pass applies masks after fake quant, so pruned weights stay exactly zero).
pub fn apply(model: &mut Model, quantized: &[Quantized]) -> Result<()> {
    let device = model.device();
    for q in quantized {
        let t = Tensor::from_slice(&q.values, q.dims.as_slice(), &device)?;
        model.params.set(&q.name, &t)?;
        model.params.set_quant(&q.name, q.slot.clone())?;
    }
    Ok(())
}

/// Quantizes `model` in place per `cfg`; on error the model is unchanged.
pub fn quantize_model(model: &mut Model, cfg: &QuantConfig) -> Result<Vec<Quantized>> {
    let q = quantize_sources(&sources(model, cfg.include)?, cfg)?;
    apply(model, &q)?;
    Ok(q)
}
