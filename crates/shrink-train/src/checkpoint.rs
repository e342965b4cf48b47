//! Resumable training checkpoints: the model, optimizer buffers and loop state in one
//! safetensors file (written atomically after every epoch).
use crate::optim::Optimizer;
use crate::trainer::EpochRecord;
use crate::{Result, TrainError};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use shrink_io::model_file::{model_from_raw, parse_safetensors, safetensors_bytes, RawTensors};
use shrink_ir::Model;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const OPT_PREFIX: &str = "__optimizer__.";

/// Loop state stored beside the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoopState {
    /// Number of completed epochs.
    pub epochs_done: usize,
    pub optimizer_steps: u64,
    pub seed: u64,
    pub history: Vec<EpochRecord>,
    pub best_epoch: Option<usize>,
    pub best_val_accuracy: Option<f64>,
}

/// Writes a checkpoint of `model` + `opt` + `state` to `path` atomically.
pub fn save_checkpoint(path: &Path, model: &Model, opt: &Optimizer, state: &LoopState) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> =
        model.params.iter().map(|(n, p)| (n.clone(), p.var.as_tensor().clone())).collect();
    for (n, m) in model.params.masks() {
        tensors.push((format!("{n}_mask"), m.clone()));
    }
    for (n, t) in opt.state_tensors()? {
        tensors.push((format!("{OPT_PREFIX}{n}"), t));
    }
    let mut meta = BTreeMap::new();
    meta.insert("shrink.meta".into(), serde_json::to_string(&model.meta).map_err(cfg_err)?);
    meta.insert("shrink.graph".into(), serde_json::to_string(&model.graph).map_err(cfg_err)?);
    if !model.params.quants().is_empty() {
        meta.insert("shrink.quant".into(), serde_json::to_string(model.params.quants()).map_err(cfg_err)?);
    }
    meta.insert("shrink.train_state".into(), serde_json::to_string(state).map_err(cfg_err)?);
    let bytes = safetensors_bytes(&tensors, meta)?;
    shrink_io::atomic::write_atomic(path, &bytes)?;
    Ok(())
}

fn cfg_err(e: serde_json::Error) -> TrainError {
    TrainError::Config(e.to_string())
}

/// A loaded checkpoint.
pub struct Checkpoint {
    pub model: Model,
    pub optimizer_state: HashMap<String, Tensor>,
    pub state: LoopState,
}

/// Reads a checkpoint written by [`save_checkpoint`].
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| shrink_io::IoError::file(path, e))?;
    let raw = parse_safetensors(&bytes).map_err(|e| e.in_file(path))?;
    let state: LoopState = match raw.metadata.get("shrink.train_state") {
        Some(s) => {
            serde_json::from_str(s).map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?
        }
        None => {
            return Err(TrainError::Config(format!("{}: not a training checkpoint", path.display())));
        }
    };
    let mut optimizer_state = HashMap::new();
    let mut tensors = BTreeMap::new();
    for (n, t) in raw.tensors {
        match n.strip_prefix(OPT_PREFIX) {
            Some(rest) => {
                optimizer_state.insert(rest.to_string(), t);
            }
            None => {
                tensors.insert(n, t);
            }
        }
    }
    let model =
        model_from_raw(RawTensors { tensors, metadata: raw.metadata }, None).map_err(|e| e.in_file(path))?;
    Ok(Checkpoint { model, optimizer_state, state })
}
