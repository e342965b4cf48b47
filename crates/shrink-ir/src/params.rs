//! Named weights with their pruning masks and quantizer slots.
//!
//! Every tensor is a candle [`Var`] so the same store serves training (autograd), in-place
//! updates (running statistics, optimizer steps) and export.
use crate::error::{IrError, Result};
use crate::graph::{Graph, ParamKind};
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a weight is quantized in the forward pass (filled in by the quantization passes):
/// `wq = clamp(round_half_even((w - offset) / scale), qmin, qmax) * scale + offset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantSlot {
    /// Scheme name, e.g. `clip`, `symmetric`, `asymmetric`.
    pub scheme: String,
    /// Bit width (1..=16).
    pub bits: u32,
    /// One scale per tensor, or one per slice along `axis`.
    pub scales: Vec<f32>,
    /// Offsets matching `scales` (0 for symmetric schemes).
    pub offsets: Vec<f32>,
    pub qmin: f32,
    pub qmax: f32,
    /// Per-channel axis (0 = output channels), `None` for per-tensor.
    pub axis: Option<usize>,
}

impl QuantSlot {
    /// The fake-quant op this slot describes.
    pub fn fake_quant(&self) -> crate::ops::FakeQuant {
        crate::ops::FakeQuant {
            scales: self.scales.clone(),
            offsets: self.offsets.clone(),
            qmin: self.qmin,
            qmax: self.qmax,
            axis: self.axis,
        }
    }
}

/// One stored parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub var: Var,
    pub kind: ParamKind,
}

