//! `shrink sensitivity`: prune one layer at a time over a sparsity grid (seed 002), plot one
//! accuracy curve per layer, and pick per-layer sparsities that meet a size target.
//!
//! Each finished layer × sparsity evaluation is journaled in `--out-dir` ([`crate::run_dir`]):
//! an interrupted scan re-run with the same model, data and flags computes only the missing
//! ones, and writes the same files as an uninterrupted scan.
//!
//! `--shard I/N` scans only every N-th layer × sparsity ([`crate::shard`]) and journals the
//! layer list too; [`merge`] writes the curves, the figure and the plan from the joined
//! journals (the plan's accuracy, which needs the model, is only printed by a whole run).
use crate::common::{check_fit, load_data, normalization, parse_ratios, parse_split};
use crate::run_dir::{self, RunDir, RunSpec};
use crate::shard::{self, Shard};
use anyhow::{bail, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use shrink_compress::prune::sensitivity::{allocate, LayerCurve};
use shrink_compress::prune::{self, unstructured, MagnitudeRule, WeightImportance};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Args, Serialize, Deserialize)]
pub struct SensitivityArgs {
    /// Model file (.safetensors, .onnx or bit-packed).
    pub model: PathBuf,
    /// Dataset to evaluate on.
    #[arg(long)]
    pub data: PathBuf,
    /// Sparsities to scan per layer (comma-separated, in [0, 1]).
    #[arg(long, default_value = "0.4,0.5,0.6,0.7,0.8,0.9")]
    pub sparsities: String,
    /// Unstructured rule: exact (round(n·s) smallest weights per layer) or magnitude (per-layer percentile).
    #[arg(long, default_value = "exact")]
    pub method: String,
    /// Kept fraction of the prunable weights to allocate for, e.g. 0.25 (a 4x smaller model).
    #[arg(long)]
    pub target: Option<f64>,
    /// Dataset split to measure accuracy on: test or train.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Evaluate on the first N examples only (faster scans).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Examples per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Per-channel mean (default: the stored one).
    #[arg(long)]
    pub mean: Option<String>,
    /// Per-channel standard deviation (default: the stored one).
    #[arg(long)]
    pub std: Option<String>,
    /// Architecture override for plain state_dicts.
    #[arg(long)]
    pub arch: Option<String>,
    /// Directory for sensitivity.{json,png} and plan.json. It belongs to one run: re-running
    /// the same scan there resumes it (finished evaluations are kept).
    #[arg(long, default_value = "runs/sensitivity")]
    #[serde(skip)]
    pub out_dir: PathBuf,
    #[command(flatten)]
    #[serde(flatten)]
    pub run: crate::shard::RunFlags,
}

/// The journal key of the layer list (shards record it: merging needs it without the model).
const LAYERS: &str = "layers";

fn key(w: &str, s: f64) -> String {
    format!("{w} {s:?}")
}

/// The run's identity; a shard writes no result files.
fn spec(a: &SensitivityArgs) -> Result<RunSpec<'_>> {
    let mut files: Vec<String> = Vec::new();
    if a.run.shard.is_none() {
        files = vec!["sensitivity.png".into(), "sensitivity.json".into()];
        if a.target.is_some() {
            files.push("plan.json".into());
        }
    }
    Ok(RunSpec {
        command: "sensitivity",
        model: &a.model,
        data: &a.data,
        params: serde_json::to_value(a)?,
        files,
    })
}

pub fn run(a: &SensitivityArgs) -> Result<()> {
    let (levels, rule) = parse_grid(a)?;
    let shard = Shard::parse_flag(a.run.shard.as_deref())?;
    if a.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    run_dir::check_out_dir("--out-dir", &a.out_dir)?;
    let model = shrink_io::load_model(&a.model, a.arch.as_deref())?;
    let norm = normalization(&model, a.mean.as_deref(), a.std.as_deref())?;
    let mut ds = load_data(&a.data, parse_split(&a.split)?)?;
    check_fit(&model, &ds, &a.model.display().to_string())?;
    if let Some(n) = a.limit {
        let idx: Vec<usize> = (0..n.min(ds.len())).collect();
        ds = ds.subset(&idx);
    }
    let mut run = RunDir::open("--out-dir", &a.out_dir, spec(a)?, a.run.force)?;
    let weights = unstructured::prunable_weights(&model);
    let keys: Vec<String> = weights.iter().flat_map(|w| levels.iter().map(move |&s| key(w, s))).collect();
    let mine: Vec<bool> = (0..keys.len()).map(|k| shard::mine(shard, k)).collect();
    let my_keys: Vec<String> = keys.iter().zip(&mine).filter(|(_, &m)| m).map(|(k, _)| k.clone()).collect();
    run_dir::report_resume(run.count_done(&my_keys), my_keys.len());
    if shard.is_some() && run.done::<Vec<(String, usize)>>(LAYERS).is_none() {
        let layers: Vec<(String, usize)> = weights
            .iter()
            .map(|w| Ok((w.clone(), model.params.get(w)?.var.elem_count())))
            .collect::<Result<_>>()?;
        run.record(LAYERS, &layers)?;
    }
    let pb = crate::common::progress((my_keys.len() + 1) as u64, true, "sensitivity");
    let base = match run.done::<f64>("dense") {
        Some(base) => base,
        None => {
            let base = shrink_train::evaluate(&model, &ds, &norm, a.batch_size, None)?.accuracy;
            run.record("dense", &base)?;
            base
        }
    };
    pb.inc(1);
    let mut curves = Vec::new();
    let mut k = 0;
    for w in &weights {
        let n = model.params.get(w)?.var.elem_count();
        let mut points = Vec::new();
        for &s in &levels {
            k += 1;
            if !mine[k - 1] {
                continue;
            }
            let accuracy = match run.done::<f64>(&key(w, s)) {
                Some(accuracy) => accuracy,
                None => {
                    let mut m = model.clone();
                    m.params = model.params.deep_clone()?;
                    let sparsity = BTreeMap::from([(w.clone(), s)]);
                    prune::prune_magnitude(&mut m, &sparsity, rule, WeightImportance::Abs)?;
                    let accuracy = shrink_train::evaluate(&m, &ds, &norm, a.batch_size, None)?.accuracy;
                    run.record(&key(w, s), &accuracy)?;
                    accuracy
                }
            };
            points.push((s, accuracy));
            pb.inc(1);
        }
        curves.push(LayerCurve { layer: w.trim_end_matches(".weight").to_string(), weights: n, points });
    }
    pb.finish_and_clear();
    if let Some(shard) = shard {
        shard::report_done(shard, my_keys.len(), &a.out_dir);
        return Ok(());
    }
    let evaluate_plan = |map: &BTreeMap<String, f64>| -> Result<f64> {
        let mut m = model.clone();
        m.params = model.params.deep_clone()?;
        let resolved = unstructured::resolve_layers(&m, map)?;
        prune::prune_magnitude(&mut m, &resolved, rule, WeightImportance::Abs)?;
        Ok(shrink_train::evaluate(&m, &ds, &norm, a.batch_size, None)?.accuracy)
    };
    write_outputs(a, &levels, base, &curves, Some(&evaluate_plan))
}

