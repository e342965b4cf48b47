//! `shrink qat`: quantization-aware training of a model file (STE over the labs' quantizers, or
//! LSQ), optionally distilled from a teacher; writes a model whose weights and activations keep
//! their quantizers, so `shrink eval` reproduces the accuracy.
use crate::common::{check_fit, load_data, parse_floats};
use anyhow::{bail, Context, Result};
use clap::Args;
use shrink_compress::quant::Scheme;
use shrink_io::data::{Augment, Normalize, Split};
use shrink_ir::Model;
use shrink_train::kd::KdConfig;
use shrink_train::qat::ste::RangeMode;
use shrink_train::qat::{train_qat, Method, QatConfig, Quantizers};
use shrink_train::{OptimizerConfig, Schedule, TrainConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct QatArgs {
    /// Trained float model file (the starting point).
    pub model: PathBuf,
    /// ste (the labs' quantizers, straight-through gradient) or lsq (learned step sizes).
    #[arg(long, default_value = "lsq")]
    pub method: String,
    /// Weight bits, optionally with activation bits: `4` (weights only) or `4,4`; 2..=8.
    #[arg(long)]
    pub bits: String,
    /// One range (STE) or step (LSQ) per output channel of each weight.
    #[arg(long)]
    pub per_channel: bool,
    /// Bits of the first and last conv/linear layer (weights and their input activations).
    #[arg(long)]
    pub first_last_bits: Option<u32>,
    /// STE: the weight quantizer, clip, symmetric or asymmetric.
    #[arg(long, default_value = "symmetric")]
    pub scheme: String,
    /// STE: weight ranges recomputed every forward pass (dynamic, the lab's), computed once
    /// (frozen) or an exponential moving average (ema).
    #[arg(long, default_value = "dynamic")]
    pub range: String,
    /// LSQ+: a learnable offset for every activation quantizer.
    #[arg(long)]
    pub lsq_offset: bool,
    /// Teacher model file for knowledge distillation (typically the float MODEL itself).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Weight α of the distillation term (loss = α·T²·KL + (1 − α)·CE).
    #[arg(long, default_value_t = 0.9)]
    pub kd_alpha: f64,
    /// Distillation temperature T.
    #[arg(long, default_value_t = 4.0)]
    pub kd_temp: f64,
    /// Dataset path (MNIST IDX dir, CIFAR binary dir, image folder or .tar/.tar.gz).
    #[arg(long)]
    pub data: PathBuf,
    /// Passes over the training set.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Examples per optimizer step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Learning rate (default 0.01 for sgd, 0.001 for adam).
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
    /// constant, step, cosine (per iteration) or cosine-epoch, as `shrink train`.
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    /// Iterations of linear learning-rate warmup.
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: u64,
    /// Epochs between decays for `--schedule step`.
    #[arg(long, default_value_t = 10)]
    pub step_size: usize,
    /// Decay factor for `--schedule step`.
    #[arg(long, default_value_t = 0.1)]
    pub gamma: f64,
    /// Seed of shuffling, augmentation and the validation split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Validation examples carved from the training set (0 = none), reported per epoch.
    #[arg(long, default_value_t = 0)]
    pub val_size: usize,
    /// on, shift or off, as `shrink train` (default: on for 3-channel data, else off).
    #[arg(long, value_name = "on|shift|off")]
    pub augment: Option<String>,
    /// Per-channel mean (default: the stored one).
    #[arg(long)]
    pub mean: Option<String>,
    /// Per-channel standard deviation (default: the stored one).
    #[arg(long)]
    pub std: Option<String>,
    /// Resumable checkpoint written after every epoch (default: OUT.ckpt).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Keep the checkpoint after a successful run.
    #[arg(long)]
    pub keep_checkpoint: bool,
    /// Continue an interrupted run from its checkpoint, with the same flags.
    #[arg(long, value_name = "CKPT")]
    pub resume: Option<PathBuf>,
    /// Output model file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `W` or `W,A`.
fn parse_bits(s: &str) -> Result<(u32, Option<u32>)> {
    let parse = |p: &str| -> Result<u32> {
        p.trim().parse().with_context(|| format!("--bits: `{p}` is not a bit width (expected W or W,A)"))
    };
    match s.split(',').collect::<Vec<_>>().as_slice() {
        [w] => Ok((parse(w)?, None)),
        [w, a] => Ok((parse(w)?, Some(parse(a)?))),
        _ => bail!("--bits: expected W or W,A, got `{s}`"),
    }
}

/// Stored size in bytes of `model` as float32 (`fp32`) and with each quantized weight at its
/// bit width plus one f32 scale and offset per range (`quantized`).
pub fn sizes(model: &Model) -> (u64, u64) {
    let (mut fp32, mut quantized) = (0u64, 0u64);
    for (name, p) in model.params.iter() {
        let n = p.var.elem_count() as u64;
        fp32 += 4 * n;
        quantized += match model.params.quant(name) {
            Some(s) => (n * s.bits as u64).div_ceil(8) + 8 * s.scales.len() as u64,
            None => 4 * n,
        };
    }
    (fp32, quantized)
}

pub fn run(a: &QatArgs) -> Result<()> {
    let mut inputs = vec![a.model.as_path()];
    inputs.extend(a.teacher.as_deref());
    crate::common::check_output("--output", &a.output, &inputs, false)?;
    if a.epochs == 0 || a.batch_size == 0 {
        bail!("--epochs and --batch-size must be positive");
    }
    let (weight_bits, act_bits) = parse_bits(&a.bits)?;
    let method = Method::parse(&a.method)?;
    let qcfg = QatConfig {
        method,
        weight_bits,
        act_bits,
        per_channel: a.per_channel,
        first_last_bits: a.first_last_bits,
        scheme: Scheme::parse(&a.scheme).with_context(|| "--scheme")?,
        range: RangeMode::parse(&a.range)?,
        act_momentum: 0.9,
        lsq_offset: a.lsq_offset,
    };
    qcfg.check()?;
    if a.lsq_offset && method != Method::Lsq {
        bail!("--lsq-offset applies to --method lsq only");
    }
    let kd = KdConfig { alpha: a.kd_alpha, temperature: a.kd_temp };
    kd.check()?;
    let mut model = shrink_io::load_model(&a.model, None)?;
    let teacher = match &a.teacher {
        Some(p) => {
            let t = shrink_io::load_model(p, None)?;
            if t.meta.input_shape != model.meta.input_shape {
                bail!(
                    "--teacher {}: input shape {:?} differs from the model's {:?}",
                    p.display(),
                    t.meta.input_shape,
                    model.meta.input_shape
                );
            }
            Some(t)
        }
        None => None,
    };
    if let Some(m) = &a.mean {
        model.meta.mean = parse_floats("--mean", m)?;
    }
    if let Some(s) = &a.std {
        model.meta.std = parse_floats("--std", s)?;
    }
    let normalize = crate::common::normalization(&model, None, None)?;
    let small_input = model.meta.input_shape.iter().product::<usize>() <= 28 * 28;
    let optimizer = match a.optimizer.as_str() {
        "sgd" => OptimizerConfig::Sgd {
            momentum: a.momentum,
            nesterov: a.nesterov,
            weight_decay: a.weight_decay.unwrap_or(if small_input { 0.0 } else { 5e-4 }),
        },
        "adam" => OptimizerConfig::adam(a.weight_decay.unwrap_or(0.0)),
        other => bail!("--optimizer must be sgd or adam, got `{other}`"),
    };
    let lr = a.lr.unwrap_or(if a.optimizer == "adam" { 1e-3 } else { 0.01 });
    let schedule = match a.schedule.as_str() {
        "constant" => Schedule::Constant,
        "step" => Schedule::Step { step_size: a.step_size, gamma: a.gamma },
        "cosine" => Schedule::Cosine { min_lr: 0.0 },
        "cosine-epoch" => Schedule::CosineEpoch { total_epochs: a.epochs, min_lr: 0.0 },
        other => bail!("--schedule must be constant, step, cosine or cosine-epoch, got `{other}`"),
    };
    let default_augment = if model.meta.input_shape.first() == Some(&3) { "on" } else { "off" };
    let augment = match a.augment.as_deref().unwrap_or(default_augment) {
        "on" => Some(Augment { crop_padding: 4, hflip: true }),
        "shift" => Some(Augment { crop_padding: 2, hflip: false }),
        "off" => None,
        other => bail!("--augment must be on, shift or off, got `{other}`"),
    };
    let checkpoint = a.checkpoint.clone().unwrap_or_else(|| {
        let mut p = a.output.clone().into_os_string();
        p.push(".ckpt");
        PathBuf::from(p)
    });
    let identity = run_identity(a, lr, &optimizer, &augment, &normalize);
    if let Some(path) = &a.resume {
        shrink_train::checkpoint::read_loop_state(path)?.check_resume(path, &identity, a.epochs)?;
    }
    let quant = Quantizers::new(&model, &qcfg)?;
    let full = load_data(&a.data, Split::Train)?;
    check_fit(&model, &full, &a.model.display().to_string())?;
    if a.val_size >= full.len() {
        bail!("--val-size {} leaves no training data ({} examples)", a.val_size, full.len());
    }
    let (train_set, val_set) = full.split_validation(a.val_size, a.seed);
    let cfg = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr,
        optimizer,
        schedule,
        warmup_steps: a.warmup_steps,
        seed: a.seed,
        normalize: Normalize { mean: normalize.mean.clone(), std: normalize.std.clone() },
        augment,
        eval_batch_size: 256,
        checkpoint: Some(checkpoint.clone()),
        resume: a.resume.clone(),
        progress: !a.json,
        sparsity: None,
        share_weights: false,
        identity,
    };
    let val = Some(&val_set).filter(|v| !v.is_empty());
    let report = train_qat(&mut model, &quant, &train_set, val, &cfg, teacher.as_ref().map(|t| (t, kd)))?;
    quant.finish(&mut model)?;
    shrink_io::save_model(&model, &a.output).with_context(|| format!("writing {}", a.output.display()))?;
    if !a.keep_checkpoint {
        let _ = std::fs::remove_file(&checkpoint);
    }
    let test = load_data(&a.data, Split::Test).ok();
    let test_result = match &test {
        Some(t) => Some(shrink_train::evaluate(&model, t, &normalize, 256, None)?),
        None => None,
    };
    let (fp32, quantized) = sizes(&model);
    let mean_epoch_s =
        report.epochs.iter().map(|e| e.seconds).sum::<f64>() / report.epochs.len().max(1) as f64;
    if a.json {
        let out = serde_json::json!({
            "output": a.output.display().to_string(),
            "method": a.method,
            "bits": a.bits,
            "layers": quant.plan,
            "epochs": report.epochs,
            "test_accuracy": test_result.as_ref().map(|r| r.accuracy),
            "test_loss": test_result.as_ref().map(|r| r.loss),
            "fp32_bytes": fp32,
            "quantized_bytes": quantized,
            "compression_rate": fp32 as f64 / quantized.max(1) as f64,
            "mean_epoch_seconds": mean_epoch_s,
        });
        println!("{out}");
    } else {
        if let Some(r) = &test_result {
            eprintln!("quantized test accuracy {:.2}% (loss {:.4})", 100.0 * r.accuracy, r.loss);
        }
        eprintln!(
            "size {:.1} KiB → {:.1} KiB ({:.2}x); mean epoch time {mean_epoch_s:.1}s; wrote {}",
            fp32 as f64 / 1024.0,
            quantized as f64 / 1024.0,
            fp32 as f64 / quantized.max(1) as f64,
            a.output.display()
        );
    }
    Ok(())
}

/// The settings that decide the run's numbers, keyed by flag (a resume must repeat them).
fn run_identity(
    a: &QatArgs,
    lr: f64,
    optimizer: &OptimizerConfig,
    augment: &Option<Augment>,
    normalize: &Normalize,
) -> BTreeMap<String, String> {
    let canonical =
        |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    let mut id = BTreeMap::new();
    let mut put = |flag: &str, value: String| {
        id.insert(flag.to_string(), value);
    };
    put("--init", canonical(&a.model));
    put("--data", canonical(&a.data));
    put("--method", a.method.clone());
    put("--bits", a.bits.clone());
    put("--per-channel", a.per_channel.to_string());
    put("--first-last-bits", format!("{:?}", a.first_last_bits));
    put("--scheme", a.scheme.clone());
    put("--range", a.range.clone());
    put("--lsq-offset", a.lsq_offset.to_string());
    put("--teacher", a.teacher.as_deref().map(canonical).unwrap_or_else(|| "none".into()));
    put("--kd-alpha", a.kd_alpha.to_string());
    put("--kd-temp", a.kd_temp.to_string());
    put("--optimizer", a.optimizer.clone());
    put("--lr", lr.to_string());
    put("--optimizer-config", format!("{optimizer:?}"));
    put("--schedule", a.schedule.clone());
    put("--step-size", a.step_size.to_string());
    put("--gamma", a.gamma.to_string());
    if matches!(a.schedule.as_str(), "cosine" | "cosine-epoch") {
        // The cosine curve spans the planned epochs: changing them changes every rate.
        put("--epochs", a.epochs.to_string());
    }
    put("--warmup-steps", a.warmup_steps.to_string());
    put("--batch-size", a.batch_size.to_string());
    put("--seed", a.seed.to_string());
    put("--val-size", a.val_size.to_string());
    put("--augment", format!("{augment:?}"));
    put("--mean", format!("{:?}", normalize.mean));
    put("--std", format!("{:?}", normalize.std));
    id
}
