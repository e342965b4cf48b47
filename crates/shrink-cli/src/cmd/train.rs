//! `shrink train`: train a zoo architecture from scratch, or fine-tune a model file (`--init`).
use crate::common::{check_fit, load_data, parse_floats};
use anyhow::{bail, Context, Result};
use clap::Args;
use shrink_io::data::{Augment, Normalize, Split};
use shrink_ir::candle_core::Device;
use shrink_train::{OptimizerConfig, Penalty, Schedule, SparsityConfig, StepHook, TrainConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// Zoo architecture (simple-dnn, lenet-300-100, lenet5, lenet5-bn, lenet5-caffe,
    /// resnet20|32|44|56, vgg9-bn, vgg11-bn, vgg16-bn).
    #[arg(long)]
    pub arch: Option<String>,
    /// Start from this model file instead of a fresh initialization (fine-tuning).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Dataset path (MNIST IDX dir, CIFAR binary dir, image folder or .tar/.tar.gz).
    #[arg(long)]
    pub data: PathBuf,
    /// Epochs (0 writes the initial model). Default: 30 for lenet-300-100 and 32x32 inputs, else 10.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Examples per optimizer step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Learning rate. Default: 0.05 (SGD, from scratch), 0.01 (SGD, --init), 0.001 (Adam).
    #[arg(long)]
    pub lr: Option<f64>,
    /// sgd or adam.
    #[arg(long, default_value = "sgd")]
    pub optimizer: String,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Nesterov momentum (SGD).
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay (L2). Default: 0 for 28x28 inputs, 5e-4 otherwise.
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// constant, step (x --gamma every --step-size epochs), step-iter (x --gamma every
    /// --step-size iterations), cosine (annealed every iteration over the whole run, like
    /// PyTorch's CosineAnnealingLR stepped per batch), cosine-epoch (the same curve changed once
    /// per epoch) or one-cycle (PyTorch's OneCycleLR stepped per batch, --lr as max_lr).
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    /// Linear warmup: the rate rises from 0 over this many iterations (then cosine runs over the
    /// rest of the run).
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: u64,
    /// one-cycle: fraction of the run spent raising the rate (PyTorch's OneCycleLR pct_start;
    /// div_factor 25, final_div_factor 1e4, cosine annealing, --lr is max_lr).
    #[arg(long, default_value_t = 0.3)]
    pub pct_start: f64,
    /// Epochs between decays for `--schedule step` (iterations for `step-iter`).
    #[arg(long, default_value_t = 10)]
    pub step_size: usize,
    /// Decay factor for `--schedule step`.
    #[arg(long, default_value_t = 0.1)]
    pub gamma: f64,
    /// Random seed: initialization, validation split, shuffling, augmentation, dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Validation examples carved from the training set (0 = none; best epoch by validation).
    #[arg(long, default_value_t = 5000)]
    pub val_size: usize,
    /// on: random crop (4-pixel padding) + horizontal flip; shift: random crop with 2-pixel
    /// padding and no flip (for digits, which a mirror changes); off. Default: on for 3-channel
    /// data, shift for simple-dnn (25.9 M weights overfit MNIST: 99.9 % train accuracy, 98.26–98.32 %
    /// test without it, 98.89 % with it), else off.
    #[arg(long, value_name = "on|shift|off")]
    pub augment: Option<String>,
    /// Per-channel mean (default: the architecture's / stored one).
    #[arg(long)]
    pub mean: Option<String>,
    /// Per-channel standard deviation (default: the architecture's / stored one).
    #[arg(long)]
    pub std: Option<String>,
    /// Resumable checkpoint written after every epoch (default: OUT.ckpt).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Keep the checkpoint file after a successful run (it is removed by default).
    #[arg(long)]
    pub keep_checkpoint: bool,
    /// Continue an interrupted run from its checkpoint (OUT.ckpt) and finish exactly as the
    /// uninterrupted run would, best epoch included. Give the same flags as the first run: a flag
    /// that contradicts the checkpoint (architecture, data, optimizer, lr, schedule, batch size,
    /// seed, fewer epochs than done, ...) is refused.
    #[arg(long, value_name = "CKPT")]
    pub resume: Option<PathBuf>,
    /// Output model file.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Print the training report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Sparsity-inducing penalty: l1, group-lasso (output neurons/filters) or trimmed-l1.
    #[arg(long, value_name = "PENALTY")]
    pub sparsity: Option<String>,
    /// Strength λ of the sparsity penalty (loss + λ·R(w)).
    #[arg(long, default_value_t = 1e-4)]
    pub sparsity_lambda: f64,
    /// Proximal (soft-threshold, threshold lr·λ) updates instead of subgradients: weights and
    /// groups become exactly zero.
    #[arg(long)]
    pub proximal: bool,
    /// For trimmed-l1: fraction of each layer's largest weights exempt from the penalty.
    #[arg(long, default_value_t = 0.1)]
    pub trim_keep: f64,
    /// Deep Compression centroid fine-tuning of a model clustered by `shrink share`: every
    /// conv/linear weight keeps its layer's shared values, the centroids move by the summed
    /// gradients of their weights (plain SGD at the schedule's rate), pruned weights stay zero.
    #[arg(long)]
    pub share_weights: bool,
    /// Knowledge distillation from a teacher model (`--teacher`, `--kd-alpha`, `--kd-temp`).
    #[command(flatten)]
    pub kd: KdArgs,
}

