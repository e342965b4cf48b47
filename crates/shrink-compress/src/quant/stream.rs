//! Quantizer sweeps without model copies: every cell reads the model's own, untouched weights
//! and hands the forward pass quantized rows on demand ([`shrink_ir::WeightRows`]), so a sweep
//! holds the model once, not the model plus a pristine copy (see [`WeightSweep`]).
use super::formula::quantize_slice_into;
use super::pass::{channel_ranges, keep_flags, quantize_source_into, Include, QuantConfig, Source};
use super::{QuantError, Result};
use candle_core::{CpuStorage, Storage, Tensor};
use rayon::prelude::*;
use shrink_ir::view::with_f32_values;
use shrink_ir::{Model, ParamKind, Prepared, WeightRows};
use std::collections::HashMap;
use std::sync::Arc;

use super::formula::Range;

/// One conv/linear weight quantized on the fly from the model's pristine tensor.
struct QuantizedRows {
    /// The pristine weight (shares the model's storage, which a sweep never writes).
    weight: Tensor,
    /// Pruning keep flags, when the weight is masked.
    keep: Option<Arc<Vec<bool>>>,
    row_len: usize,
    /// One range for the whole tensor, or one per row (output channel).
    ranges: Vec<Range>,
    bits: u32,
}

impl WeightRows for QuantizedRows {
    fn fill(&self, start: usize, out: &mut [f32]) {
        let (storage, layout) = self.weight.storage_and_layout();
        let (Storage::Cpu(CpuStorage::F32(data)), Some((a, _))) = (&*storage, layout.contiguous_offsets())
        else {
            unreachable!("WeightSweep checks that weights are contiguous f32 CPU tensors")
        };
        let len = self.row_len.max(1);
        let w = &data[a + start * self.row_len..a + start * self.row_len + out.len()];
        out.par_chunks_mut(len).zip(w.par_chunks(len)).enumerate().for_each(|(i, (o, w))| {
            let row = start + i;
            let range = self.ranges[if self.ranges.len() == 1 { 0 } else { row }];
            let keep = self.keep.as_ref().map(|k| &k[row * self.row_len..row * self.row_len + w.len()]);
            quantize_slice_into(w, keep, range, self.bits, o);
        });
    }
}

/// The tensors a quantizer sweep rewrites, read from the model itself.
///
/// Conv/linear weights are never copied or written: [`WeightSweep::prepare`] returns kernels
/// that quantize their rows as the forward pass needs them (a low-bit linear layer that is
/// mostly zeros is compressed to CSR once per cell instead). Other selected tensors (biases,
/// BatchNorm affine, with [`Include`]) are small: they are kept as pristine copies and
/// quantized into the model in place.
pub struct WeightSweep {
    weights: Vec<SweptWeight>,
    small: Vec<Source>,
}

/// A conv/linear weight of the model, shared (not copied), with its pruning keep flags.
struct SweptWeight {
    name: String,
    weight: Tensor,
    keep: Option<Arc<Vec<bool>>>,
}

impl WeightSweep {
    /// Collects the tensors of `model` that `include` selects.
    pub fn new(model: &Model, include: Include) -> Result<WeightSweep> {
        let mut weights = Vec::new();
        let mut small = Vec::new();
        let streamable: Vec<String> = model
            .graph
            .nodes
            .iter()
            .filter(|n| matches!(n.op, shrink_ir::Op::Linear { .. } | shrink_ir::Op::Conv2d { .. }))
            .map(|n| format!("{}.weight", n.name))
            .collect();
        for (name, p) in model.params.iter() {
            if !include.selects(p.kind) || p.var.elem_count() == 0 {
                continue;
            }
            let t = p.var.as_tensor().detach();
            let in_place =
                matches!(&*t.storage_and_layout().0, Storage::Cpu(CpuStorage::F32(_))) && t.is_contiguous();
            let keep = keep_flags(model, name)?;
            if p.kind == ParamKind::Weight && in_place && streamable.contains(name) {
                weights.push(SweptWeight { name: name.clone(), weight: t, keep: keep.map(Arc::new) });
            } else {
                let values = t.flatten_all()?.to_vec1::<f32>()?;
                small.push(Source { name: name.clone(), dims: t.dims().to_vec(), values, keep });
            }
        }
        Ok(WeightSweep { weights, small })
    }

    /// Number of weights streamed (never copied).
    pub fn streamed(&self) -> usize {
        self.weights.len()
    }

    /// Sets up one cell: quantizes the small tensors into `model` and returns the kernels that
    /// give [`Model::forward_prepared`] the quantized weights (linear layers with at most
    /// `max_density` nonzeros after quantization run as CSR products). Values are exactly
    /// [`super::quantize_source`]'s. Nothing is changed on error.
    pub fn prepare(&self, model: &mut Model, cfg: &QuantConfig, max_density: f64) -> Result<Prepared> {
        cfg.check()?;
        let mut sources: HashMap<String, Arc<dyn WeightRows>> = HashMap::new();
        for SweptWeight { name, weight: t, keep } in &self.weights {
            let dims = t.dims();
            let (rows, row_len) = (dims[0], dims[1..].iter().product::<usize>());
            let channels = if cfg.per_channel {
                if dims.len() < 2 {
                    return Err(QuantError::NoChannels { name: name.clone(), dims: dims.to_vec() });
                }
                rows
            } else {
                1
            };
            let ranges =
                with_f32_values(t, |w| channel_ranges(w, keep.as_ref().map(|k| k.as_slice()), channels, cfg))
                    .map_err(QuantError::Ir)??;
            let rows_src =
                QuantizedRows { weight: t.clone(), keep: keep.clone(), row_len, ranges, bits: cfg.bits };
            sources.insert(name.clone(), Arc::new(rows_src));
        }
        for src in &self.small {
            if cfg.per_channel && src.dims.len() < 2 {
                return Err(QuantError::NoChannels { name: src.name.clone(), dims: src.dims.clone() });
            }
        }
        for src in &self.small {
            let mut res = Ok(());
            model.params.update_in_place(&src.name, |out| res = quantize_source_into(src, cfg, out))?;
            res?;
        }
        Ok(Prepared::streamed(model, &sources, max_density)?)
    }
}
