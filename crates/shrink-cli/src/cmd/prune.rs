//! `shrink prune`: unstructured masks or structured (physically removed) pruning of a model.
use anyhow::{bail, Context, Result};
use clap::Args;
use shrink_compress::prune::{
    self, structured, unstructured, Importance, KeepRule, MagnitudeRule, StructuredPlan, WeightImportance,
};
use shrink_ir::{stats::model_stats, Model};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[path = "prune_graph.rs"]
mod prune_graph;
#[path = "prune_schedule.rs"]
pub mod prune_schedule;

/// Pruning methods `--method` accepts.
pub const METHODS: &str = "magnitude, global-magnitude, exact, neuron-l2, filter-ln, channel, zero-groups";

#[derive(Args, Clone)]
pub struct PruneArgs {
    /// Model file (.safetensors, .onnx or bit-packed).
    pub model: PathBuf,
    /// magnitude (masks: per-layer percentile of |w|), global-magnitude (masks: one percentile
    /// over all layers), exact (masks: round(n·s) zeros per tensor), neuron-l2 (removes MLP
    /// neurons by L2 norm), filter-ln (removes conv filters/neurons by Ln norm, residual-aware),
    /// channel (removes input channels by importance), zero-groups (removes units driven to zero
    /// by group-lasso training).
    #[arg(long)]
    pub method: String,
    /// Fraction to prune in [0, 1] (weights for unstructured methods, units for structured ones).
    #[arg(long, allow_negative_numbers = true)]
    pub sparsity: Option<f64>,
    /// Per-layer sparsities `layer=P,...`, overriding --sparsity for those layers.
    #[arg(long)]
    pub layer_sparsity: Option<String>,
    /// JSON file with a `{ "layer": P, ... }` sparsity map (e.g. picked by `shrink sensitivity`).
    #[arg(long)]
    pub sparsity_file: Option<PathBuf>,
    /// Only prune these layers (comma-separated names); default: every prunable layer.
    #[arg(long)]
    pub layers: Option<String>,
    /// Norm order of filter-ln (1, 2 or inf).
    #[arg(long, default_value = "2")]
    pub norm: String,
    /// Weight importance of unstructured methods: abs (|w|) or square (w²).
    #[arg(long, default_value = "abs")]
    pub importance: String,
    /// zero-groups: a unit counts as zero when every weight and bias is within this of 0.
    #[arg(long, default_value_t = 0.0)]
    pub tol: f32,
    /// Architecture override for plain state_dicts.
    #[arg(long)]
    pub arch: Option<String>,
    /// Which engine prunes: `auto` (zoo layers when the model fits them, else the graph IR),
    /// `layers`, or `graph` (any ONNX model: channels coupled through every op's axes mapping;
    /// filter-ln only; writes ONNX).
    #[arg(long, default_value = "auto", value_parser = ["auto", "layers", "graph"])]
    pub engine: String,
    /// The architecture as an ONNX file whose weights come from MODEL, a state_dict (`.pt` or
    /// `.safetensors`) matched by name; prunes on the graph engine.
    #[arg(long, value_name = "M.onnx")]
    pub graph: Option<PathBuf>,
    /// Graph engine: save the prune plan (every removed index of every coupled axis) as JSON.
    #[arg(long, value_name = "PLAN.json")]
    pub plan_out: Option<PathBuf>,
    /// Graph engine: apply this saved plan instead of selecting channels.
    #[arg(long, value_name = "PLAN.json")]
    pub plan: Option<PathBuf>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// Output model file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Overwrite the output even when it is also the input model.
    #[arg(long)]
    pub force: bool,
    /// filter-ln / channel: zero the pruned filters (channel: input channels) in place with
    /// masks, the tensors keep their shape (torch `prune.ln_structured(dim=0|1)`; --norm is n).
    #[arg(long)]
    pub keep_shape: bool,
    /// global-magnitude: torch `prune.global_unstructured` semantics: --sparsity prunes
    /// round(s·remaining) more of the weights the input model's masks still keep (repeated calls
    /// compound: 1 − (1 − s)^k).
    #[arg(long)]
    pub cumulative: bool,
    /// channel: `sorted` (by importance, default) or `naive` (keep the first channels, as the VGG lab does).
    #[arg(long, default_value = "sorted", value_parser = ["sorted", "naive"])]
    pub order: String,
    /// Pruning inside one training run (`--schedule`).
    #[command(flatten)]
    pub schedule: prune_schedule::ScheduleArgs,
}

