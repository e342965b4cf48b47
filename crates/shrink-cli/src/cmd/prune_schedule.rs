//! `shrink prune MODEL --schedule oneshot|linear|agp --sparsity S --epochs N --data D`: pruning
//! inside one training run (`shrink train --init MODEL` with a [`PruneHook`]), so the optimizer
//! state survives every pruning step; the best epoch at the final sparsity is kept and `--resume`
//! continues the schedule exactly.
use super::PruneArgs;
use crate::cmd::train::{run_with, TrainArgs, TrainExtras};
use anyhow::{bail, Result};
use clap::Args;
use shrink_compress::prune::unstructured::{prunable_weights, resolve_layers};
use shrink_train::prune_schedule::{overall_sparsity, PruneHook, PruneSchedule, ScheduleKind, Scope};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The flags of a scheduled pruning run (all unused without `--schedule`).
#[derive(Args, Clone, Default)]
pub struct ScheduleArgs {
    /// Prune inside one training run on --data: oneshot (the target at --start-epoch, then
    /// masked fine-tuning), linear (+S/N per epoch for --epochs N epochs: the lab's +7 % × 10
    /// at 70 %) or agp (Zhu & Gupta's cubic, updated every --every steps). Methods: magnitude
    /// or exact (round(n·s) zeros per layer), global-magnitude or --global (one threshold).
    #[arg(long, value_parser = ["oneshot", "linear", "agp"])]
    pub schedule: Option<String>,
    /// Epochs over which the sparsity grows (oneshot: epochs trained at the target).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Dense epochs before pruning starts.
    #[arg(long, default_value_t = 0)]
    pub start_epoch: usize,
    /// agp: steps between sparsity updates (default: one epoch's steps).
    #[arg(long)]
    pub every: Option<u64>,
    /// agp: the sparsity s_i the cubic starts from.
    #[arg(long, default_value_t = 0.0)]
    pub initial_sparsity: f64,
    /// Masked fine-tuning epochs after the schedule reached the target.
    #[arg(long, default_value_t = 0)]
    pub ft_epochs: usize,
    /// One magnitude threshold over all pruned layers (as --method global-magnitude).
    #[arg(long)]
    pub global: bool,
    /// Training data (MNIST IDX dir, CIFAR dir, image folder or tar).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Examples per optimizer step (default 128).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Learning rate (default: 0.01 for sgd, 0.001 for adam).
    #[arg(long)]
    pub lr: Option<f64>,
    /// sgd (default) or adam.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// SGD momentum (default 0.9).
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Weight decay (default: 0 for 28x28 inputs, 5e-4 otherwise).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule of the run, as `shrink train --schedule` (default cosine).
    #[arg(long)]
    pub lr_schedule: Option<String>,
    /// Linear learning-rate warmup iterations.
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: u64,
    /// Seed of the validation split, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Validation examples held out of the training set (default 5000; 0: none).
    #[arg(long)]
    pub val_size: Option<usize>,
    /// on, shift or off (as `shrink train --augment`).
    #[arg(long)]
    pub augment: Option<String>,
    /// Continue an interrupted scheduled run from its checkpoint (OUT.ckpt), same flags.
    #[arg(long, value_name = "CKPT")]
    pub resume: Option<PathBuf>,
    /// Keep the per-epoch checkpoint (OUT.ckpt) after the run.
    #[arg(long)]
    pub keep_checkpoint: bool,
    /// Knowledge distillation from a teacher during the schedule (as `shrink train --teacher`).
    #[command(flatten)]
    pub kd: crate::cmd::train::KdArgs,
}

/// The schedule `--schedule` names (`--every` absent: AGP updates once per epoch).
fn kind(a: &ScheduleArgs, name: &str) -> Result<ScheduleKind> {
    Ok(match name {
        "oneshot" => ScheduleKind::OneShot,
        "linear" => ScheduleKind::Linear,
        "agp" => ScheduleKind::Agp { every: a.every.unwrap_or(0), initial: a.initial_sparsity },
        other => bail!("--schedule must be oneshot, linear or agp, got `{other}`"),
    })
}

