//! Fine-tuning of an open-IR graph (any imported ONNX model) with candle autograd: seeded
//! shuffling and augmentation, the optimizers and per-iteration schedules of the layer trainer,
//! cross-entropy on the graph's first output (logits), validation each epoch with the best
//! epoch's weights kept.

use crate::eval::loss_and_correct;
use crate::graph_eval::InputPlan;
use crate::optim::{Optimizer, OptimizerConfig};
use crate::schedule::{Position, Schedule};
use crate::trainer::{bar, derive_seed, EpochRecord, EpochTally};
use crate::{Result, TrainError};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shrink_io::data::{make_batch, Augment, Dataset, Normalize};
use shrink_ir::graph_exec::GraphModel;

/// Settings of a graph fine-tuning run.
#[derive(Debug, Clone)]
pub struct GraphTrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    pub warmup_steps: u64,
    pub seed: u64,
    pub normalize: Normalize,
    pub augment: Option<Augment>,
    pub progress: bool,
}

/// Accuracy and mean cross-entropy of the graph (eval mode, candle) on `ds`.
pub fn evaluate_graph_candle(
    model: &GraphModel,
    ds: &Dataset,
    norm: &Normalize,
    plan: &InputPlan,
) -> Result<(f64, f64)> {
    let mut buf = Vec::new();
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    let indices: Vec<usize> = (0..ds.len()).collect();
    for chunk in indices.chunks(plan.batch.max(1)) {
        let labels = make_batch(ds, chunk, norm, None, &mut buf);
        let (x, rows) = batch_tensor(&buf, chunk.len(), plan)?;
        let logits = first_output(model, &x, false)?;
        let logits = if rows != chunk.len() { logits.narrow(0, 0, chunk.len())? } else { logits };
        let y = Tensor::from_vec(labels, chunk.len(), &Device::Cpu)?;
        let (loss, ok) = loss_and_correct(&logits, &y)?;
        loss_sum += loss.to_scalar::<f32>()? as f64 * chunk.len() as f64;
        correct += ok;
    }
    let n = ds.len().max(1) as f64;
    Ok((correct as f64 / n, loss_sum / n))
}

/// The batch as the graph's input tensor (padded to a fixed batch); returns it and its rows.
fn batch_tensor(buf: &[f32], n: usize, plan: &InputPlan) -> Result<(Tensor, usize)> {
    let example: usize = plan.example_shape.iter().product();
    let rows = if plan.fixed_batch { plan.batch } else { n };
    let mut data = buf[..n * example].to_vec();
    data.resize(rows * example, 0.0);
    let shape: Vec<usize> = [rows].into_iter().chain(plan.example_shape.iter().copied()).collect();
    Ok((Tensor::from_vec(data, shape, &Device::Cpu)?, rows))
}

fn first_output(model: &GraphModel, x: &Tensor, train: bool) -> Result<Tensor> {
    let out = model.forward(std::slice::from_ref(x), train)?;
    let y = out.into_iter().next().ok_or_else(|| TrainError::Config("the graph has no output".into()))?;
    Ok(y.flatten_from(1)?)
}

/// Fine-tune `model` on `train_set`; with `val_set`, the best validation epoch's weights are
/// kept. Returns the per-epoch records.
pub fn finetune_graph(
    model: &GraphModel,
    train_set: &Dataset,
    val_set: Option<&Dataset>,
    plan: &InputPlan,
    cfg: &GraphTrainConfig,
) -> Result<Vec<EpochRecord>> {
    if cfg.batch_size == 0 || !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(TrainError::Config("--batch-size and --lr must be positive".into()));
    }
    if plan.fixed_batch && cfg.batch_size != plan.batch {
        return Err(TrainError::Config(format!(
            "the graph has a fixed batch of {}; train with --batch-size {}",
            plan.batch, plan.batch
        )));
    }
    let vars = model.trainable_vars();
    if vars.is_empty() {
        return Err(TrainError::Config("the graph has no trainable weights".into()));
    }
    let mut opt = Optimizer::new(vars.clone(), cfg.optimizer, cfg.lr);
    let steps_per_epoch = train_set.len().div_ceil(cfg.batch_size) as u64;
    let position = |epoch: usize, step: usize| Position {
        epoch,
        step: epoch as u64 * steps_per_epoch + step as u64,
        total_steps: steps_per_epoch * cfg.epochs as u64,
        warmup_steps: cfg.warmup_steps,
    };
    let mut history = Vec::new();
    let mut best: Option<(f64, Vec<Tensor>)> = None;
    let mut buf = Vec::new();
    for epoch in 0..cfg.epochs {
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, 1, epoch as u64)));
        let mut aug_rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, 2, epoch as u64));
        let pb = bar(order.len() as u64, cfg.progress, format!("epoch {}/{}", epoch + 1, cfg.epochs));
        let mut tally = EpochTally::start();
        let epoch_lr = cfg.schedule.lr_at(cfg.lr, position(epoch, 0));
        for (step, chunk) in order.chunks(cfg.batch_size).enumerate() {
            if plan.fixed_batch && chunk.len() != plan.batch {
                continue; // a fixed-batch graph cannot train on the short last batch
            }
            opt.set_lr(cfg.schedule.lr_at(cfg.lr, position(epoch, step)));
            let aug = cfg.augment.as_ref().map(|a| (a, &mut aug_rng));
            let labels = make_batch(train_set, chunk, &cfg.normalize, aug, &mut buf);
            let (x, _) = batch_tensor(&buf, chunk.len(), plan)?;
            let y = Tensor::from_vec(labels, chunk.len(), &Device::Cpu)?;
            let logits = first_output(model, &x, true)?;
            let (loss, ok) = loss_and_correct(&logits, &y)?;
            let grads = loss.backward()?;
            opt.step(&grads)?;
            tally.add(loss.to_scalar::<f32>()? as f64, ok, chunk.len(), epoch, step, &pb)?;
        }
        pb.finish_and_clear();
        let seconds = tally.seconds();
        let (val_accuracy, val_loss) = match val_set {
            Some(v) if !v.is_empty() => {
                let (a, l) = evaluate_graph_candle(model, v, &cfg.normalize, plan)?;
                (Some(a), Some(l))
            }
            _ => (None, None),
        };
        let record = EpochRecord::new(epoch, epoch_lr, &tally, val_loss, val_accuracy, seconds);
        if cfg.progress {
            eprintln!(
                "epoch {:>3}: train loss {:.4} acc {:.2}% | val acc {} | {:.1}s",
                record.epoch,
                record.train_loss,
                100.0 * record.train_accuracy,
                val_accuracy.map(|a| format!("{:.2}%", 100.0 * a)).unwrap_or_else(|| "-".into()),
                seconds
            );
        }
        if let Some(acc) = val_accuracy {
            if best.as_ref().is_none_or(|(b, _)| acc > *b) {
                best = Some((
                    acc,
                    vars.iter().map(|(_, v)| v.as_tensor().copy()).collect::<candle_core::Result<_>>()?,
                ));
            }
        }
        history.push(record);
    }
    if let Some((_, weights)) = best {
        for ((_, var), w) in vars.iter().zip(weights) {
            var.set(&w)?;
        }
    }
    Ok(history)
}
