//! The QAT loop: the trainer's seeded shuffling, augmentation, per-iteration schedules and
//! per-epoch resumable checkpoints, with the forward pass through the quantizers, optional
//! distillation from a teacher, and the learned quantizer parameters in the optimizer. The last
//! epoch's network is the result (quantizer state and weights move together; validation is
//! reported per epoch).
use super::Quantizers;
use crate::checkpoint::{load_for_resume, save_checkpoint, LoopState};
use crate::eval::{evaluate, loss_and_correct};
use crate::kd::{kd_loss, KdConfig};
use crate::optim::Optimizer;
use crate::schedule::Position;
use crate::trainer::{bar, derive_seed, EpochRecord, EpochTally, TrainConfig, TrainReport};
use crate::{Result, TrainError};
use candle_core::{DType, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shrink_io::data::{make_batch, Dataset};
use shrink_ir::{Mode, Model};

/// `model` with the quantizers in force attached as slots (weights shared, not copied).
fn quantized_view(model: &Model, quant: &Quantizers) -> Result<Model> {
    let mut view = model.clone();
    quant.attach(&mut view)?;
    Ok(view)
}

/// Trains `model` with `quant` in every forward pass (and `teacher` distilling, if given).
/// The weights stay in float; [`Quantizers::finish`] turns the result into a quantized model.
/// `cfg.sparsity` and `cfg.share_weights` do not apply here; masks are kept.
pub fn train_qat(
    model: &mut Model,
    quant: &Quantizers,
    train_set: &Dataset,
    val_set: Option<&Dataset>,
    cfg: &TrainConfig,
    teacher: Option<(&Model, KdConfig)>,
) -> Result<TrainReport> {
    if cfg.batch_size == 0 {
        return Err(TrainError::Config("--batch-size must be positive".into()));
    }
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(TrainError::Config(format!("--lr must be a positive number, got {}", cfg.lr)));
    }
    if train_set.is_empty() {
        return Err(TrainError::Config(format!("training set `{}` is empty", train_set.source)));
    }
    if let Some((_, kd)) = teacher {
        kd.check()?;
    }
    let mut state = LoopState::start(cfg.seed, &cfg.identity, cfg.epochs);
    let mut resumed_opt = None;
    if let Some(path) = &cfg.resume {
        let ck = load_for_resume(path, model, &cfg.identity, cfg.epochs)?;
        *model = ck.model;
        quant.restore(model)?;
        state = ck.state;
        state.epochs_planned = cfg.epochs;
        resumed_opt = Some(ck.optimizer_state);
    }
    // The quantizers replace any activation quantizer the model came with at their nodes.
    model.act_quant.retain(|node, _| !shrink_ir::ForwardHooks::hooks_activation(quant, node));
    let mut vars = model.params.trainable();
    vars.extend(quant.vars());
    let mut opt = Optimizer::new(vars, cfg.optimizer, cfg.lr);
    if let Some(tensors) = resumed_opt {
        opt.load_state(&tensors, state.optimizer_steps)?;
    }
    let device = model.device();
    let [c, h, w] = train_set.image_shape();
    let has_masks = !model.params.masks().is_empty();
    let mut buf = Vec::new();
    let steps_per_epoch = train_set.len().div_ceil(cfg.batch_size) as u64;
    let position = |epoch: usize, step: usize| Position {
        epoch,
        step: epoch as u64 * steps_per_epoch + step as u64,
        total_steps: steps_per_epoch * cfg.epochs as u64,
        warmup_steps: cfg.warmup_steps,
    };
    let per_iteration = cfg.schedule.per_iteration(cfg.warmup_steps);
    for epoch in state.epochs_done..cfg.epochs {
        let epoch_lr = cfg.schedule.lr_at(cfg.lr, position(epoch, 0));
        opt.set_lr(epoch_lr);
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, 1, epoch as u64)));
        let mut aug_rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, 2, epoch as u64));
        let pb = bar(order.len() as u64, cfg.progress, format!("qat {}/{}", epoch + 1, cfg.epochs));
        let mut tally = EpochTally::start();
        quant.set_training(true);
        for (step, chunk) in order.chunks(cfg.batch_size).enumerate() {
            if per_iteration {
                opt.set_lr(cfg.schedule.lr_at(cfg.lr, position(epoch, step)));
            }
            let aug = cfg.augment.as_ref().map(|a| (a, &mut aug_rng));
            let labels = make_batch(train_set, chunk, &cfg.normalize, aug, &mut buf);
            let x = Tensor::from_slice(&buf, (chunk.len(), c, h, w), &device)?;
            let y = Tensor::from_vec(labels, chunk.len(), &device)?;
            let step_seed = derive_seed(cfg.seed, 3, (epoch as u64) << 32 | step as u64);
            let logits = model.forward_hooked(&x, Mode::Train { seed: step_seed }, quant)?.flatten_from(1)?;
            let (loss, ok) = match teacher {
                Some((t, kd)) => {
                    let tl = t.forward(&x, Mode::Eval)?.flatten_from(1)?.detach();
                    let ok = logits.argmax(1)?.eq(&y)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()?;
                    (kd_loss(&logits, &tl, &y, kd)?, ok as usize)
                }
                None => loss_and_correct(&logits, &y)?,
            };
            let grads = shrink_ir::backward(&loss)?;
            opt.step(&grads)?;
            quant.after_step()?;
            if has_masks {
                model.params.apply_masks()?;
            }
            tally.add(loss.to_scalar::<f32>()? as f64, ok, chunk.len(), epoch, step, &pb)?;
        }
        quant.set_training(false);
        pb.finish_and_clear();
        let seconds = tally.seconds();
        let view = quantized_view(model, quant)?;
        let (val_loss, val_accuracy) = match val_set {
            Some(v) if !v.is_empty() => {
                let r = evaluate(&view, v, &cfg.normalize, cfg.eval_batch_size, None)?;
                (Some(r.loss), Some(r.accuracy))
            }
            _ => (None, None),
        };
        let record = EpochRecord::new(epoch, epoch_lr, &tally, val_loss, val_accuracy, seconds);
        if cfg.progress {
            record.log("quantized val acc");
        }
        state.history.push(record);
        state.epochs_done = epoch + 1;
        state.optimizer_steps = opt.steps();
        if let Some(path) = &cfg.checkpoint {
            save_checkpoint(path, &view, None, &opt, &state)?;
        }
    }
    let last_val = state.history.last().and_then(|r| r.val_accuracy);
    Ok(TrainReport { epochs: state.history, best_epoch: None, best_val_accuracy: last_val })
}