/// Runs the scheduled pruning `a` asks for.
pub fn run(a: &PruneArgs) -> Result<()> {
    let s = &a.schedule;
    let name = s.schedule.clone().unwrap_or_default();
    let Some(data) = s.data.clone() else { bail!("--schedule {name} trains: --data is required") };
    let Some(sparsity) = a.sparsity else { bail!("--schedule {name} needs --sparsity (the final target)") };
    if a.layer_sparsity.is_some() || a.sparsity_file.is_some() {
        bail!("--schedule takes one --sparsity; per-layer maps are for one-shot `shrink prune`");
    }
    let scope = match a.method.as_str() {
        "magnitude" | "exact" if !s.global => Scope::Local,
        "magnitude" | "exact" | "global-magnitude" => Scope::Global,
        other => bail!(
            "--schedule prunes by magnitude: --method magnitude, exact or global-magnitude, got `{other}`"
        ),
    };
    if a.importance != "abs" {
        bail!("--schedule ranks weights by |w|; --importance {} is not supported", a.importance);
    }
    let Some(epochs) = s.epochs else { bail!("--schedule {name} needs --epochs") };
    if name != "oneshot" && epochs == 0 {
        bail!("--epochs must be positive for --schedule {name}");
    }
    if s.every == Some(0) {
        bail!("--every must be a positive number of steps");
    }
    let kind = kind(s, &name)?;
    let start_epoch = s.start_epoch;
    shrink_compress::prune::check_ratio("--sparsity", sparsity)?;
    let total = s.start_epoch + epochs + s.ft_epochs;
    if total == 0 {
        bail!("--epochs and --ft-epochs leave no epoch to train");
    }
    let batch_size = s.batch_size.unwrap_or(128);
    let mut identity = BTreeMap::new();
    identity.insert("--prune-schedule".to_string(), name.clone());
    identity.insert("--sparsity".to_string(), sparsity.to_string());
    identity.insert("--prune-epochs".to_string(), epochs.to_string());
    identity.insert("--start-epoch".to_string(), s.start_epoch.to_string());
    identity.insert("--ft-epochs".to_string(), s.ft_epochs.to_string());
    identity.insert("--every".to_string(), format!("{:?}", s.every));
    identity.insert("--initial-sparsity".to_string(), s.initial_sparsity.to_string());
    identity.insert("--global".to_string(), (scope == Scope::Global).to_string());
    identity.insert("--layers".to_string(), a.layers.clone().unwrap_or_default());
    let layers = a.layers.clone();
    let weights_of = move |m: &shrink_ir::Model| -> Result<Vec<String>> {
        Ok(match &layers {
            None => prunable_weights(m),
            Some(list) => {
                let map: BTreeMap<String, f64> =
                    list.split(',').map(|l| (l.trim().to_string(), sparsity)).collect();
                resolve_layers(m, &map)?.into_keys().collect()
            }
        })
    };
    let weights_for_report = weights_of.clone();
    let hooks = move |m: &shrink_ir::Model| -> Result<Vec<Box<dyn shrink_train::StepHook>>> {
        let weights = weights_of(m)?;
        let schedule = PruneSchedule { kind, sparsity, start_epoch, prune_epochs: epochs, scope, weights };
        Ok(vec![Box::new(PruneHook::new(schedule)?)])
    };
    let report = move |m: &shrink_ir::Model| -> Result<(serde_json::Value, String)> {
        let weights = weights_for_report(m)?;
        let achieved = overall_sparsity(m, &weights)?;
        let json = serde_json::json!({ "schedule": name, "target_sparsity": sparsity, "sparsity": achieved });
        let line = format!(
            "sparsity {:.2}% of {} pruned weights (target {:.2}%)",
            100.0 * achieved,
            weights.len(),
            100.0 * sparsity
        );
        Ok((json, line))
    };
    let train = TrainArgs {
        arch: a.arch.clone(),
        init: Some(a.model.clone()),
        data,
        epochs: Some(total),
        batch_size,
        lr: s.lr,
        optimizer: s.optimizer.clone().unwrap_or_else(|| "sgd".into()),
        momentum: s.momentum.unwrap_or(0.9),
        nesterov: false,
        weight_decay: s.weight_decay,
        schedule: s.lr_schedule.clone().unwrap_or_else(|| "cosine".into()),
        warmup_steps: s.warmup_steps,
        step_size: 10,
        gamma: 0.1,
        pct_start: 0.3,
        seed: s.seed,
        val_size: s.val_size.unwrap_or(5000),
        augment: s.augment.clone(),
        mean: None,
        std: None,
        checkpoint: None,
        keep_checkpoint: s.keep_checkpoint,
        resume: s.resume.clone(),
        output: Some(a.output.clone()),
        json: a.json,
        sparsity: None,
        sparsity_lambda: 1e-4,
        proximal: false,
        trim_keep: 0.1,
        share_weights: false,
        kd: s.kd.clone(),
    };
    run_with(&train, TrainExtras { identity, hooks: Box::new(hooks), report: Box::new(report) })
}