/// What a caller adds to a training run (`shrink prune --schedule`): settings that a resume
/// must repeat, hooks built from the loaded model, and a report on the trained model (JSON
/// fields merged into `--json`'s object, or a line on stderr).
pub struct TrainExtras<'a> {
    pub identity: BTreeMap<String, String>,
    #[allow(clippy::type_complexity)]
    pub hooks: Box<dyn FnOnce(&shrink_ir::Model) -> Result<Vec<Box<dyn StepHook>>> + 'a>,
    #[allow(clippy::type_complexity)]
    pub report: Box<dyn Fn(&shrink_ir::Model) -> Result<(serde_json::Value, String)> + 'a>,
}

pub fn run(a: &TrainArgs) -> Result<()> {
    run_with(
        a,
        TrainExtras {
            identity: BTreeMap::new(),
            hooks: Box::new(|_| Ok(vec![])),
            report: Box::new(|_| Ok((serde_json::json!({}), String::new()))),
        },
    )
}

/// [`run`] with a caller's [`TrainExtras`].
pub fn run_with(a: &TrainArgs, extras: TrainExtras) -> Result<()> {
    let device = Device::Cpu;
    let mut model = match (&a.init, &a.arch) {
        (Some(path), arch) => shrink_io::load_model(path, arch.as_deref())?,
        (None, Some(arch)) => shrink_ir::zoo::build(arch, a.seed, &device)?,
        (None, None) => bail!("--arch or --init is required"),
    };
    if a.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    let output =
        a.output.clone().unwrap_or_else(|| PathBuf::from(format!("{}.safetensors", model.meta.arch)));
    let inputs: Vec<&std::path::Path> = a.init.iter().map(|p| p.as_path()).collect();
    crate::common::check_output("--output", &output, &inputs, false)?;
    let small_input = model.meta.input_shape.iter().product::<usize>() <= 28 * 28;
    let epochs = a.epochs.unwrap_or(match model.meta.arch.as_str() {
        "lenet-300-100" => 30, // 2 s epochs; 10 stop at ~97.9%
        _ if small_input => 10,
        _ => 30,
    });
    if let Some(m) = &a.mean {
        model.meta.mean = parse_floats("--mean", m)?;
    }
    if let Some(s) = &a.std {
        model.meta.std = parse_floats("--std", s)?;
    }
    let normalize = crate::common::normalization(&model, None, None)?;
    if epochs == 0 {
        shrink_io::save_model(&model, &output)?;
        eprintln!("wrote initial model to {}", output.display());
        return Ok(());
    }
    let optimizer = match a.optimizer.as_str() {
        "sgd" => OptimizerConfig::Sgd {
            momentum: a.momentum,
            nesterov: a.nesterov,
            weight_decay: a.weight_decay.unwrap_or(if small_input { 0.0 } else { 5e-4 }),
        },
        "adam" => OptimizerConfig::adam(a.weight_decay.unwrap_or(0.0)),
        other => bail!("--optimizer must be sgd or adam, got `{other}`"),
    };
    let lr = a.lr.unwrap_or(match (a.optimizer.as_str(), a.init.is_some()) {
        ("adam", _) => 1e-3,
        (_, true) => 0.01,
        _ => 0.05,
    });
    let schedule = match a.schedule.as_str() {
        "constant" => Schedule::Constant,
        "step" => Schedule::Step { step_size: a.step_size, gamma: a.gamma },
        "cosine" => Schedule::Cosine { min_lr: 0.0 },
        "cosine-epoch" => Schedule::CosineEpoch { total_epochs: epochs, min_lr: 0.0 },
        "step-iter" => Schedule::StepIter { step_size: a.step_size as u64, gamma: a.gamma },
        "one-cycle" => {
            if !(a.pct_start > 0.0 && a.pct_start < 1.0) {
                bail!("--pct-start must be in (0, 1), got {}", a.pct_start);
            }
            Schedule::OneCycle { pct_start: a.pct_start, div_factor: 25.0, final_div_factor: 1e4 }
        }
        other => bail!(
            "--schedule must be constant, step, step-iter, cosine, cosine-epoch or one-cycle, got `{other}`"
        ),
    };
    let default_augment = if model.meta.input_shape.first() == Some(&3) {
        "on"
    } else if model.meta.arch == "simple-dnn" {
        "shift"
    } else {
        "off"
    };
    let augment = match a.augment.as_deref().unwrap_or(default_augment) {
        "on" => Some(Augment { crop_padding: 4, hflip: true }),
        "shift" => Some(Augment { crop_padding: 2, hflip: false }),
        "off" => None,
        other => bail!("--augment must be on, shift or off, got `{other}`"),
    };
    let checkpoint = a.checkpoint.clone().unwrap_or_else(|| {
        let mut p = output.clone().into_os_string();
        p.push(".ckpt");
        PathBuf::from(p)
    });
    let penalty = match a.sparsity.as_deref() {
        None => None,
        Some("l1") => Some(Penalty::L1),
        Some("group-lasso") => Some(Penalty::GroupLasso),
        Some("trimmed-l1") => Some(Penalty::TrimmedL1 { keep: a.trim_keep }),
        Some(other) => bail!("--sparsity must be l1, group-lasso or trimmed-l1, got `{other}`"),
    };
    let sparsity =
        penalty.map(|penalty| SparsityConfig { penalty, lambda: a.sparsity_lambda, proximal: a.proximal });
    let mut identity =
        run_identity(a, &model, epochs, lr, &optimizer, &schedule, &augment, &normalize, &sparsity);
    identity.extend(extras.identity);
    let (teacher, kd) = a.kd.load(&model)?;
    a.kd.identity(&mut identity);
    if let Some(path) = &a.resume {
        // Refuse a contradicting resume before reading any data.
        shrink_train::checkpoint::read_loop_state(path)?.check_resume(path, &identity, epochs)?;
    }
    let full = load_data(&a.data, Split::Train)?;
    check_fit(
        &model,
        &full,
        &a.init.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "--arch".into()),
    )?;
    if a.val_size >= full.len() {
        bail!("--val-size {} leaves no training data ({} examples)", a.val_size, full.len());
    }
    let (train_set, val_set) = full.split_validation(a.val_size, a.seed);
    let cfg = TrainConfig {
        epochs,
        batch_size: a.batch_size,
        lr,
        optimizer,
        schedule,
        seed: a.seed,
        normalize: Normalize { mean: normalize.mean.clone(), std: normalize.std.clone() },
        augment,
        eval_batch_size: 256,
        checkpoint: Some(checkpoint.clone()),
        resume: a.resume.clone(),
        progress: true,
        sparsity,
        share_weights: a.share_weights,
        identity,
        warmup_steps: a.warmup_steps,
    };
    let mut hooks = (extras.hooks)(&model)?;
    let mut hook_refs: Vec<&mut dyn StepHook> =
        hooks.iter_mut().map(|h| h.as_mut() as &mut dyn StepHook).collect();
    let val = Some(&val_set).filter(|v| !v.is_empty());
    let teacher = teacher.as_ref().map(|t| (t, kd));
    let report = shrink_train::train_distilled(&mut model, &train_set, val, &cfg, &mut hook_refs, teacher)?;
    let (extra_json, extra_line) = (extras.report)(&model)?;
    shrink_io::save_model(&model, &output).with_context(|| format!("writing {}", output.display()))?;
    if !a.keep_checkpoint {
        let _ = std::fs::remove_file(&checkpoint);
    }
    let test = load_data(&a.data, Split::Test).ok();
    let test_result = match &test {
        Some(t) => Some(shrink_train::evaluate(&model, t, &normalize, 256, None)?),
        None => None,
    };
    let mean_epoch_s =
        report.epochs.iter().map(|e| e.seconds).sum::<f64>() / report.epochs.len().max(1) as f64;
    if a.json {
        let mut out = serde_json::json!({
            "output": output.display().to_string(),
            "arch": model.meta.arch,
            "epochs": report.epochs,
            "best_epoch": report.best_epoch,
            "best_val_accuracy": report.best_val_accuracy,
            "test_accuracy": test_result.as_ref().map(|r| r.accuracy),
            "test_loss": test_result.as_ref().map(|r| r.loss),
            "mean_epoch_seconds": mean_epoch_s,
        });
        if let (Some(out), serde_json::Value::Object(extra)) = (out.as_object_mut(), extra_json) {
            out.extend(extra);
        }
        println!("{out}");
    } else {
        if let (Some(e), Some(acc)) = (report.best_epoch, report.best_val_accuracy) {
            eprintln!("kept epoch {e} (validation accuracy {:.2}%)", 100.0 * acc);
        }
        if let Some(r) = &test_result {
            eprintln!("test accuracy {:.2}% (loss {:.4})", 100.0 * r.accuracy, r.loss);
        }
        if !extra_line.is_empty() {
            eprintln!("{extra_line}");
        }
        eprintln!("mean epoch time {mean_epoch_s:.1}s; wrote {}", output.display());
    }
    Ok(())
}