/// All parameters of a model, keyed by PyTorch state_dict name.
#[derive(Debug, Clone, Default)]
pub struct ParamStore {
    params: BTreeMap<String, Param>,
    masks: BTreeMap<String, Tensor>,
    quant: BTreeMap<String, QuantSlot>,
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts (or replaces) a parameter.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor, kind: ParamKind) -> Result<()> {
        let tensor = tensor.to_dtype(DType::F32)?.contiguous()?;
        self.params.insert(name.into(), Param { var: Var::from_tensor(&tensor)?, kind });
        Ok(())
    }

    /// The parameter named `name`.
    pub fn get(&self, name: &str) -> Result<&Param> {
        self.params.get(name).ok_or_else(|| IrError::MissingParam(name.to_string()))
    }

    /// The current value of `name` as a tensor (tracked for autograd when trainable).
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        Ok(self.get(name)?.var.as_tensor().clone())
    }

    /// Whether the store has `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.params.contains_key(name)
    }

    /// Iterates over parameters in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Param)> {
        self.params.iter()
    }

    /// Number of stored tensors.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Trainable variables in name order (what an optimizer updates).
    pub fn trainable(&self) -> Vec<(String, Var)> {
        self.params
            .iter()
            .filter(|(_, p)| p.kind.trainable())
            .map(|(n, p)| (n.clone(), p.var.clone()))
            .collect()
    }

    /// Overwrites the value of `name`, keeping its shape.
    pub fn set(&self, name: &str, value: &Tensor) -> Result<()> {
        let p = self.get(name)?;
        if p.var.dims() != value.dims() {
            return Err(IrError::ParamShape {
                name: name.into(),
                expected: p.var.dims().to_vec(),
                got: value.dims().to_vec(),
            });
        }
        p.var.set(&value.to_dtype(DType::F32)?)?;
        Ok(())
    }

    /// Rewrites the f32 values of `name` in place with `fill` (given the contiguous buffer), with
    /// no temporary copy of the tensor: sweeps over 100 MB models stay at one model in memory.
    pub fn update_in_place(&self, name: &str, fill: impl FnMut(&mut [f32]) + Send) -> Result<()> {
        let p = self.get(name)?;
        let op = InPlace { fill: std::sync::Mutex::new(fill) };
        p.var.as_tensor().inplace_op1(&op)?;
        Ok(())
    }

    /// The pruning mask of `name` (1 = keep, 0 = pruned), if any.
    pub fn mask(&self, name: &str) -> Option<&Tensor> {
        self.masks.get(name)
    }

    /// Attaches a 0/1 mask to a weight and zeroes the masked entries.
    pub fn set_mask(&mut self, name: &str, mask: Tensor) -> Result<()> {
        let p = self.get(name)?;
        if p.var.dims() != mask.dims() {
            return Err(IrError::ParamShape {
                name: format!("{name} (mask)"),
                expected: p.var.dims().to_vec(),
                got: mask.dims().to_vec(),
            });
        }
        // Detached: a mask read from a file may come as a variable, and masks get no gradient.
        let mask = mask.to_dtype(DType::F32)?.detach();
        p.var.set(&p.var.as_tensor().mul(&mask)?)?;
        self.masks.insert(name.to_string(), mask);
        Ok(())
    }

    /// All masks, by weight name.
    pub fn masks(&self) -> &BTreeMap<String, Tensor> {
        &self.masks
    }

    /// Re-applies every mask so pruned weights stay exactly zero after an update.
    pub fn apply_masks(&self) -> Result<()> {
        for (name, mask) in &self.masks {
            let var = &self.get(name)?.var;
            var.set(&var.as_tensor().mul(mask)?)?;
        }
        Ok(())
    }

    /// The quantizer attached to `name`, if any.
    pub fn quant(&self, name: &str) -> Option<&QuantSlot> {
        self.quant.get(name)
    }

    /// Attaches a quantizer to a weight.
    pub fn set_quant(&mut self, name: &str, slot: QuantSlot) -> Result<()> {
        self.get(name)?;
        self.quant.insert(name.to_string(), slot);
        Ok(())
    }

    /// All quantizer slots, by weight name.
    pub fn quants(&self) -> &BTreeMap<String, QuantSlot> {
        &self.quant
    }

    /// Checks that every parameter the graph needs exists with the right shape.
    pub fn check_against(&self, graph: &Graph) -> Result<()> {
        for node in &graph.nodes {
            for spec in node.op.params() {
                let name = format!("{}.{}", node.name, spec.suffix);
                let p = self.get(&name)?;
                if p.var.dims() != spec.shape.as_slice() {
                    return Err(IrError::ParamShape {
                        name,
                        expected: spec.shape,
                        got: p.var.dims().to_vec(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Moves every tensor to `device`.
    pub fn to_device(&self, device: &Device) -> Result<ParamStore> {
        let mut out = ParamStore::new();
        for (n, p) in &self.params {
            out.insert(n.clone(), p.var.as_tensor().to_device(device)?, p.kind)?;
        }
        for (n, m) in &self.masks {
            out.masks.insert(n.clone(), m.to_device(device)?);
        }
        out.quant = self.quant.clone();
        Ok(out)
    }

    /// A deep copy whose tensors do not share storage with `self`.
    pub fn deep_clone(&self) -> Result<ParamStore> {
        let mut out = ParamStore::new();
        for (n, p) in &self.params {
            out.insert(n.clone(), p.var.as_tensor().copy()?, p.kind)?;
        }
        out.masks = self.masks.clone();
        out.quant = self.quant.clone();
        Ok(out)
    }
}

/// The in-place op behind [`ParamStore::update_in_place`].
struct InPlace<F> {
    fill: std::sync::Mutex<F>,
}

impl<F: FnMut(&mut [f32]) + Send> candle_core::InplaceOp1 for InPlace<F> {
    fn name(&self) -> &'static str {
        "update-in-place"
    }

    fn cpu_fwd(
        &self,
        storage: &mut candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let candle_core::CpuStorage::F32(data) = storage else {
            candle_core::bail!("update_in_place expects f32")
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("update_in_place expects a contiguous tensor")
        };
        let mut fill = self.fill.lock().map_err(|_| candle_core::Error::Msg("poisoned".into()))?;
        (*fill)(&mut data[start..end]);
        Ok(())
    }
}
