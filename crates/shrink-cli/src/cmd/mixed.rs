//! `shrink mixed`: mixed-precision post-training quantization.
//!
//! 1. Sensitivity: on a fixed-seed validation subset carved from the TRAIN split (never the test
//!    set), quantize one tensor at a time at every candidate bit width, from the pristine
//!    weights, and record the increase of the validation loss over fp32 and the KL divergence
//!    of the output distribution from fp32's (`--metric` picks which one is the cost).
//! 2. Allocation: [`quant::mixed::allocate`] picks the bits per tensor minimizing the summed
//!    cost subject to `Σ bits_i · n_i ≤ avg_bits · Σ n_i` (exact).
//! 3. Comparison on the test split: fp32, uniform `floor(avg_bits)` and `ceil(avg_bits)` (one
//!    row when the budget is integral) and the mixed allocation, each with its actual average
//!    bits, test accuracy/loss and bit-packed file size.
//!
//! `-o` writes the mixed model with quantizer slots (as `shrink quantize` does), so it evaluates
//! with plain `shrink eval`; `--packed` stores it bit-packed with per-tensor bit widths.
//!
//! Each finished candidate of the sensitivity sweep (one tensor at one bit width) is journaled in
//! `--out-dir` ([`crate::run_dir`]): an interrupted search re-run with the same model, data and
//! flags measures only the missing ones, and its reports are byte-identical to an uninterrupted
//! run's (wall times go to `timings.json`).
//!
//! `--shard I/N` measures only every N-th candidate of the sensitivity sweep ([`crate::shard`])
//! and stops there: the allocation needs every candidate. [`merge`] journals the joined
//! candidates in the merge's output directory and runs the search there, which finds the whole
//! sweep done and allocates and compares (so merging needs the model and data, at the paths
//! the shards were given).
use crate::cmd::quantize::SchemeArg;
use crate::common::{check_fit, load_data, normalization};
use crate::run_dir::{self, RunDir, RunSpec};
use crate::shard::{self, Shard};
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use shrink_compress::quant::mixed::{self, Allocation, LayerOptions};
use shrink_compress::quant::{self, Include, QuantConfig, Quantized, RangeMethod, Scheme, Source};
use shrink_io::data::{make_batch, Dataset, Normalize, Split};
use shrink_ir::{Mode, Model};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the sensitivity sweep measures as a tensor's cost at a bit width (both are recorded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Validation cross-entropy increase over fp32.
    Loss,
    /// Mean KL divergence of the quantized model's output distribution from fp32's
    /// (never negative, so less noisy for small perturbations).
    Kl,
}

/// Default candidate bit widths.
pub const DEFAULT_CANDIDATES: &str = "2,3,4,5,6,8";

#[derive(Args, Serialize, Deserialize)]
pub struct MixedArgs {
    /// Model file (.safetensors, .onnx or .pt), full precision.
    pub model: PathBuf,
    /// Dataset: sensitivity on a subset of its train split, comparison on its test split.
    #[arg(long)]
    pub data: PathBuf,
    /// Quantizer: clip, symmetric or asymmetric.
    #[arg(long, value_enum)]
    #[serde(skip, default = "default_scheme")] // in the run fingerprint by name
    pub scheme: SchemeArg,
    /// Average bits per quantized weight: the budget is `Σ bits_i · n_i ≤ avg-bits · Σ n_i`.
    /// A comma list (e.g. 2.5,3,4) allocates for each budget from one sensitivity sweep.
    #[arg(long, allow_hyphen_values = true)]
    pub avg_bits: String,
    /// Bit widths each tensor may take (comma-separated, 1..=16; symmetric needs >= 2).
    #[arg(long, default_value = DEFAULT_CANDIDATES, allow_hyphen_values = true)]
    pub candidates: String,
    /// Range: a number q > 0, `max`, `pNN` (percentile) or `mse` (as `shrink quantize`).
    #[arg(long, default_value = "max", allow_hyphen_values = true)]
    pub range: String,
    /// One range per output channel instead of one per tensor.
    #[arg(long)]
    pub per_channel: bool,
    /// Also quantize these tensor groups (comma-separated): bias, batchnorm.
    #[arg(long, default_value = "")]
    pub include: String,
    /// Sensitivity cost minimized by the allocation (kl measured better on resnet20, see
    /// bench/results/mixed_precision.md).
    #[arg(long, value_enum, default_value = "kl")]
    pub metric: Metric,
    /// Validation images carved from the train split (fixed seed) for the sensitivity sweep.
    #[arg(long, default_value_t = 2000)]
    pub calib_samples: usize,
    /// Seed of the validation subset.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Examples per forward pass.
    #[arg(long, default_value_t = 256)]
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
    /// Directory for mixed.md, sensitivity.csv, comparison.csv, mixed.json and timings.json. It
    /// belongs to one run: re-running the same search there resumes it.
    #[arg(long, default_value = "runs/mixed")]
    #[serde(skip)]
    pub out_dir: PathBuf,
    /// Write the mixed-precision model here (needs a single `--avg-bits`).
    #[arg(short, long)]
    #[serde(skip)]
    pub output: Option<PathBuf>,
    /// Store `-o` bit-packed (integer codes at each tensor's own bit width).
    #[arg(long)]
    #[serde(skip)]
    pub packed: bool,
    /// Print the JSON report on stdout instead of the Markdown one.
    #[arg(long)]
    #[serde(skip)]
    pub json: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub run: crate::shard::RunFlags,
}

