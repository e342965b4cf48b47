//! Post-training quantization that rewrites a model's weights in place, tensor by tensor:
//! no pristine copy, integer codes or second value buffer of the model is ever held, so
//! quantizing a 100 MB model peaks at about the model itself (the `shrink quantize` path).
//! Values and slots are exactly those of [`super::quantize_model`].
use super::formula::{affine, quantize_slice_into, Range};
use super::pass::{channel_ranges, QuantConfig};
use super::{QuantError, Result};
use shrink_ir::view::with_f32_values;
use shrink_ir::{Model, QuantSlot};

/// Elements copied aside per step while a tensor is rewritten in place.
const CHUNK: usize = 1 << 16;

/// One tensor quantized by [`quantize_model_in_place`].
#[derive(Debug, Clone)]
pub struct QuantizedTensor {
    pub name: String,
    pub dims: Vec<usize>,
    /// The quantizer attached to the weight.
    pub slot: QuantSlot,
}

impl QuantizedTensor {
    /// Number of quantized values.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the tensor has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keep flags of `name`'s mask (read in place from the mask tensor).
fn keep_of(model: &Model, name: &str) -> Result<Option<Vec<bool>>> {
    match model.params.mask(name) {
        Some(m) => Ok(Some(with_f32_values(m, |v| v.iter().map(|&x| x != 0.0).collect())?)),
        None => Ok(None),
    }
}

/// Quantizes `model` per `cfg` like [`super::quantize_model`], rewriting each weight in place.
/// Every range is chosen (and every error raised) before any weight changes, so on error the
/// model is unchanged.
pub fn quantize_model_in_place(model: &mut Model, cfg: &QuantConfig) -> Result<Vec<QuantizedTensor>> {
    cfg.check()?;
    let mut planned: Vec<(String, Vec<usize>, Vec<Range>)> = Vec::new();
    for (name, p) in model.params.iter() {
        if !cfg.include.selects(p.kind) || p.var.elem_count() == 0 {
            continue;
        }
        let dims = p.var.dims().to_vec();
        let channels = if cfg.per_channel {
            if dims.len() < 2 {
                return Err(QuantError::NoChannels { name: name.clone(), dims });
            }
            dims[0]
        } else {
            1
        };
        let keep = keep_of(model, name)?;
        let ranges =
            with_f32_values(p.var.as_tensor(), |w| channel_ranges(w, keep.as_deref(), channels, cfg))??;
        planned.push((name.clone(), dims, ranges));
    }
    let mut out = Vec::with_capacity(planned.len());
    for (name, dims, ranges) in planned {
        let keep = keep_of(model, &name)?;
        let bits = cfg.bits;
        model.params.update_in_place(&name, |values| {
            let inner = values.len() / ranges.len().max(1);
            let mut scratch = vec![0f32; CHUNK.min(inner)];
            for (c, range) in ranges.iter().enumerate() {
                let base = c * inner;
                for start in (0..inner).step_by(CHUNK) {
                    let span = base + start..base + (start + CHUNK).min(inner);
                    let src = &mut scratch[..span.len()];
                    src.copy_from_slice(&values[span.clone()]);
                    let k = keep.as_ref().map(|k| &k[span.clone()]);
                    quantize_slice_into(src, k, *range, bits, &mut values[span]);
                }
            }
        })?;
        let (mut scales, mut offsets) = (Vec::with_capacity(ranges.len()), Vec::with_capacity(ranges.len()));
        let (mut qmin, mut qmax) = (0.0, 0.0);
        for range in &ranges {
            let a = affine(*range, bits);
            scales.push(if a.scale.is_finite() { a.scale } else { 0.0 });
            offsets.push(a.offset);
            (qmin, qmax) = (a.qmin, a.qmax);
        }
        let slot = QuantSlot {
            scheme: cfg.scheme.name().to_string(),
            bits,
            scales,
            offsets,
            qmin,
            qmax,
            axis: cfg.per_channel.then_some(0),
        };
        model.params.set_quant(&name, slot.clone())?;
        out.push(QuantizedTensor { name, dims, slot });
    }
    Ok(out)
}
