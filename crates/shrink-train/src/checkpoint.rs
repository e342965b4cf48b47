//! Resumable training checkpoints: the model, the best epoch's weights, optimizer buffers and
//! loop state in one safetensors file (written atomically after every epoch). A resumed run
//! finishes exactly as the uninterrupted one: shuffling, augmentation and dropout streams are
//! derived from the seed and the epoch, the schedule from the epoch, and everything else is here.
use crate::optim::Optimizer;
use crate::trainer::EpochRecord;
use crate::{Result, TrainError};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use shrink_io::model_file::{model_from_raw, parse_safetensors, safetensors_bytes, RawTensors};
use shrink_ir::{Model, ParamStore};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const OPT_PREFIX: &str = "__optimizer__.";
const BEST_PREFIX: &str = "__best__.";
/// Metadata key of the loop state; its presence is what makes a file a training checkpoint.
pub use shrink_io::model_file::TRAIN_STATE_KEY;

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
    /// The settings that decide the run's numbers, by the flag that sets them (see
    /// [`crate::TrainConfig::identity`]); a resume must repeat them.
    #[serde(default)]
    pub identity: BTreeMap<String, String>,
    /// Total epochs the run was started for.
    #[serde(default)]
    pub epochs_planned: usize,
}

impl LoopState {
    /// The state of a run about to start its first epoch.
    pub fn start(seed: u64, identity: &BTreeMap<String, String>, epochs: usize) -> LoopState {
        LoopState {
            epochs_done: 0,
            optimizer_steps: 0,
            seed,
            history: vec![],
            best_epoch: None,
            best_val_accuracy: None,
            identity: identity.clone(),
            epochs_planned: epochs,
        }
    }

    /// Checks that a run configured with `identity` for `epochs` epochs may continue from this
    /// state; the error names the first contradicting flag and both values.
    pub fn check_resume(
        &self,
        path: &Path,
        identity: &BTreeMap<String, String>,
        epochs: usize,
    ) -> Result<()> {
        // The flags a user changes on purpose come first, so a default derived from one of them
        // (the learning rate from the optimizer) is not what the error names.
        const FIRST: [&str; 9] = [
            "--arch",
            "--init",
            "--data",
            "--optimizer",
            "--schedule",
            "--epochs",
            "--batch-size",
            "--seed",
            "--val-size",
        ];
        let mut flags: Vec<&String> = self.identity.keys().collect();
        flags.sort_by_key(|f| FIRST.iter().position(|p| p == f).unwrap_or(FIRST.len()));
        for flag in flags {
            let old = &self.identity[flag];
            if let Some(new) = identity.get(flag) {
                if new != old {
                    return Err(TrainError::Config(format!(
                        "--resume {}: {flag} is `{new}` but the checkpoint's run used `{old}`; \
                         resume with the same settings or start a new run",
                        path.display()
                    )));
                }
            }
        }
        if epochs < self.epochs_done {
            return Err(TrainError::Config(format!(
                "--resume {}: --epochs {epochs} is fewer than the {} epochs the checkpoint has done",
                path.display(),
                self.epochs_done
            )));
        }
        Ok(())
    }
}