/// Placeholder while reading a run's flags back; [`merge`] sets the scheme from its name.
fn default_scheme() -> SchemeArg {
    SchemeArg::Clip
}

/// The run's identity (the scheme by name; a shard writes no reports).
fn spec(a: &MixedArgs, scheme: Scheme) -> Result<RunSpec<'_>> {
    let mut params = serde_json::to_value(a)?;
    params["scheme"] = scheme.name().into();
    let files = ["mixed.md", "sensitivity.csv", "comparison.csv", "mixed.json", "timings.json"];
    let files = if a.run.shard.is_some() { Vec::new() } else { files.map(String::from).into() };
    Ok(RunSpec { command: "mixed", model: &a.model, data: &a.data, params, files })
}

/// `shrink merge` of `mixed` shards: the joined candidates are journaled in `out_dir`, then the
/// search runs there as a whole run (every candidate done: allocation and comparison only).
pub fn merge(joined: &crate::cmd::merge::Joined, out_dir: &Path, force: bool) -> Result<()> {
    let mut a: MixedArgs = joined.args()?;
    let name = joined.param_str("scheme");
    a.scheme = <SchemeArg as ValueEnum>::from_str(&name, true)
        .map_err(|_| anyhow::anyhow!("merge: the shards' run.json names an unknown scheme `{name}`"))?;
    a.out_dir = out_dir.to_path_buf();
    let scheme: Scheme = a.scheme.into();
    let candidates = parse_candidates(&a.candidates, scheme)?;
    parse_avg_bits(&a.avg_bits, &candidates)?;
    // The tensor list is in the shards' journals (merging needs no model for it).
    joined.check_complete(&[TENSORS], &[])?;
    let tensors: Vec<String> = joined.get(TENSORS)?;
    let keys: Vec<String> =
        tensors.iter().flat_map(|t| candidates.iter().map(move |&b| format!("{t} {b}"))).collect();
    joined.check_complete(&[], &keys)?;
    joined.check_model(&a.model, "mixed")?;
    joined.write_journal(spec(&a, scheme)?, out_dir, force)?;
    // `--force` was spent claiming the directory: the search must resume the journal.
    a.run.force = false;
    run(&a)
}

/// The journal key of the quantized tensors' names (shards record it for [`merge`]).
const TENSORS: &str = "tensors";

/// One finished candidate of the sensitivity sweep as journaled.
#[derive(Serialize, Deserialize)]
struct Candidate {
    loss_increase: f64,
    kl: f64,
    accuracy: f64,
    seconds: f64,
}

/// Parses `--candidates`: sorted, deduplicated bit widths valid for `scheme`.
pub fn parse_candidates(s: &str, scheme: Scheme) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let Ok(v) = item.parse::<i64>() else { bail!("--candidates: `{item}` is not an integer") };
        let Ok(bits) = u32::try_from(v) else { bail!("--candidates must be in 1..=16, got {v}") };
        quant::check_bits(scheme, bits).context("--candidates")?;
        out.push(bits);
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        bail!("--candidates: empty list");
    }
    Ok(out)
}

