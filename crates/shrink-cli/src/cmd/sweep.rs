//! `shrink sweep ...`: grids of compression settings, each cell from the pristine model, written
//! as Markdown + CSV + JSON tables and the seeds' figures.
//!
//! Each finished cell is journaled in `--out-dir` ([`crate::run_dir`]): an interrupted sweep
//! re-run with the same model, data and flags computes only the missing cells. (Inference times
//! are measured, so only the journal makes two runs' tables agree: a resumed run reuses them.)
//!
//! `sweep prune --shard I/N` measures only every N-th ratio ([`crate::shard`]) and the dense
//! model; [`merge_prune`] writes the tables and figures from the joined journals. Inference
//! times (and speed-ups, against the dense time of the shard that measured the cell) are
//! measured where each shard ran; every other column equals a whole run's.
use crate::cmd::prune::{prune_model, PruneArgs};
use crate::common::{check_fit, load_data, normalization, parse_ratios, parse_split};
use crate::run_dir::{self, RunDir, RunSpec};
use crate::shard::{self, Shard};
use anyhow::Result;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use shrink_ir::stats::model_stats;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum SweepCommand {
    /// Prune at each ratio (from the pristine model) and measure params, size, MACs, accuracy, time.
    Prune(SweepPruneArgs),
    /// Quantize with each (method, bits, range) from the pristine weights and measure accuracy
    /// (by default bits 2-16 and ranges 0.5-2, the grid of the MNIST quantization study).
    #[command(allow_negative_numbers = true)]
    Quant(crate::cmd::sweep_quant::SweepQuantArgs),
}

#[derive(Args)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub command: SweepCommand,
}

#[derive(Args, Serialize, Deserialize)]
pub struct SweepPruneArgs {
    /// Model file (.safetensors, .onnx or bit-packed).
    pub model: PathBuf,
    /// Dataset to evaluate each cell on.
    #[arg(long)]
    pub data: PathBuf,
    /// Pruning method (see `shrink prune --help`).
    #[arg(long, default_value = "neuron-l2")]
    pub method: String,
    /// Comma-separated pruning ratios in [0, 1].
    #[arg(long, default_value = "0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.92,0.95")]
    pub ratios: String,
    /// Only prune these layers (comma-separated).
    #[arg(long)]
    pub layers: Option<String>,
    /// Norm order for filter-ln.
    #[arg(long, default_value = "2")]
    pub norm: String,
    /// Dataset split to measure accuracy on: test or train.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Examples per forward pass.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Per-channel mean (default: stored in the model).
    #[arg(long)]
    pub mean: Option<String>,
    /// Per-channel std (default: stored in the model).
    #[arg(long)]
    pub std: Option<String>,
    /// Architecture override for plain state_dicts.
    #[arg(long)]
    pub arch: Option<String>,
    /// Directory for table.{md,csv,json} and the figures. It belongs to one run: re-running the
    /// same sweep there resumes it (finished cells are kept).
    #[arg(long, default_value = "runs/sweep-prune")]
    #[serde(skip)]
    pub out_dir: PathBuf,
    /// Figure format: png or svg.
    #[arg(long, default_value = "png")]
    pub format: String,
    /// Fine-tune every pruned cell for this many epochs (Adam, cosine) on the training split
    /// (minus a 5,000-example validation split) and report accuracy before and after.
    #[arg(long, default_value_t = 0)]
    pub finetune_epochs: usize,
    /// Learning rate of the fine-tuning.
    #[arg(long, default_value_t = 3e-4)]
    pub finetune_lr: f64,
    /// Seed of the fine-tuning (data order, validation split).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    #[serde(flatten)]
    pub run: crate::shard::RunFlags,
}

fn ratio_key(ratio: f64) -> String {
    format!("ratio {ratio:?}")
}