/// Parses `a=0.5,b=0.7`.
fn parse_map(s: &str) -> Result<BTreeMap<String, f64>> {
    let mut m = BTreeMap::new();
    for item in s.split(',').filter(|x| !x.trim().is_empty()) {
        let (k, v) =
            item.split_once('=').with_context(|| format!("--layer-sparsity: `{item}` is not layer=P"))?;
        let v: f64 = v.trim().parse().with_context(|| format!("--layer-sparsity: `{v}` is not a number"))?;
        m.insert(k.trim().to_string(), v);
    }
    Ok(m)
}

fn read_map(path: &Path) -> Result<BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: expected a JSON object of layer → sparsity", path.display()))
}

/// The per-layer sparsity request: `--sparsity` for every selected layer, then overrides.
fn sparsity_map(a: &PruneArgs, layers: &[String]) -> Result<BTreeMap<String, f64>> {
    let mut map = BTreeMap::new();
    let selected: Vec<String> = match &a.layers {
        Some(list) => list.split(',').map(|s| s.trim().trim_end_matches(".weight").to_string()).collect(),
        None => layers.to_vec(),
    };
    if let Some(s) = a.sparsity {
        prune::check_ratio("--sparsity", s)?;
        for l in &selected {
            map.insert(l.clone(), s);
        }
    }
    if let Some(file) = &a.sparsity_file {
        map.extend(read_map(file)?);
    }
    if let Some(s) = &a.layer_sparsity {
        map.extend(parse_map(s)?);
    }
    if map.is_empty() && a.method != "zero-groups" {
        bail!("--sparsity (or --layer-sparsity / --sparsity-file) is required for --method {}", a.method);
    }
    Ok(map)
}

fn parse_norm(s: &str) -> Result<f64> {
    match s {
        "inf" => Ok(f64::INFINITY),
        _ => match s.parse::<f64>() {
            Ok(p) if p >= 1.0 && p.is_finite() => Ok(p),
            _ => bail!("--norm must be a number >= 1 or inf, got `{s}`"),
        },
    }
}

/// Prunes `model` as `a` asks and returns the result plus the structured changes.
pub fn prune_model(model: &Model, a: &PruneArgs) -> Result<(Model, Vec<prune::LayerChange>)> {
    let importance = match a.importance.as_str() {
        "abs" => WeightImportance::Abs,
        "square" => WeightImportance::Square,
        other => bail!("--importance must be abs or square, got `{other}`"),
    };
    let unstructured_rule = match a.method.as_str() {
        "magnitude" => Some(MagnitudeRule::LayerPercentile),
        "global-magnitude" => Some(MagnitudeRule::GlobalPercentile),
        "exact" => Some(MagnitudeRule::ExactCount),
        _ => None,
    };
    if a.cumulative && a.method != "global-magnitude" {
        bail!("--cumulative is torch's global_unstructured: use it with --method global-magnitude");
    }
    if a.keep_shape && !matches!(a.method.as_str(), "filter-ln" | "channel") {
        bail!("--keep-shape masks whole filters/channels: use it with --method filter-ln or channel");
    }
    if a.order == "naive" && a.method != "channel" {
        bail!("--order naive is channel pruning's: use it with --method channel");
    }
    if a.cumulative {
        let weights = unstructured::prunable_weights(model);
        let Some(s) = a.sparsity else { bail!("--cumulative needs --sparsity (the amount)") };
        prune::check_ratio("--sparsity", s)?;
        let mut out = model.clone();
        out.params = model.params.deep_clone()?;
        prune::torch_like::global_unstructured_l1(&mut out, &weights, s)?;
        return Ok((out, vec![]));
    }
    if a.keep_shape {
        let dim = if a.method == "channel" { 1 } else { 0 };
        let p = parse_norm(&a.norm)?;
        let all = unstructured::prunable_weights(model);
        // Filters of every layer but the classifier; input channels of every layer but the first.
        let layers: Vec<String> = match dim {
            0 => all[..all.len().saturating_sub(1)].to_vec(),
            _ => all.iter().skip(1).cloned().collect(),
        };
        let layers: Vec<String> = layers.iter().map(|w| w.trim_end_matches(".weight").to_string()).collect();
        let map = unstructured::resolve_layers(model, &sparsity_map(a, &layers)?)?;
        let mut out = model.clone();
        out.params = model.params.deep_clone()?;
        prune::torch_like::prune_ln_structured(&mut out, &map, p, dim)?;
        return Ok((out, vec![]));
    }
    if let Some(rule) = unstructured_rule {
        let layers: Vec<String> = unstructured::prunable_weights(model)
            .iter()
            .map(|w| w.trim_end_matches(".weight").to_string())
            .collect();
        let map = unstructured::resolve_layers(model, &sparsity_map(a, &layers)?)?;
        let mut out = model.clone();
        out.params = model.params.deep_clone()?;
        prune::prune_magnitude(&mut out, &map, rule, importance)?;
        return Ok((out, vec![]));
    }
    let (rule, imp) = match a.method.as_str() {
        "neuron-l2" => (KeepRule::KthKeepGe, Importance::OutputNorm { p: 2.0 }),
        "filter-ln" => (KeepRule::TopK, Importance::OutputNorm { p: parse_norm(&a.norm)? }),
        "channel" if a.order == "naive" => (KeepRule::TopK, Importance::Naive),
        "channel" => (KeepRule::TopK, Importance::InputNorm),
        "zero-groups" => return Ok(prune::remove_zero_groups(model, a.tol)?),
        other => bail!("--method must be one of {METHODS}, got `{other}`"),
    };
    let layers = structured::prunable_layers(model)?;
    let ratios = sparsity_map(a, &layers)?;
    let plan = StructuredPlan { importance: imp, rule, ratios };
    Ok(prune::prune_structured(model, &plan)?)
}