/// Parses `--avg-bits` (a comma list) and checks each against the candidates: finite, at least
/// the smallest candidate, at most 16.
pub fn parse_avg_bits(s: &str, candidates: &[u32]) -> Result<Vec<f64>> {
    let min = candidates.first().copied().unwrap_or(1);
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let v: f64 = item.parse().map_err(|_| anyhow::anyhow!("--avg-bits: `{item}` is not a number"))?;
        if !v.is_finite() || v < min as f64 || v > 16.0 {
            bail!("--avg-bits must be in {min}..=16 (the smallest candidate is {min}), got {item}");
        }
        out.push(v);
    }
    if out.is_empty() {
        bail!("--avg-bits: empty list");
    }
    Ok(out)
}

/// The uniform bit widths to compare with: `floor` and `ceil` of the budget (one if integral).
pub fn uniform_bits(avg_bits: f64) -> Vec<u32> {
    let (lo, hi) = (avg_bits.floor() as u32, avg_bits.ceil() as u32);
    if lo == hi {
        vec![lo]
    } else {
        vec![lo, hi]
    }
}

/// Sensitivity of one tensor: validation loss/accuracy with only it quantized, per candidate.
#[derive(Debug, Clone, Serialize)]
pub struct LayerSensitivity {
    pub name: String,
    pub params: usize,
    pub bits: Vec<u32>,
    /// Validation loss increase over fp32 per candidate.
    pub loss_increase: Vec<f64>,
    /// Mean KL(fp32 ‖ quantized) of the output distributions per candidate.
    pub kl: Vec<f64>,
    /// Validation accuracy (fraction) per candidate.
    pub accuracy: Vec<f64>,
    /// The bit width the allocation chose, per budget (in `--avg-bits` order).
    pub chosen: Vec<u32>,
}

/// One row of the test-split comparison.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonRow {
    /// The average-bits budget the row is compared at (`None` for fp32).
    pub budget: Option<f64>,
    /// `fp32`, `uniform N` or `mixed`.
    pub config: String,
    /// Bit width per quantized tensor (empty for fp32).
    pub bits: Vec<u32>,
    /// `Σ bits_i · n_i / Σ n_i` over the quantized tensors (32 for fp32).
    pub average_bits: f64,
    pub within_budget: bool,
    /// Summed sensitivity costs (`--metric`), where every width is a candidate.
    pub predicted_cost: Option<f64>,
    /// Top-1 test accuracy as a fraction.
    pub accuracy: f64,
    pub loss: f64,
    /// Size of the bit-packed model file in bytes.
    pub packed_bytes: usize,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    model: String,
    data: String,
    scheme: &'a str,
    metric: Metric,
    range: &'a str,
    per_channel: bool,
    avg_bits: &'a [f64],
    /// `floor(avg_bits · quantized_params)` per budget.
    budget_bits: Vec<u128>,
    quantized_params: u128,
    candidates: &'a [u32],
    calib_samples: usize,
    seed: u64,
    test_samples: usize,
    fp32_val_loss: f64,
    fp32_val_accuracy: f64,
    layers: &'a [LayerSensitivity],
    comparison: &'a [ComparisonRow],
}

