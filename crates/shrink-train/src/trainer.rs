//! The training loop: seeded shuffling and augmentation, one optimizer step per batch, masks
//! re-applied after every step, validation each epoch, best-by-validation weights kept, and a
//! resumable checkpoint written atomically after every epoch.
use crate::checkpoint::{load_for_resume, save_checkpoint, LoopState};
use crate::eval::{evaluate, loss_and_correct};
use crate::kd::{kd_loss, KdConfig};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::schedule::{Position, Schedule};
use crate::sharing::Sharing;
use crate::sparsity::{Sparsity, SparsityConfig};
use crate::{Result, TrainError};
use candle_core::Tensor;
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use shrink_io::data::{make_batch, Augment, Dataset, Normalize};
use shrink_ir::{Mode, Model};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Everything that controls a training run.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    /// Iterations of linear learning-rate warmup at the start of the run (0: none).
    pub warmup_steps: u64,
    pub seed: u64,
    pub normalize: Normalize,
    pub augment: Option<Augment>,
    pub eval_batch_size: usize,
    /// Where to write the per-epoch resumable checkpoint.
    pub checkpoint: Option<PathBuf>,
    /// Continue from this checkpoint.
    pub resume: Option<PathBuf>,
    /// Show progress bars and per-epoch lines on stderr.
    pub progress: bool,
    /// Sparsity-inducing regularizer (L1, group lasso, trimmed L1; subgradient or proximal).
    pub sparsity: Option<SparsityConfig>,
    /// Deep Compression centroid fine-tuning: every conv/linear weight keeps its layer's shared
    /// values (`shrink share`), the centroids move by the summed gradients of their weights.
    pub share_weights: bool,
    /// The settings that decide the run's numbers, keyed by the flag that sets them (`--seed`
    /// → `1`): stored in the checkpoint, and a resume whose value differs is refused naming the
    /// flag. Empty for callers without flags.
    pub identity: BTreeMap<String, String>,
}

/// What happened in one epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// The learning rate of the epoch's first iteration.
    pub lr: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub seconds: f64,
    pub samples_per_sec: f64,
}

impl EpochRecord {
    /// The record of 0-based `epoch`: mean training loss and accuracy of `tally`, validation
    /// loss and accuracy if any, throughput over `seconds`.
    pub fn new(
        epoch: usize,
        lr: f64,
        tally: &EpochTally,
        val_loss: Option<f64>,
        val_accuracy: Option<f64>,
        seconds: f64,
    ) -> EpochRecord {
        let seen = tally.seen.max(1) as f64;
        EpochRecord {
            epoch: epoch + 1,
            lr,
            train_loss: tally.loss_sum / seen,
            train_accuracy: tally.correct as f64 / seen,
            val_loss,
            val_accuracy,
            seconds,
            samples_per_sec: tally.seen as f64 / seconds.max(1e-9),
        }
    }

    /// The epoch's progress line on stderr; `val` names the validation figure ("val acc").
    pub fn log(&self, val: &str) {
        eprintln!(
            "epoch {:>3}: lr {:.4} train loss {:.4} acc {:.2}% | {val} {} | {:.1}s ({:.0} ex/s)",
            self.epoch,
            self.lr,
            self.train_loss,
            100.0 * self.train_accuracy,
            self.val_accuracy.map(|a| format!("{:.2}%", 100.0 * a)).unwrap_or_else(|| "-".into()),
            self.seconds,
            self.samples_per_sec
        );
    }
}

/// One epoch's running training loss and accuracy (what the training, QAT and graph loops
/// accumulate per step) and the progress bar's message.
#[derive(Debug)]
pub struct EpochTally {
    /// Sum over examples of the per-example loss.
    pub loss_sum: f64,
    /// Correctly classified training examples.
    pub correct: usize,
    /// Training examples seen.
    pub seen: usize,
    start: Instant,
}

impl EpochTally {
    /// An empty tally; the epoch's clock starts now.
    pub fn start() -> EpochTally {
        EpochTally { loss_sum: 0.0, correct: 0, seen: 0, start: Instant::now() }
    }