/// The settings that decide a run's numbers, keyed by the flag that sets them, as resolved
/// (defaults filled in): a resume must repeat every one of them.
#[allow(clippy::too_many_arguments)]
fn run_identity(
    a: &TrainArgs,
    model: &shrink_ir::Model,
    epochs: usize,
    lr: f64,
    optimizer: &OptimizerConfig,
    schedule: &Schedule,
    augment: &Option<Augment>,
    normalize: &Normalize,
    sparsity: &Option<SparsityConfig>,
) -> BTreeMap<String, String> {
    let canonical = |p: &std::path::Path| {
        std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
    };
    let mut id = BTreeMap::new();
    let mut put = |flag: &str, value: String| {
        id.insert(flag.to_string(), value);
    };
    put("--arch", model.meta.arch.clone());
    if let Some(init) = &a.init {
        put("--init", canonical(init));
    }
    put("--data", canonical(&a.data));
    put("--optimizer", a.optimizer.clone());
    put("--share-weights", a.share_weights.to_string());
    put("--lr", lr.to_string());
    match optimizer {
        OptimizerConfig::Sgd { momentum, nesterov, weight_decay } => {
            put("--momentum", momentum.to_string());
            put("--nesterov", nesterov.to_string());
            put("--weight-decay", weight_decay.to_string());
        }
        OptimizerConfig::Adam { weight_decay, .. } => put("--weight-decay", weight_decay.to_string()),
    }
    put("--schedule", a.schedule.clone());
    match schedule {
        Schedule::Step { step_size, gamma } => {
            put("--step-size", step_size.to_string());
            put("--gamma", gamma.to_string());
        }
        Schedule::StepIter { step_size, gamma } => {
            put("--step-size", step_size.to_string());
            put("--gamma", gamma.to_string());
        }
        Schedule::OneCycle { pct_start, .. } => {
            put("--pct-start", pct_start.to_string());
            put("--epochs", epochs.to_string());
        }
        // The cosine curve spans the planned epochs: changing them changes every rate.
        Schedule::Cosine { .. } | Schedule::CosineEpoch { .. } => put("--epochs", epochs.to_string()),
        Schedule::Constant => {}
    }
    put("--warmup-steps", a.warmup_steps.to_string());
    put("--batch-size", a.batch_size.to_string());
    put("--seed", a.seed.to_string());
    put("--val-size", a.val_size.to_string());
    let augment = match augment {
        None => "off".to_string(),
        Some(aug) => format!("crop padding {} flip {}", aug.crop_padding, aug.hflip),
    };
    put("--augment", augment);
    put("--mean", format!("{:?}", normalize.mean));
    put("--std", format!("{:?}", normalize.std));
    put("--sparsity", a.sparsity.clone().unwrap_or_else(|| "none".into()));
    if let Some(s) = sparsity {
        put("--sparsity-lambda", s.lambda.to_string());
        put("--proximal", s.proximal.to_string());
        if let Penalty::TrimmedL1 { keep } = s.penalty {
            put("--trim-keep", keep.to_string());
        }
    }
    id
}