pub fn run(a: &MixedArgs) -> Result<()> {
    // Every flag is checked before anything is loaded or written.
    let scheme: Scheme = a.scheme.into();
    let candidates = parse_candidates(&a.candidates, scheme)?;
    let budgets = parse_avg_bits(&a.avg_bits, &candidates)?;
    let shard = Shard::parse_flag(a.run.shard.as_deref())?;
    if shard.is_some() && a.output.is_some() {
        bail!("--shard: a shard writes no model (-o); pass -o to the whole run after `shrink merge`");
    }
    let range = RangeMethod::parse(&a.range).context("--range")?;
    let include = Include::parse(&a.include).context("--include")?;
    if a.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    if a.calib_samples == 0 {
        bail!("--calib-samples must be positive");
    }
    if a.packed && a.output.is_none() {
        bail!("--packed needs -o OUT");
    }
    if a.output.is_some() && budgets.len() != 1 {
        bail!("-o needs a single --avg-bits, got {}", budgets.len());
    }
    if let Some(dir) = a.output.as_ref().and_then(|o| o.parent()).filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            bail!("output directory `{}` does not exist", dir.display());
        }
    }
    let cfg = |bits| QuantConfig { scheme, bits, range, per_channel: a.per_channel, include };
    run_dir::check_out_dir("--out-dir", &a.out_dir)?;

    let mut model = shrink_io::load_model(&a.model, a.arch.as_deref())?;
    let norm = normalization(&model, a.mean.as_deref(), a.std.as_deref())?;
    if !model.params.quants().is_empty() {
        bail!("{}: model is already quantized (start from a full-precision model)", a.model.display());
    }
    let train = load_data(&a.data, Split::Train)?;
    check_fit(&model, &train, &a.model.display().to_string())?;
    let (_, val) = train.split_validation(a.calib_samples, a.seed);
    drop(train);
    let test = load_data(&a.data, Split::Test)?;
    check_fit(&model, &test, &a.model.display().to_string())?;
    let sources = quant::sources(&model, include)?;
    if sources.is_empty() {
        bail!("{}: no tensors to quantize", a.model.display());
    }
    if a.per_channel {
        if let Some(s) = sources.iter().find(|s| s.dims.len() < 2) {
            bail!("--per-channel: `{}` has shape {:?} (no output channels)", s.name, s.dims);
        }
    }
    let mut run = RunDir::open("--out-dir", &a.out_dir, spec(a, scheme)?, a.run.force)?;
    let key = |src: &Source, b: u32| format!("{} {b}", src.name);
    let keys: Vec<String> = sources.iter().flat_map(|s| candidates.iter().map(move |&b| key(s, b))).collect();
    let mine: Vec<bool> = (0..keys.len()).map(|k| shard::mine(shard, k)).collect();
    let my_count = mine.iter().filter(|&&m| m).count();
    let my_keys: Vec<String> = keys.iter().zip(&mine).filter(|(_, &m)| m).map(|(k, _)| k.clone()).collect();
    run_dir::report_resume(run.count_done(&my_keys), my_count);
    if shard.is_some() && run.done::<Vec<String>>(TENSORS).is_none() {
        run.record(TENSORS, &sources.iter().map(|s| s.name.clone()).collect::<Vec<_>>())?;
    }

    // 1. Sensitivity on the validation subset.
    let mut sensitivity_seconds = 0.0;
    let pb = progress((my_count + 1) as u64);
    pb.set_message("fp32");
    let base = ValOutputs::measure(&model, &val, &norm, a.batch_size)?;
    pb.inc(1);
    let mut layers = Vec::with_capacity(sources.len());
    let mut k = 0;
    for src in &sources {
        let (mut loss_increase, mut kl, mut accuracy) = (Vec::new(), Vec::new(), Vec::new());
        for &b in &candidates {
            k += 1;
            if !mine[k - 1] {
                continue;
            }
            let c = match run.done::<Candidate>(&key(src, b)) {
                Some(c) => c,
                None => {
                    pb.set_message(format!("{} at {b} bits", src.name));
                    let start = Instant::now();
                    set_values(&model, &src.name, &quant::quantize_source(src, &cfg(b))?.values, &src.dims)?;
                    let e = ValOutputs::measure(&model, &val, &norm, a.batch_size)?;
                    let c = Candidate {
                        loss_increase: e.loss - base.loss,
                        kl: e.kl_from(&base),
                        accuracy: e.accuracy,
                        seconds: start.elapsed().as_secs_f64(),
                    };
                    run.record(&key(src, b), &c)?;
                    c
                }
            };
            loss_increase.push(c.loss_increase);
            kl.push(c.kl);
            accuracy.push(c.accuracy);
            sensitivity_seconds += c.seconds;
            pb.inc(1);
        }
        set_values(&model, &src.name, &src.values, &src.dims)?;
        layers.push(LayerSensitivity {
            name: src.name.clone(),
            params: src.values.len(),
            bits: candidates.clone(),
            loss_increase,
            kl,
            accuracy,
            chosen: Vec::new(),
        });
    }
    pb.finish_and_clear();
    if let Some(shard) = shard {
        shard::report_done(shard, my_count, &a.out_dir);
        return Ok(());
    }

    // 2. Allocation, per budget.
    let options: Vec<LayerOptions> = layers
        .iter()
        .map(|l| LayerOptions::new(l.name.clone(), l.params as u64, &l.bits, l.cost(a.metric)))
        .collect();
    let total_params = mixed::total_params(&options);
    let mut budget_bits = Vec::with_capacity(budgets.len());
    let mut allocations = Vec::with_capacity(budgets.len());
    for &avg in &budgets {
        let budget = mixed::budget_bits(avg, &options)?;
        let allocation = mixed::allocate(&options, budget).context("--avg-bits")?;
        for (l, &b) in layers.iter_mut().zip(&allocation.bits) {
            l.chosen.push(b);
        }
        budget_bits.push(budget);
        allocations.push(allocation);
    }

    // 3. Comparison on the test split; each distinct assignment is evaluated once.
    let fp32 = shrink_train::evaluate(&model, &test, &norm, a.batch_size, None)?;
    let mut comparison = vec![ComparisonRow {
        budget: None,
        config: "fp32".into(),
        bits: vec![],
        average_bits: 32.0,
        within_budget: false,
        predicted_cost: None,
        accuracy: fp32.accuracy,
        loss: fp32.loss,
        packed_bytes: shrink_io::packed::packed_bytes(&model)?.len(),
    }];
    let mut measured: Vec<(Vec<u32>, f64, f64, Vec<u8>)> = Vec::new();
    for ((&avg, &budget), allocation) in budgets.iter().zip(&budget_bits).zip(&allocations) {
        let mut configs: Vec<(String, Vec<u32>)> =
            uniform_bits(avg).into_iter().map(|b| (format!("uniform {b}"), vec![b; sources.len()])).collect();
        configs.push(("mixed".into(), allocation.bits.clone()));
        for (config, bits) in configs {
            let i = match measured.iter().position(|m| m.0 == bits) {
                Some(i) => i,
                None => {
                    quant::apply(&mut model, &quantize_per_layer(&sources, &bits, cfg)?)?;
                    let e = shrink_train::evaluate(&model, &test, &norm, a.batch_size, None)?;
                    let packed = shrink_io::packed::packed_bytes(&model)?;
                    measured.push((bits.clone(), e.accuracy, e.loss, packed));
                    measured.len() - 1
                }
            };
            let (_, accuracy, loss, packed) = &measured[i];
            let total: u128 =
                bits.iter().zip(&sources).map(|(&b, s)| b as u128 * s.values.len() as u128).sum();
            comparison.push(ComparisonRow {
                budget: Some(avg),
                config,
                average_bits: total as f64 / total_params as f64,
                within_budget: total <= budget,
                predicted_cost: mixed::evaluate(&options, &bits).ok().map(|p: Allocation| p.cost),
                bits,
                accuracy: *accuracy,
                loss: *loss,
                packed_bytes: packed.len(),
            });
        }
    }

    let report = Report {
        model: a.model.display().to_string(),
        data: test.source.clone(),
        scheme: scheme.name(),
        metric: a.metric,
        range: &a.range,
        per_channel: a.per_channel,
        avg_bits: &budgets,
        budget_bits,
        quantized_params: total_params,
        candidates: &candidates,
        calib_samples: val.len(),
        seed: a.seed,
        test_samples: fp32.samples,
        fp32_val_loss: base.loss,
        fp32_val_accuracy: base.accuracy,
        layers: &layers,
        comparison: &comparison,
    };
    let md = markdown(&report);
    let json = serde_json::to_string_pretty(&report)?;
    write_atomic(&a.out_dir.join("mixed.md"), md.as_bytes())?;
    write_atomic(&a.out_dir.join("sensitivity.csv"), sensitivity_csv(&layers, &budgets).as_bytes())?;
    write_atomic(&a.out_dir.join("comparison.csv"), comparison_csv(&comparison).as_bytes())?;
    write_atomic(&a.out_dir.join("mixed.json"), json.as_bytes())?;
    // Wall time summed over the candidates (journaled ones included), apart from the reports.
    let timings = serde_json::json!({ "sensitivity_seconds": sensitivity_seconds });
    write_atomic(&a.out_dir.join("timings.json"), serde_json::to_string_pretty(&timings)?.as_bytes())?;
    if let Some(out) = &a.output {
        // The single budget's mixed allocation (the last assignment evaluated may be another).
        quant::apply(&mut model, &quantize_per_layer(&sources, &allocations[0].bits, cfg)?)?;
        if a.packed {
            write_atomic(out, &shrink_io::packed::packed_bytes(&model)?)?;
        } else {
            shrink_io::save_model(&model, out)?;
        }
    }
    if a.json {
        println!("{json}");
    } else {
        print!("{md}");
    }
    eprintln!(
        "sensitivity: {} tensors x {} widths on {} validation images in {sensitivity_seconds:.1} s; wrote {}/mixed.{{md,json}}, sensitivity.csv, comparison.csv{}",
        sources.len(),
        candidates.len(),
        val.len(),
        a.out_dir.display(),
        a.output.as_ref().map(|o| format!(" and {}", o.display())).unwrap_or_default()
    );
    Ok(())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(shrink_io::atomic::write_atomic(path, bytes)?)
}