/// The run's identity; a shard writes no tables or figures.
fn prune_spec(a: &SweepPruneArgs) -> Result<RunSpec<'_>> {
    let mut files: Vec<String> = Vec::new();
    if a.run.shard.is_none() {
        files = ["table.md", "table.csv", "table.json", "report.html"].map(String::from).into();
        files.extend(FIGURES.iter().map(|f| format!("{f}.{}", a.format)));
    }
    Ok(RunSpec {
        command: "sweep prune",
        model: &a.model,
        data: &a.data,
        params: serde_json::to_value(a)?,
        files,
    })
}

/// Parses `--ratios` and checks `--batch-size` and `--format`.
fn parse_prune_grid(a: &SweepPruneArgs) -> Result<Vec<f64>> {
    let ratios = parse_ratios("--ratios", &a.ratios)?;
    if a.batch_size == 0 {
        anyhow::bail!("--batch-size must be positive");
    }
    if a.format != "png" && a.format != "svg" {
        anyhow::bail!("--format must be png or svg, got `{}`", a.format);
    }
    Ok(ratios)
}

/// One cell of the pruning sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PruneCell {
    pub ratio: f64,
    pub params: usize,
    pub nonzero_params: usize,
    /// Dense fp32 size of the parameters in MiB (the lab's `model_size_mb`).
    pub size_mb: f64,
    pub macs: u64,
    pub accuracy: f64,
    pub loss: f64,
    /// Forward-pass wall time over the whole split, seconds.
    pub inference_s: f64,
    /// Dense model's inference time / this cell's.
    pub speedup: f64,
    /// Accuracy after `--finetune-epochs` of fine-tuning (absent without fine-tuning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_finetuned: Option<f64>,
}

pub fn run(a: &SweepArgs) -> Result<()> {
    match &a.command {
        SweepCommand::Prune(p) => run_prune(p),
        SweepCommand::Quant(q) => crate::cmd::sweep_quant::run(q),
    }
}

fn run_prune(a: &SweepPruneArgs) -> Result<()> {
    let ratios = parse_prune_grid(a)?;
    let shard = Shard::parse_flag(a.run.shard.as_deref())?;
    run_dir::check_out_dir("--out-dir", &a.out_dir)?;
    let model = shrink_io::load_model(&a.model, a.arch.as_deref())?;
    let norm = normalization(&model, a.mean.as_deref(), a.std.as_deref())?;
    let ds = load_data(&a.data, parse_split(&a.split)?)?;
    check_fit(&model, &ds, &a.model.display().to_string())?;
    let mut run = RunDir::open("--out-dir", &a.out_dir, prune_spec(a)?, a.run.force)?;
    let key = ratio_key;
    let ratios: Vec<f64> =
        ratios.into_iter().enumerate().filter(|&(k, _)| shard::mine(shard, k)).map(|(_, r)| r).collect();
    let keys: Vec<String> = ratios.iter().map(|&r| key(r)).collect();
    run_dir::report_resume(run.count_done(&keys), keys.len());
    let pb = crate::common::progress(ratios.len() as u64 + 1, true, "sweep prune");
    let measure = |m: &shrink_ir::Model, ratio: f64, base_s: f64| -> Result<PruneCell> {
        let r = shrink_train::evaluate(m, &ds, &norm, a.batch_size, None)?;
        let s = model_stats(m)?;
        let inference_s = r.samples as f64 / r.throughput.max(1e-12);
        Ok(PruneCell {
            ratio,
            params: s.params,
            nonzero_params: s.nonzero_params,
            size_mb: s.params as f64 * 4.0 / (1024.0 * 1024.0),
            macs: s.macs,
            accuracy: r.accuracy,
            loss: r.loss,
            inference_s,
            speedup: if base_s > 0.0 { base_s / inference_s } else { 1.0 },
            accuracy_finetuned: None,
        })
    };
    let finetune = (a.finetune_epochs > 0).then(|| finetune_setup(a, &model, &norm)).transpose()?;
    let base = match run.done::<PruneCell>("dense") {
        Some(base) => base,
        None => {
            let base = measure(&model, 0.0, 0.0)?;
            run.record("dense", &base)?;
            base
        }
    };
    pb.inc(1);
    let mut cells = vec![base.clone()];
    for &ratio in &ratios {
        if let Some(cell) = run.done::<PruneCell>(&key(ratio)) {
            cells.push(cell);
            pb.inc(1);
            continue;
        }
        let args = PruneArgs {
            model: a.model.clone(),
            method: a.method.clone(),
            sparsity: Some(ratio),
            layer_sparsity: None,
            sparsity_file: None,
            layers: a.layers.clone(),
            norm: a.norm.clone(),
            importance: "abs".into(),
            tol: 0.0,
            arch: None,
            engine: "layers".into(),
            graph: None,
            plan_out: None,
            plan: None,
            json: false,
            output: PathBuf::new(),
            force: false,
            keep_shape: false,
            cumulative: false,
            order: "sorted".into(),
            schedule: Default::default(),
        };
        // Every cell starts from the pristine model: prune_model never mutates its input.
        let (mut pruned, _) = prune_model(&model, &args)?;
        let mut cell = measure(&pruned, ratio, base.inference_s)?;
        if let Some((train_set, val_set, cfg)) = &finetune {
            shrink_train::train(&mut pruned, train_set, Some(val_set), cfg)?;
            cell.accuracy_finetuned =
                Some(shrink_train::evaluate(&pruned, &ds, &norm, a.batch_size, None)?.accuracy);
        }
        run.record(&key(ratio), &cell)?;
        cells.push(cell);
        pb.inc(1);
    }
    pb.finish_and_clear();
    if let Some(shard) = shard {
        shard::report_done(shard, ratios.len(), &a.out_dir);
        return Ok(());
    }
    write_prune_outputs(&a.out_dir, &a.format, &cells)
}