/// Checks every flag that needs no model (method, importance, norm, sparsities, the sparsity
/// file), so a bad request fails before the model is read.
fn check_flags(a: &PruneArgs) -> Result<()> {
    let known = METHODS.split(", ").any(|m| m == a.method);
    if !known {
        bail!("--method must be one of {METHODS}, got `{}`", a.method);
    }
    if !matches!(a.importance.as_str(), "abs" | "square") {
        bail!("--importance must be abs or square, got `{}`", a.importance);
    }
    if a.method == "filter-ln" {
        parse_norm(&a.norm)?;
    }
    if let Some(s) = a.sparsity {
        prune::check_ratio("--sparsity", s)?;
    }
    if let Some(s) = &a.layer_sparsity {
        parse_map(s)?;
    }
    if let Some(file) = &a.sparsity_file {
        read_map(file)?;
    }
    Ok(())
}

pub fn run(a: &PruneArgs) -> Result<()> {
    if a.schedule.schedule.is_some() {
        if a.engine == "graph" || a.graph.is_some() || a.plan.is_some() || a.plan_out.is_some() {
            bail!("--schedule prunes zoo/layer models (masks during training); not with the graph engine");
        }
        return prune_schedule::run(a);
    }
    if a.plan.is_none() || a.method != "filter-ln" {
        check_flags(a)?;
    }
    let mut inputs = vec![a.model.as_path()];
    inputs.extend(a.graph.as_deref());
    crate::common::check_output("--output", &a.output, &inputs, a.force)?;
    if let Some(p) = &a.plan_out {
        inputs.push(&a.output);
        crate::common::check_output("--plan-out", p, &inputs, a.force)?;
    }
    if a.graph.is_some() && a.engine == "layers" {
        bail!("--graph prunes on the graph engine, not --engine layers");
    }
    let use_graph = a.engine == "graph" || a.plan.is_some() || a.plan_out.is_some() || a.graph.is_some();
    let model = match shrink_io::load_model(&a.model, a.arch.as_deref()) {
        _ if use_graph => return prune_graph::run(a),
        Ok(m) => m,
        Err(e) if a.engine == "auto" && super::eval::is_onnx_file(&a.model) => {
            let _ = e;
            return prune_graph::run(a);
        }
        Err(e) => return Err(e.into()),
    };
    let before = model_stats(&model)?;
    let (pruned, changes) = prune_model(&model, a)?;
    let after = model_stats(&pruned)?;
    shrink_io::save_model(&pruned, &a.output)?;
    let table = unstructured::sparsity_table(&pruned)?;
    if a.json {
        let layers: Vec<_> = table
            .iter()
            .map(|(n, total, zeros)| serde_json::json!({"weight": n, "params": total, "zeros": zeros}))
            .collect();
        let out = serde_json::json!({
            "output": a.output.display().to_string(),
            "method": a.method,
            "params_before": before.params, "params_after": after.params,
            "nonzero_before": before.nonzero_params, "nonzero_after": after.nonzero_params,
            "macs_before": before.macs, "macs_after": after.macs,
            "removed_units": changes, "layers": layers,
        });
        println!("{out}");
        return Ok(());
    }
    for c in &changes {
        println!("{:<24} {:>6} -> {:>6} units", c.layer, c.units_before, c.units_after);
    }
    for (name, total, zeros) in &table {
        println!(
            "Sparsity of {:<28} {:>7.2}%",
            name.trim_end_matches(".weight"),
            100.0 * *zeros as f64 / *total as f64
        );
    }
    println!(
        "params {} -> {} ({:.2}x), nonzero {} -> {}, MACs {} -> {} ({:.2}x); wrote {}",
        before.params,
        after.params,
        before.params as f64 / after.params.max(1) as f64,
        before.nonzero_params,
        after.nonzero_params,
        before.macs,
        after.macs,
        before.macs as f64 / after.macs.max(1) as f64,
        a.output.display()
    );
    Ok(())
}