impl LayerSensitivity {
    /// The per-candidate costs `metric` selects.
    pub fn cost(&self, metric: Metric) -> &[f64] {
        match metric {
            Metric::Loss => &self.loss_increase,
            Metric::Kl => &self.kl,
        }
    }
}

/// A model's outputs on the validation subset: log-probabilities, mean loss and accuracy.
struct ValOutputs {
    log_probs: Vec<f64>,
    classes: usize,
    loss: f64,
    accuracy: f64,
}

impl ValOutputs {
    fn measure(model: &Model, ds: &Dataset, norm: &Normalize, batch_size: usize) -> Result<ValOutputs> {
        let [c, h, w] = ds.image_shape();
        let (mut buf, mut log_probs) = (Vec::new(), Vec::new());
        let (mut loss, mut correct, mut classes) = (0.0f64, 0usize, 0usize);
        let indices: Vec<usize> = (0..ds.len()).collect();
        for chunk in indices.chunks(batch_size.max(1)) {
            let labels = make_batch(ds, chunk, norm, None, &mut buf);
            let x = Tensor::from_slice(&buf, (chunk.len(), c, h, w), &model.device())?;
            let logits = model.forward(&x, Mode::Eval)?.flatten_from(1)?.to_vec2::<f32>()?;
            for (row, &label) in logits.iter().zip(&labels) {
                classes = row.len();
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let lse = max + row.iter().map(|&z| (z as f64 - max).exp()).sum::<f64>().ln();
                let lp: Vec<f64> = row.iter().map(|&z| z as f64 - lse).collect();
                loss -= lp[label as usize];
                let argmax = (0..lp.len()).fold(0, |best, k| if lp[k] > lp[best] { k } else { best });
                correct += (argmax == label as usize) as usize;
                log_probs.extend(lp);
            }
        }
        let n = ds.len().max(1) as f64;
        Ok(ValOutputs { log_probs, classes, loss: loss / n, accuracy: correct as f64 / n })
    }