/// Writes the tables and figures of a finished sweep (`cells`: the dense model, then the
/// ratios in order) and prints the table: the end of a whole run and of [`merge_prune`].
fn write_prune_outputs(dir: &Path, format: &str, cells: &[PruneCell]) -> Result<()> {
    write_tables(dir, cells)?;
    write_figures(dir, format, &cells[1..])?;
    crate::recipe::report::write_dir_report(
        dir,
        "Pruning sweep",
        "shrink sweep prune: every ratio pruned from the pristine model (ratio 0 is the dense model).",
    )?;
    print!("{}", markdown(cells));
    eprintln!("wrote {}/table.{{md,csv,json}} and {} figures", dir.display(), FIGURES.len());
    Ok(())
}

/// `shrink merge` of `sweep prune` shards: the whole sweep's files from the joined journals.
pub fn merge_prune(joined: &crate::cmd::merge::Joined, out_dir: &Path, force: bool) -> Result<()> {
    let mut a: SweepPruneArgs = joined.args()?;
    a.out_dir = out_dir.to_path_buf();
    a.run.force = force;
    let keys: Vec<String> = parse_prune_grid(&a)?.into_iter().map(ratio_key).collect();
    joined.check_complete(&["dense"], &keys)?;
    let mut cells = vec![joined.get::<PruneCell>("dense")?];
    for key in &keys {
        cells.push(joined.get(key)?);
    }
    joined.write_journal(prune_spec(&a)?, out_dir, force)?;
    write_prune_outputs(out_dir, &a.format, &cells)
}

/// Training split, validation split and configuration for the per-cell fine-tuning.
fn finetune_setup(
    a: &SweepPruneArgs,
    model: &shrink_ir::Model,
    norm: &shrink_io::data::Normalize,
) -> Result<(shrink_io::data::Dataset, shrink_io::data::Dataset, shrink_train::TrainConfig)> {
    let full = load_data(&a.data, shrink_io::data::Split::Train)?;
    let val_size = 5000.min(full.len() / 10);
    let (train_set, val_set) = full.split_validation(val_size, a.seed);
    let cfg = shrink_train::TrainConfig {
        epochs: a.finetune_epochs,
        batch_size: a.batch_size,
        lr: a.finetune_lr,
        optimizer: shrink_train::OptimizerConfig::adam(0.0),
        schedule: shrink_train::Schedule::CosineEpoch { total_epochs: a.finetune_epochs, min_lr: 0.0 },
        seed: a.seed,
        normalize: norm.clone(),
        augment: (model.meta.input_shape.first() == Some(&3))
            .then_some(shrink_io::data::Augment { crop_padding: 4, hflip: true }),
        eval_batch_size: 256,
        checkpoint: None,
        resume: None,
        progress: false,
        sparsity: None,
        share_weights: false,
        identity: Default::default(),
        warmup_steps: 0,
    };
    Ok((train_set, val_set, cfg))
}