/// Parses `--sparsities`, `--target` and `--method`.
fn parse_grid(a: &SensitivityArgs) -> Result<(Vec<f64>, MagnitudeRule)> {
    let levels = parse_ratios("--sparsities", &a.sparsities)?;
    if let Some(t) = a.target {
        prune::check_ratio("--target", t)?;
    }
    let rule = match a.method.as_str() {
        "exact" => MagnitudeRule::ExactCount,
        "magnitude" => MagnitudeRule::LayerPercentile,
        other => bail!("--method must be exact or magnitude, got `{other}`"),
    };
    Ok((levels, rule))
}

/// How the accuracy of a per-layer sparsity plan is measured (a whole run has the model).
type PlanEval<'a> = &'a dyn Fn(&BTreeMap<String, f64>) -> Result<f64>;

/// Writes the figure, `sensitivity.json` and (with `--target`) `plan.json` of a finished scan
/// and prints the table: the end of a whole run and of [`merge`].
fn write_outputs(
    a: &SensitivityArgs,
    levels: &[f64],
    base: f64,
    curves: &[LayerCurve],
    evaluate_plan: Option<PlanEval>,
) -> Result<()> {
    let series: Vec<(String, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|c| (c.layer.clone(), c.points.iter().map(|(s, acc)| (*s, 100.0 * acc)).collect()))
        .collect();
    let png = a.out_dir.join("sensitivity.png");
    shrink_report::plot::line_chart(
        &png,
        "accuracy with one layer pruned",
        "sparsity",
        "accuracy (%)",
        &series,
        false,
    )?;
    let json = serde_json::json!({ "base_accuracy": base, "curves": curves });
    shrink_io::atomic::write_atomic(
        &a.out_dir.join("sensitivity.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    println!("dense accuracy {:.2}%", 100.0 * base);
    print!("{:<24}", "layer");
    for s in levels {
        print!(" {:>7.2}", s);
    }
    println!();
    for c in curves {
        print!("{:<24}", c.layer);
        for (_, acc) in &c.points {
            print!(" {:>6.2}%", 100.0 * acc);
        }
        println!();
    }
    if let Some(t) = a.target {
        let Some(plan) = allocate(curves, base, t) else {
            bail!("--target {t}: not reachable with the scanned sparsities (max {:?})", levels.last());
        };
        let map: BTreeMap<String, f64> = plan.into_iter().collect();
        let path = a.out_dir.join("plan.json");
        shrink_io::atomic::write_atomic(&path, serde_json::to_string_pretty(&map)?.as_bytes())?;
        let accuracy = match evaluate_plan {
            Some(eval) => format!("accuracy {:.2}%", 100.0 * eval(&map)?),
            None => "accuracy not measured when merging shards".to_string(),
        };
        println!(
            "plan for kept fraction {t}: {} -> {accuracy} (wrote {}; apply with shrink prune --method {} --sparsity-file)",
            serde_json::to_string(&map)?,
            path.display(),
            a.method
        );
    }
    Ok(())
}

/// `shrink merge` of `sensitivity` shards: the whole scan's files from the joined journals.
pub fn merge(joined: &crate::cmd::merge::Joined, out_dir: &Path, force: bool) -> Result<()> {
    let mut a: SensitivityArgs = joined.args()?;
    a.out_dir = out_dir.to_path_buf();
    a.run.force = force;
    let (levels, _) = parse_grid(&a)?;
    joined.check_complete(&[LAYERS, "dense"], &[])?;
    let layers: Vec<(String, usize)> = joined.get(LAYERS)?;
    let keys: Vec<String> = layers.iter().flat_map(|(w, _)| levels.iter().map(move |&s| key(w, s))).collect();
    joined.check_complete(&[], &keys)?;
    let base: f64 = joined.get("dense")?;
    let mut curves = Vec::new();
    for (w, n) in &layers {
        let points =
            levels.iter().map(|&s| Ok((s, joined.get::<f64>(&key(w, s))?))).collect::<Result<_>>()?;
        curves.push(LayerCurve { layer: w.trim_end_matches(".weight").to_string(), weights: *n, points });
    }
    joined.write_journal(spec(&a)?, out_dir, force)?;
    write_outputs(&a, &levels, base, &curves, None)
}