    /// Mean `KL(reference ‖ self)` over the examples.
    fn kl_from(&self, reference: &ValOutputs) -> f64 {
        let n = (reference.log_probs.len() / reference.classes.max(1)).max(1) as f64;
        let sum: f64 =
            reference.log_probs.iter().zip(&self.log_probs).map(|(&p, &q)| p.exp() * (p - q)).sum();
        sum / n
    }
}

/// Writes `values` as the stored weight `name` (no quantizer slot).
fn set_values(model: &Model, name: &str, values: &[f32], dims: &[usize]) -> Result<()> {
    model.params.set(name, &Tensor::from_slice(values, dims, &model.device())?)?;
    Ok(())
}

/// Quantizes `sources[i]` at `bits[i]`, from the pristine weights.
fn quantize_per_layer(
    sources: &[Source],
    bits: &[u32],
    cfg: impl Fn(u32) -> QuantConfig,
) -> Result<Vec<Quantized>> {
    Ok(sources
        .iter()
        .zip(bits)
        .map(|(s, &b)| quant::quantize_source(s, &cfg(b)))
        .collect::<quant::Result<_>>()?)
}

fn progress(len: u64) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "mixed sensitivity [{bar:30}] {pos}/{len} {elapsed_precise} (eta {eta}) {msg}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