/// Writes a checkpoint of `model` + the best weights so far + `opt` + `state` to `path`
/// atomically.
pub fn save_checkpoint(
    path: &Path,
    model: &Model,
    best: Option<&ParamStore>,
    opt: &Optimizer,
    state: &LoopState,
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> =
        model.params.iter().map(|(n, p)| (n.clone(), p.var.as_tensor().clone())).collect();
    for (n, m) in model.params.masks() {
        tensors.push((format!("{n}_mask"), m.clone()));
    }
    if let Some(best) = best {
        for (n, p) in best.iter() {
            tensors.push((format!("{BEST_PREFIX}{n}"), p.var.as_tensor().clone()));
        }
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
    if !model.act_quant.is_empty() {
        meta.insert("shrink.act_quant".into(), serde_json::to_string(&model.act_quant).map_err(cfg_err)?);
    }
    meta.insert(TRAIN_STATE_KEY.into(), serde_json::to_string(state).map_err(cfg_err)?);
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
    /// The best validation epoch's weights (`state.best_epoch`), when it is not the last one.
    pub best: Option<ParamStore>,
    pub optimizer_state: HashMap<String, Tensor>,
    pub state: LoopState,
}

fn not_a_checkpoint(path: &Path, why: &str) -> TrainError {
    TrainError::Config(format!(
        "--resume {}: not a training checkpoint ({why}); pass the `.ckpt` file an interrupted `shrink train` left",
        path.display()
    ))
}

/// Reads only the loop state of a checkpoint (its header), to check a resume before any work.
pub fn read_loop_state(path: &Path) -> Result<LoopState> {
    let metadata = shrink_io::model_file::read_safetensors_metadata(path).map_err(|e| match e {
        e @ shrink_io::IoError::File { .. } => TrainError::from(e),
        _ => not_a_checkpoint(path, "no safetensors header"),
    })?;
    let state = metadata
        .get(TRAIN_STATE_KEY)
        .ok_or_else(|| not_a_checkpoint(path, "a model file without training state"))?;
    serde_json::from_str(state)
        .map_err(|e| TrainError::Config(format!("{}: bad training state: {e}", path.display())))
}

/// Reads the checkpoint a run resumes from: it must have been written by a run with the same
/// `identity` and the same architecture as `model` (one-line errors naming the file).
pub fn load_for_resume(
    path: &Path,
    model: &shrink_ir::Model,
    identity: &BTreeMap<String, String>,
    epochs: usize,
) -> Result<Checkpoint> {
    let ck = load_checkpoint(path)?;
    ck.state.check_resume(path, identity, epochs)?;
    if ck.model.graph != model.graph {
        return Err(TrainError::Config(format!(
            "--resume {}: the checkpoint holds another architecture ({}) than this run's ({})",
            path.display(),
            ck.model.meta.arch,
            model.meta.arch
        )));
    }
    Ok(ck)
}

/// Reads a checkpoint written by [`save_checkpoint`].
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| shrink_io::IoError::file(path, e))?;
    let raw = parse_safetensors(&bytes).map_err(|e| e.in_file(path))?;
    drop(bytes);
    let state: LoopState = match raw.metadata.get(TRAIN_STATE_KEY) {
        Some(s) => {
            serde_json::from_str(s).map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?
        }
        None => return Err(not_a_checkpoint(path, "a model file without training state")),
    };
    let mut optimizer_state = HashMap::new();
    let mut best_tensors = HashMap::new();
    let mut tensors = BTreeMap::new();
    for (n, t) in raw.tensors {
        if let Some(rest) = n.strip_prefix(OPT_PREFIX) {
            optimizer_state.insert(rest.to_string(), t);
        } else if let Some(rest) = n.strip_prefix(BEST_PREFIX) {
            best_tensors.insert(rest.to_string(), t);
        } else {
            tensors.insert(n, t);
        }
    }
    let model =
        model_from_raw(RawTensors { tensors, metadata: raw.metadata }, None).map_err(|e| e.in_file(path))?;
    let best = if best_tensors.is_empty() {
        None
    } else {
        let store = model.params.deep_clone()?;
        for (name, p) in store.iter() {
            let t = best_tensors.remove(name).ok_or_else(|| {
                TrainError::Config(format!("{}: best weights lack `{name}`", path.display()))
            })?;
            if t.dims() != p.var.as_tensor().dims() {
                return Err(TrainError::Config(format!(
                    "{}: best weight `{name}` has the wrong shape",
                    path.display()
                )));
            }
            p.var.set(&t)?;
        }
        Some(store)
    };
    Ok(Checkpoint { model, best, optimizer_state, state })
}