    /// Adds 0-based `step` of 0-based `epoch`: `loss` is the batch's mean over `n` examples,
    /// `ok` of them correct. A loss that is not finite is an error naming the epoch and step;
    /// every tenth step refreshes `pb`'s message.
    pub fn add(
        &mut self,
        loss: f64,
        ok: usize,
        n: usize,
        epoch: usize,
        step: usize,
        pb: &ProgressBar,
    ) -> Result<()> {
        if !loss.is_finite() {
            return Err(TrainError::Config(format!(
                "loss became {loss} at epoch {} step {step}; lower --lr",
                epoch + 1
            )));
        }
        self.loss_sum += loss * n as f64;
        self.correct += ok;
        self.seen += n;
        pb.inc(n as u64);
        if step.is_multiple_of(10) {
            let rate = self.seen as f64 / self.seconds().max(1e-9);
            pb.set_message(format!(
                "loss {:.4} acc {:.2}% {:.0} ex/s",
                self.loss_sum / self.seen as f64,
                100.0 * self.correct as f64 / self.seen as f64,
                rate
            ));
        }
        Ok(())
    }

    /// Seconds since [`EpochTally::start`].
    pub fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// Summary of a training run.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub epochs: Vec<EpochRecord>,
    /// Epoch (1-based) whose weights were kept, when a validation set was given.
    pub best_epoch: Option<usize>,
    pub best_val_accuracy: Option<f64>,
}

/// Mixes the run seed with a purpose and a counter into an independent stream seed.
pub(crate) fn derive_seed(seed: u64, purpose: u64, counter: u64) -> u64 {
    let mut z =
        seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ counter.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn bar(len: u64, enabled: bool, prefix: String) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix);
    pb
}

/// Where the loop is when a [`StepHook`] is called, with the model and optimizer to act on.
pub struct HookContext<'a> {
    pub model: &'a mut Model,
    pub optimizer: &'a mut Optimizer,
    /// 0-based epoch.
    pub epoch: usize,
    /// 0-based iteration within the epoch.
    pub step_in_epoch: usize,
    /// 0-based iteration over the whole run (`epoch · steps_per_epoch + step_in_epoch`): the
    /// step about to be taken in [`StepHook::before_step`], the one just taken in
    /// [`StepHook::after_step`].
    pub global_step: u64,
    pub steps_per_epoch: u64,
    /// Iterations in the whole run.
    pub total_steps: u64,
}

/// Code run by the training loop around each optimizer step and after each epoch (pruning
/// schedules, quantizer range updates, ...). A hook must derive what it does from the position
/// it is given (and the model/optimizer state, which checkpoints keep), so a resumed run calls
/// it exactly as the uninterrupted one did. Every method defaults to doing nothing.
pub trait StepHook {
    /// Before the forward pass of each iteration.
    fn before_step(&mut self, _ctx: &mut HookContext) -> Result<()> {
        Ok(())
    }

    /// After each optimizer step (and after masks were re-applied).
    fn after_step(&mut self, _ctx: &mut HookContext) -> Result<()> {
        Ok(())
    }

    /// After each epoch's validation, before the checkpoint is written.
    fn after_epoch(&mut self, _ctx: &mut HookContext, _record: &EpochRecord) -> Result<()> {
        Ok(())
    }

    /// Whether the weights at the end of 0-based `epoch` may be kept as the best by validation
    /// (a pruning schedule: only once its final sparsity is reached).
    fn counts_for_best(&self, _epoch: usize, _steps_per_epoch: u64) -> bool {
        true
    }
}

/// Trains `model` in place on `train_set`; when `val_set` is given the weights of the best
/// validation epoch are restored at the end.
pub fn train(
    model: &mut Model,
    train_set: &Dataset,
    val_set: Option<&Dataset>,
    cfg: &TrainConfig,
) -> Result<TrainReport> {
    train_with_hooks(model, train_set, val_set, cfg, &mut [])
}

/// [`train`] with `hooks` called around every optimizer step and after every epoch, in order.
pub fn train_with_hooks(
    model: &mut Model,
    train_set: &Dataset,
    val_set: Option<&Dataset>,
    cfg: &TrainConfig,
    hooks: &mut [&mut dyn StepHook],
) -> Result<TrainReport> {
    train_distilled(model, train_set, val_set, cfg, hooks, None)
}