fn pct(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

fn list<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

fn markdown(r: &Report) -> String {
    let mut s = format!(
        "# Mixed precision\n\nmodel `{}`, data `{}`; {} quantization, range {}{}, {} quantized weights; \
         candidates {} bits; sensitivity on {} validation images carved from the train split (seed {}), \
         fp32 validation loss {:.4}, accuracy {}%\n",
        r.model,
        r.data,
        r.scheme,
        r.range,
        if r.per_channel { " per channel" } else { " per tensor" },
        r.quantized_params,
        list(r.candidates),
        r.calib_samples,
        r.seed,
        r.fp32_val_loss,
        pct(r.fp32_val_accuracy)
    );
    s += &format!(
        "\n## Test split ({} images): uniform vs mixed at average budgets of {} bits\n\n",
        r.test_samples,
        list(r.avg_bits)
    );
    s += "| budget (bits) | config | average bits | within budget | predicted cost | test accuracy (%) | test loss | packed bytes |\n";
    s += "|---|---|---|---|---|---|---|---|\n";
    for c in r.comparison {
        s += &format!(
            "| {} | {} | {:.3} | {} | {} | {} | {:.4} | {} |\n",
            c.budget.map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
            c.config,
            c.average_bits,
            if c.budget.is_none() {
                "-"
            } else if c.within_budget {
                "yes"
            } else {
                "no"
            },
            c.predicted_cost.map(|p| format!("{p:.4}")).unwrap_or_else(|| "-".into()),
            pct(c.accuracy),
            c.loss,
            c.packed_bytes
        );
    }
    s += &format!(
        "\n## Per-tensor sensitivity (cost = {}): with only that tensor quantized\n\n",
        match r.metric {
            Metric::Loss => "validation loss increase",
            Metric::Kl => "KL(fp32 ‖ quantized) of the validation outputs",
        }
    );
    s += "| tensor | params |";
    for b in r.candidates {
        s += &format!(" {b} bits |");
    }
    for avg in r.avg_bits {
        s += &format!(" chosen @ {avg} |");
    }
    s += "\n|---|---|";
    s += &"---|".repeat(r.candidates.len() + r.avg_bits.len());
    s += "\n";
    for l in r.layers {
        s += &format!("| {} | {} |", l.name, l.params);
        for d in l.cost(r.metric) {
            s += &format!(" {d:+.4} |");
        }
        for b in &l.chosen {
            s += &format!(" {b} |");
        }
        s += "\n";
    }
    s
}

fn sensitivity_csv(layers: &[LayerSensitivity], budgets: &[f64]) -> String {
    let mut s = String::from("tensor,params,bits,loss_increase,kl,val_accuracy");
    for avg in budgets {
        s += &format!(",chosen_at_{avg}");
    }
    s += "\n";
    for l in layers {
        for (((&b, d), kl), acc) in l.bits.iter().zip(&l.loss_increase).zip(&l.kl).zip(&l.accuracy) {
            s += &format!("{},{},{b},{d:.6},{kl:.6},{}", l.name, l.params, pct(*acc));
            for &c in &l.chosen {
                s += &format!(",{}", (b == c) as u8);
            }
            s += "\n";
        }
    }
    s
}

fn comparison_csv(rows: &[ComparisonRow]) -> String {
    let mut s =
        String::from("budget,config,average_bits,within_budget,predicted_cost,accuracy,loss,packed_bytes\n");
    for c in rows {
        s += &format!(
            "{},{},{:.4},{},{},{},{:.6},{}\n",
            c.budget.map(|b| b.to_string()).unwrap_or_default(),
            c.config,
            c.average_bits,
            c.within_budget,
            c.predicted_cost.map(|p| format!("{p:.6}")).unwrap_or_default(),
            pct(c.accuracy),
            c.loss,
            c.packed_bytes
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_candidates_and_checks_the_budget() {
        assert_eq!(parse_candidates("8, 2,4,4", Scheme::Clip).unwrap(), vec![2, 4, 8]);
        assert_eq!(parse_candidates("1", Scheme::Asymmetric).unwrap(), vec![1]);
        let e = |r: Result<Vec<u32>>| format!("{:#}", r.unwrap_err());
        for bad in ["0", "17", "-2", "x", ""] {
            assert!(e(parse_candidates(bad, Scheme::Clip)).starts_with("--candidates"), "{bad}");
        }
        assert!(e(parse_candidates("1,4", Scheme::Symmetric)).starts_with("--candidates"));
        assert_eq!(parse_avg_bits("2.5, 3,16", &[2, 4]).unwrap(), vec![2.5, 3.0, 16.0]);
        for bad in ["1.9", "16.5", "nan", "-3", "x", ""] {
            let e = format!("{:#}", parse_avg_bits(bad, &[2, 4]).unwrap_err());
            assert!(e.starts_with("--avg-bits"), "{bad}: {e}");
        }
        assert_eq!(uniform_bits(3.0), vec![3]);
        assert_eq!(uniform_bits(2.5), vec![2, 3]);
    }
}
