//! `shrink finetune`: fine-tune any ONNX model (e.g. one pruned by `shrink prune --engine
//! graph`) on a dataset through the open graph IR and candle autograd; writes ONNX.
use crate::common::{load_data, parse_floats, parse_split};
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
use shrink_io::data::{default_normalize, Augment, Split};
use shrink_train::graph_eval::plan_input;
use shrink_train::graph_train::{evaluate_graph_candle, finetune_graph, GraphTrainConfig};
use shrink_train::{OptimizerConfig, Schedule};
use std::path::PathBuf;

#[derive(Args)]
pub struct FinetuneArgs {
    /// ONNX model (any architecture the graph IR covers), or with --graph a state_dict.
    pub model: PathBuf,
    /// The architecture as an ONNX file whose weights come from MODEL, a state_dict (`.pt` or
    /// `.safetensors`) matched by name.
    #[arg(long, value_name = "M.onnx")]
    pub graph: Option<PathBuf>,
    /// Dataset path (MNIST IDX dir, CIFAR binary dir, image folder or .tar/.tar.gz).
    #[arg(long)]
    pub data: PathBuf,
    /// Passes over the training set.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Examples per optimizer step (a graph with a fixed batch needs exactly that size).
    #[arg(long, default_value_t = 64)]
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
    /// L2 weight decay (decoupled for adam).
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f64,
    /// cosine (per iteration) or constant.
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    /// Iterations of linear learning-rate warmup.
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: u64,
    /// Seed of shuffling, augmentation and the validation split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training examples held out for validation (the best epoch's weights are kept).
    #[arg(long, default_value_t = 0)]
    pub val_size: usize,
    /// on (random crop with padding 4 + flip), off (default: on for RGB images).
    #[arg(long)]
    pub augment: Option<String>,
    /// Per-channel mean (default: the dataset's usual statistics).
    #[arg(long)]
    pub mean: Option<String>,
    /// Per-channel std.
    #[arg(long)]
    pub std: Option<String>,
    /// Output ONNX file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Overwrite the output even when it is the input.
    #[arg(long)]
    pub force: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &FinetuneArgs) -> Result<()> {
    let mut inputs = vec![a.model.as_path()];
    inputs.extend(a.graph.as_deref());
    crate::common::check_output("--output", &a.output, &inputs, a.force)?;
    if a.epochs == 0 || a.batch_size == 0 {
        bail!("--epochs and --batch-size must be positive");
    }
    let optimizer = match a.optimizer.as_str() {
        "sgd" => OptimizerConfig::Sgd { momentum: a.momentum, nesterov: false, weight_decay: a.weight_decay },
        "adam" => OptimizerConfig::adam(a.weight_decay),
        other => bail!("--optimizer must be sgd or adam, got `{other}`"),
    };
    let lr = a.lr.unwrap_or(if a.optimizer == "adam" { 1e-3 } else { 0.01 });
    let schedule = match a.schedule.as_str() {
        "cosine" => Schedule::Cosine { min_lr: 0.0 },
        "constant" => Schedule::Constant,
        other => bail!("--schedule must be cosine or constant, got `{other}`"),
    };
    let graph = crate::common::load_engine_graph(&a.model, a.graph.as_deref())?;
    let train_all = load_data(&a.data, Split::Train)?;
    let test = load_data(&a.data, parse_split("test")?)?;
    let what = a.model.display().to_string();
    let plan = plan_input(&graph, train_all.image_shape(), a.batch_size, &what)?;
    let (train, val) = if a.val_size > 0 {
        if a.val_size >= train_all.len() {
            bail!("--val-size {} leaves no training data ({} examples)", a.val_size, train_all.len());
        }
        let (t, v) = train_all.split_validation(a.val_size, a.seed);
        (t, Some(v))
    } else {
        (train_all, None)
    };
    let mut normalize = default_normalize(train.channels);
    if let Some(m) = &a.mean {
        normalize.mean = parse_floats("--mean", m)?;
    }
    if let Some(s) = &a.std {
        normalize.std = parse_floats("--std", s)?;
    }
    let augment = match a.augment.as_deref().unwrap_or(if train.channels == 3 { "on" } else { "off" }) {
        "on" => Some(Augment { crop_padding: 4, hflip: true }),
        "off" => None,
        other => bail!("--augment must be on or off, got `{other}`"),
    };
    let model = shrink_ir::graph_exec::GraphModel::new(graph, &candle_core::Device::Cpu)?;
    let (acc_before, loss_before) = evaluate_graph_candle(&model, &test, &normalize, &plan)?;
    let cfg = GraphTrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr,
        optimizer,
        schedule,
        warmup_steps: a.warmup_steps,
        seed: a.seed,
        normalize: normalize.clone(),
        augment,
        progress: !a.json,
    };
    let history = finetune_graph(&model, &train, val.as_ref(), &plan, &cfg)?;
    let (acc_after, loss_after) = evaluate_graph_candle(&model, &test, &normalize, &plan)?;
    shrink_io::onnx::graph_export::save_graph_onnx(&model.to_graph()?, &a.output)?;
    if a.json {
        println!(
            "{}",
            json!({
                "model": what, "output": a.output.display().to_string(),
                "test_accuracy_before": acc_before, "test_loss_before": loss_before,
                "test_accuracy_after": acc_after, "test_loss_after": loss_after,
                "epochs": history,
            })
        );
    } else {
        println!(
            "test accuracy {:.2}% -> {:.2}% (loss {:.4} -> {:.4}); wrote {}",
            100.0 * acc_before,
            100.0 * acc_after,
            loss_before,
            loss_after,
            a.output.display()
        );
    }
    Ok(())
}