/// [`train_with_hooks`] distilled from `teacher` (Hinton et al. 2015, [`crate::kd::kd_loss`]):
/// the loss mixes the teacher's softened outputs (the teacher runs in eval mode, no gradient)
/// with the labels. `None` trains on the labels alone, as [`train_with_hooks`].
pub fn train_distilled(
    model: &mut Model,
    train_set: &Dataset,
    val_set: Option<&Dataset>,
    cfg: &TrainConfig,
    hooks: &mut [&mut dyn StepHook],
    teacher: Option<(&Model, KdConfig)>,
) -> Result<TrainReport> {
    if let Some((_, kd)) = teacher {
        kd.check()?;
    }
    if cfg.batch_size == 0 {
        return Err(TrainError::Config("--batch-size must be positive".into()));
    }
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(TrainError::Config(format!("--lr must be a positive number, got {}", cfg.lr)));
    }
    if train_set.is_empty() {
        return Err(TrainError::Config(format!("training set `{}` is empty", train_set.source)));
    }
    let mut state = LoopState::start(cfg.seed, &cfg.identity, cfg.epochs);
    let mut resumed_opt = None;
    let mut best_params = None;
    if let Some(path) = &cfg.resume {
        let ck = load_for_resume(path, model, &cfg.identity, cfg.epochs)?;
        *model = ck.model;
        // Without stored best weights the best epoch is the last one done: the current weights.
        best_params = match (ck.best, ck.state.best_epoch) {
            (Some(best), _) => Some(best),
            (None, Some(_)) => Some(model.params.deep_clone()?),
            (None, None) => None,
        };
        state = ck.state;
        state.epochs_planned = cfg.epochs;
        resumed_opt = Some(ck.optimizer_state);
    }
    let mut opt = Optimizer::new(model.params.trainable(), cfg.optimizer, cfg.lr);
    if let Some(tensors) = resumed_opt {
        opt.load_state(&tensors, state.optimizer_steps)?;
    }
    let sparsity = cfg.sparsity.map(|c| Sparsity::new(model, c)).transpose()?;
    let mut sharing = if cfg.share_weights { Some(Sharing::new(model)?) } else { None };
    let device = model.device();
    let [c, h, w] = train_set.image_shape();
    let mut has_masks = !model.params.masks().is_empty();
    let mut buf = Vec::new();
    let steps_per_epoch = train_set.len().div_ceil(cfg.batch_size) as u64;
    let position = |epoch: usize, step: usize| Position {
        epoch,
        step: epoch as u64 * steps_per_epoch + step as u64,
        total_steps: steps_per_epoch * cfg.epochs as u64,
        warmup_steps: cfg.warmup_steps,
    };
    let per_iteration = cfg.schedule.per_iteration(cfg.warmup_steps);
    let total_steps = steps_per_epoch * cfg.epochs as u64;
    macro_rules! call_hooks {
        ($method:ident, $epoch:expr, $step:expr $(, $extra:expr)?) => {
            if !hooks.is_empty() {
                let mut ctx = HookContext {
                    model: &mut *model,
                    optimizer: &mut opt,
                    epoch: $epoch,
                    step_in_epoch: $step,
                    global_step: $epoch as u64 * steps_per_epoch + $step as u64,
                    steps_per_epoch,
                    total_steps,
                };
                for h in hooks.iter_mut() {
                    h.$method(&mut ctx $(, $extra)?)?;
                }
            }
        };
    }
    for epoch in state.epochs_done..cfg.epochs {
        let epoch_lr = cfg.schedule.lr_at(cfg.lr, position(epoch, 0));
        opt.set_lr(epoch_lr);
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, 1, epoch as u64)));
        let mut aug_rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, 2, epoch as u64));
        let pb = bar(order.len() as u64, cfg.progress, format!("epoch {}/{}", epoch + 1, cfg.epochs));
        let mut tally = EpochTally::start();
        for (step, chunk) in order.chunks(cfg.batch_size).enumerate() {
            let lr = if per_iteration {
                let lr = cfg.schedule.lr_at(cfg.lr, position(epoch, step));
                opt.set_lr(lr);
                lr
            } else {
                epoch_lr
            };
            if !hooks.is_empty() {
                call_hooks!(before_step, epoch, step);
                has_masks = !model.params.masks().is_empty();
            }
            let aug = cfg.augment.as_ref().map(|a| (a, &mut aug_rng));
            let labels = make_batch(train_set, chunk, &cfg.normalize, aug, &mut buf);
            let x = Tensor::from_slice(&buf, (chunk.len(), c, h, w), &device)?;
            let y = Tensor::from_vec(labels, chunk.len(), &device)?;
            let step_seed = derive_seed(cfg.seed, 3, (epoch as u64) << 32 | step as u64);
            // The teacher runs before the student's forward pass (outside the in-backward session).
            let teacher_logits = match teacher {
                Some((t, _)) => Some(t.forward(&x, Mode::Eval)?.flatten_from(1)?.detach()),
                None => None,
            };
            let forward = || -> Result<(Tensor, usize)> {
                let logits = model.forward(&x, Mode::Train { seed: step_seed })?.flatten_from(1)?;
                match (&teacher_logits, teacher) {
                    (Some(tl), Some((_, kd))) => {
                        let (_, ok) = loss_and_correct(&logits, &y)?;
                        Ok((kd_loss(&logits, tl, &y, kd)?, ok))
                    }
                    _ => Ok(loss_and_correct(&logits, &y)?),
                }
            };
            let (loss, ok) = if sparsity.is_none() && sharing.is_none() {
                // The plain loss: weight updates happen inside the backward pass.
                opt.step_in_backward(forward)?
            } else {
                let (loss, ok) = forward()?;
                let mut grads = shrink_ir::backward(&loss)?;
                if let Some(s) = &sparsity {
                    s.before_step(&mut grads)?;
                }
                if let Some(s) = &mut sharing {
                    s.before_step(&mut grads, lr)?;
                }
                opt.step(&grads)?;
                if let Some(s) = &sparsity {
                    s.after_step(lr)?;
                }
                if let Some(s) = &sharing {
                    s.after_step()?;
                }
                (loss, ok)
            };
            if has_masks {
                model.params.apply_masks()?;
            }
            call_hooks!(after_step, epoch, step);
            tally.add(loss.to_scalar::<f32>()? as f64, ok, chunk.len(), epoch, step, &pb)?;
        }
        pb.finish_and_clear();
        let seconds = tally.seconds();
        let (val_loss, val_accuracy) = match val_set {
            Some(v) if !v.is_empty() => {
                let r = evaluate(model, v, &cfg.normalize, cfg.eval_batch_size, None)?;
                (Some(r.loss), Some(r.accuracy))
            }
            _ => (None, None),
        };
        let record = EpochRecord::new(epoch, epoch_lr, &tally, val_loss, val_accuracy, seconds);
        if cfg.progress {
            record.log("val acc");
        }
        let last_step = steps_per_epoch.saturating_sub(1) as usize;
        call_hooks!(after_epoch, epoch, last_step, &record);
        let eligible = hooks.iter().all(|h| h.counts_for_best(epoch, steps_per_epoch));
        if let Some(acc) = val_accuracy.filter(|_| eligible) {
            if state.best_val_accuracy.is_none_or(|b| acc > b) {
                state.best_val_accuracy = Some(acc);
                state.best_epoch = Some(epoch + 1);
                best_params = Some(model.params.deep_clone()?);
            }
        }
        state.history.push(record);
        state.epochs_done = epoch + 1;
        state.optimizer_steps = opt.steps();
        if let Some(path) = &cfg.checkpoint {
            // The best weights are stored only when they differ from the current ones.
            let best = best_params.as_ref().filter(|_| state.best_epoch != Some(state.epochs_done));
            save_checkpoint(path, model, best, &opt, &state)?;
        }
    }
    // Restore the best epoch's weights (only if it is not the last one already in place).
    if let (Some(best), Some(best_epoch)) = (best_params, state.best_epoch) {
        if best_epoch != state.epochs_done {
            model.params = best;
        }
    }
    Ok(TrainReport {
        epochs: state.history,
        best_epoch: state.best_epoch,
        best_val_accuracy: state.best_val_accuracy,
    })
}