/// Knowledge distillation flags of `shrink train` and `shrink prune --schedule`: the student
/// learns from the teacher's softened outputs and the labels (loss = α·T²·KL + (1 − α)·CE).
#[derive(Args, Clone, Debug)]
pub struct KdArgs {
    /// Teacher model file for knowledge distillation during training (e.g. the dense model a
    /// pruned or shared model came from).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Weight α of the distillation term (with --teacher).
    #[arg(long, default_value_t = 0.9)]
    pub kd_alpha: f64,
    /// Distillation temperature T (with --teacher).
    #[arg(long, default_value_t = 4.0)]
    pub kd_temp: f64,
}

impl Default for KdArgs {
    fn default() -> Self {
        KdArgs { teacher: None, kd_alpha: 0.9, kd_temp: 4.0 }
    }
}

impl KdArgs {
    /// Loads the teacher (checked against `student`'s input shape and classes) and the
    /// distillation weights; `None` without `--teacher`.
    pub fn load(
        &self,
        student: &shrink_ir::Model,
    ) -> Result<(Option<shrink_ir::Model>, shrink_train::kd::KdConfig)> {
        let kd = shrink_train::kd::KdConfig { alpha: self.kd_alpha, temperature: self.kd_temp };
        kd.check()?;
        let Some(path) = &self.teacher else { return Ok((None, kd)) };
        let t = shrink_io::load_model(path, None).with_context(|| format!("--teacher {}", path.display()))?;
        if t.meta.input_shape != student.meta.input_shape
            || t.meta.classes.len() != student.meta.classes.len()
        {
            bail!(
                "--teacher {}: input {:?} and {} classes differ from the model's {:?} and {}",
                path.display(),
                t.meta.input_shape,
                t.meta.classes.len(),
                student.meta.input_shape,
                student.meta.classes.len()
            );
        }
        Ok((Some(t), kd))
    }

    /// Adds the distillation settings to a run's identity (a resume must repeat them).
    pub fn identity(&self, id: &mut BTreeMap<String, String>) {
        if let Some(p) = &self.teacher {
            let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            id.insert("--teacher".into(), p.display().to_string());
            id.insert("--kd-alpha".into(), self.kd_alpha.to_string());
            id.insert("--kd-temp".into(), self.kd_temp.to_string());
        }
    }
}
