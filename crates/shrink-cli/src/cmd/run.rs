//! `shrink run`: a model compiled into a runtime plan (shrink_runtime::plan) and evaluated on a
//! dataset: accuracy and examples/s, optionally the logits.
use crate::common::{load_data, parse_floats, parse_split};
use anyhow::{anyhow, bail, Result};
use clap::Args;
use serde_json::json;
use shrink_graph::{Graph, Tensor};
use shrink_io::data::default_normalize;
use shrink_runtime::plan::{Plan, PlanOptions, Session};
use shrink_train::graph_eval::{evaluate_with, plan_input};
use shrink_train::TrainError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct RunArgs {
    /// Model to run: ONNX (imported into the graph IR).
    pub model: PathBuf,
    /// Dataset (MNIST / CIFAR directory or archive, an image folder, ...).
    #[arg(long)]
    pub data: PathBuf,
    /// Split to evaluate: train or test.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Examples per run (when the model's batch is symbolic).
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Per-channel mean of the input normalization (comma separated; default: the dataset's).
    #[arg(long)]
    pub mean: Option<String>,
    /// Per-channel std of the input normalization (comma separated; default: the dataset's).
    #[arg(long)]
    pub std: Option<String>,
    /// Time the candidate kernels of every layer for the batch size and keep the fastest.
    #[arg(long)]
    pub tune: bool,
    /// Write the logits (examples × outputs, f32) as .npy.
    #[arg(long, value_name = "OUT.npy")]
    pub logits: Option<PathBuf>,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A model loaded for the runtime: its graph and the input normalization it stores (empty
/// when the file has none, as ONNX files).
pub struct RuntimeModel {
    pub graph: Graph,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// Load a model for the runtime, the format told by content: a `.shrink` deploy file (every
/// constant decoded from its encoding), an ONNX file (graph import), or a shrink/PyTorch model
/// file of a zoo architecture (converted to the open IR).
pub fn load_runtime_graph(path: &Path) -> Result<RuntimeModel> {
    match shrink_io::format::detect(path)? {
        shrink_io::format::ModelFormat::Deploy => {
            let d = shrink_io::deploy::load_deploy(path)?;
            let graph = d.to_graph_f32().map_err(|e| anyhow!("{}: {e}", path.display()))?;
            Ok(RuntimeModel { graph, mean: d.meta.mean, std: d.meta.std })
        }
        shrink_io::format::ModelFormat::Onnx => Ok(RuntimeModel {
            graph: shrink_io::onnx::graph_import::load_graph(path)?,
            mean: vec![],
            std: vec![],
        }),
        _ => {
            let m = shrink_io::load_model(path, None)?;
            let graph = m.to_graph().map_err(|e| anyhow!("{}: {e}", path.display()))?;
            Ok(RuntimeModel { graph, mean: m.meta.mean, std: m.meta.std })
        }
    }
}

/// Compile `graph` (errors name the model file).
pub fn compile(graph: &Graph, path: &Path, tune: bool) -> Result<Plan> {
    Plan::compile(graph, &PlanOptions { tune }).map_err(|e| anyhow!("{}: {e}", path.display()))
}

pub fn run(a: &RunArgs) -> Result<()> {
    let what = a.model.display().to_string();
    let RuntimeModel { graph, mean, std } = load_runtime_graph(&a.model)?;
    let ds = load_data(&a.data, parse_split(&a.split)?)?;
    let input = plan_input(&graph, ds.image_shape(), a.batch_size, &what)?;
    let mut norm = default_normalize(ds.channels);
    if !mean.is_empty() && mean.len() == std.len() {
        (norm.mean, norm.std) = (mean, std);
    }
    for (flag, given, field) in [("--mean", &a.mean, &mut norm.mean), ("--std", &a.std, &mut norm.std)] {
        if let Some(s) = given {
            *field = parse_floats(flag, s)?;
        }
        if field.len() != 1 && field.len() != ds.channels {
            bail!(
                "{flag} needs 1 or {} values for {}-channel images (got {})",
                ds.channels,
                ds.channels,
                field.len()
            );
        }
    }
    if let Some(s) = norm.std.iter().find(|s| **s <= 0.0 || !s.is_finite()) {
        bail!("--std values must be positive, got {s}");
    }
    let plan = compile(&graph, &a.model, a.tune)?;
    // One session per batch shape (the full batch and the last, shorter one), made up front so
    // that their setup (arena, tuning) is not timed.
    let example = &input.example_shape;
    let shape = |rows: usize| -> Vec<usize> { [rows].into_iter().chain(example.iter().copied()).collect() };
    let mut sessions: HashMap<Vec<usize>, Session> = HashMap::new();
    let tail = if input.fixed_batch { 0 } else { ds.len() % input.batch };
    for rows in [input.batch, tail] {
        if rows > 0 && !sessions.contains_key(&shape(rows)) {
            let s = plan.session_for_shapes(&[shape(rows)]).map_err(|e| anyhow!("{what}: {e}"))?;
            sessions.insert(shape(rows), s);
        }
    }
    let pb = crate::common::progress(ds.len() as u64, !a.json, "run");
    let r = evaluate_with(&ds, &norm, &input, Some(&pb), |x: Tensor| {
        let s = sessions
            .get_mut(&x.shape)
            .ok_or_else(|| TrainError::Config(format!("no session for {:?}", x.shape)))?;
        s.run(&[x]).map_err(|e| TrainError::Config(format!("{what}: {e}")))
    })?;
    pb.finish_and_clear();
    if let Some(path) = &a.logits {
        shrink_io::npy::write_npy(path, &[r.samples, r.outputs], &r.logits)?;
    }
    let st = plan.stats();
    if a.json {
        let out = json!({
            "model": what,
            "engine": "plan",
            "steps": plan.steps().len(),
            "batchnorms_folded": st.batchnorms_folded,
            "activations_fused": st.activations_fused,
            "data": ds.source,
            "split": a.split,
            "accuracy": r.accuracy,
            "loss": r.loss,
            "samples": r.samples,
            "batch_size": r.batch_size,
            "latency_ms_per_batch": r.latency_ms_per_batch,
            "examples_per_s": r.throughput,
        });
        println!("{out}");
    } else {
        println!(
            "model      {what} ({} steps; {} BatchNorms folded, {} activations fused)",
            plan.steps().len(),
            st.batchnorms_folded,
            st.activations_fused
        );
        println!("data       {} [{}], {} samples", ds.source, a.split, r.samples);
        println!("accuracy   {:.2}%", 100.0 * r.accuracy);
        println!("loss       {:.4}", r.loss);
        println!(
            "speed      {:.0} examples/s ({:.2} ms per batch of {})",
            r.throughput, r.latency_ms_per_batch, r.batch_size
        );
    }
    Ok(())
}