const HEADER: [&str; 10] = [
    "ratio",
    "params",
    "nonzero",
    "size (MB)",
    "MACs",
    "accuracy (%)",
    "fine-tuned (%)",
    "loss",
    "inference (s)",
    "speed-up",
];

fn row(c: &PruneCell) -> [String; 10] {
    [
        format!("{:.2}", c.ratio),
        c.params.to_string(),
        c.nonzero_params.to_string(),
        format!("{:.2}", c.size_mb),
        c.macs.to_string(),
        format!("{:.2}", 100.0 * c.accuracy),
        c.accuracy_finetuned.map(|x| format!("{:.2}", 100.0 * x)).unwrap_or_else(|| "-".into()),
        format!("{:.4}", c.loss),
        format!("{:.3}", c.inference_s),
        format!("{:.2}x", c.speedup),
    ]
}

fn markdown(cells: &[PruneCell]) -> String {
    let mut s = format!("| {} |\n|{}\n", HEADER.join(" | "), "---|".repeat(HEADER.len()));
    for c in cells {
        s += &format!("| {} |\n", row(c).join(" | "));
    }
    s
}

fn write_tables(dir: &Path, cells: &[PruneCell]) -> Result<()> {
    let mut csv = HEADER.join(",") + "\n";
    for c in cells {
        csv += &(row(c).join(",").replace('x', "") + "\n");
    }
    shrink_io::atomic::write_atomic(&dir.join("table.md"), markdown(cells).as_bytes())?;
    shrink_io::atomic::write_atomic(&dir.join("table.csv"), csv.as_bytes())?;
    shrink_io::atomic::write_atomic(
        &dir.join("table.json"),
        serde_json::to_string_pretty(cells)?.as_bytes(),
    )?;
    Ok(())
}

/// The figure names (without extension), in [`write_figures`]'s order.
const FIGURES: [&str; 6] = [
    "params-vs-accuracy",
    "time-vs-accuracy",
    "ratio-vs-accuracy",
    "params-vs-time",
    "ratio-vs-time",
    "ratio-vs-params",
];

/// The seed-000 figures: nonzero params/time/ratio vs accuracy, params/ratio vs time, ratio vs params.
fn write_figures(dir: &Path, ext: &str, cells: &[PruneCell]) -> Result<()> {
    type Get = fn(&PruneCell) -> f64;
    let acc: (&str, Get) = ("accuracy (%)", |c| 100.0 * c.accuracy);
    // Nonzero parameters: what both kinds of pruning reduce (mask pruning keeps the shapes, so
    // the parameter count alone would be one vertical line).
    let params: (&str, Get) = ("nonzero parameters", |c| c.nonzero_params as f64);
    let time: (&str, Get) = ("inference time (s)", |c| c.inference_s);
    let ratio: (&str, Get) = ("pruning ratio", |c| c.ratio);
    let axes = [(params, acc), (time, acc), (ratio, acc), (params, time), (ratio, time), (ratio, params)];
    for (stem, ((xl, fx), (yl, fy))) in FIGURES.into_iter().zip(axes) {
        let points: Vec<(f64, f64)> = cells.iter().map(|c| (fx(c), fy(c))).collect();
        let path = dir.join(format!("{stem}.{ext}"));
        shrink_report::plot::line_chart(
            &path,
            &format!("{xl} vs {yl}"),
            xl,
            yl,
            &[("sweep".into(), points)],
            false,
        )?;
    }
    Ok(())
}
