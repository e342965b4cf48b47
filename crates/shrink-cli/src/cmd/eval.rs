//! `shrink eval`: accuracy, loss, size, MACs and measured latency of a model on a dataset.
use crate::common::{check_fit, load_data, normalization, parse_split};
use anyhow::Result;
use clap::Args;
use serde_json::json;
use shrink_ir::stats::model_stats;
use std::path::{Path, PathBuf};

#[path = "eval_graph.rs"]
mod eval_graph;

/// Whether the file's content is ONNX (the layer importer may refuse it where the graph IR
/// takes it).
pub fn is_onnx_file(path: &Path) -> bool {
    std::fs::read(path).map(|b| shrink_io::onnx::is_onnx(&b)).unwrap_or(false)
}

#[derive(Args)]
pub struct EvalArgs {
    /// Model file (.safetensors, .onnx or bit-packed).
    pub model: PathBuf,
    /// Dataset path (MNIST IDX dir, CIFAR binary dir, image folder or .tar/.tar.gz).
    #[arg(long)]
    pub data: PathBuf,
    /// Which split to evaluate.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Per-channel mean, e.g. 0.485,0.456,0.406 (default: stored in the model).
    #[arg(long)]
    pub mean: Option<String>,
    /// Per-channel std (default: stored in the model).
    #[arg(long)]
    pub std: Option<String>,
    /// Architecture override for plain state_dicts.
    #[arg(long)]
    pub arch: Option<String>,
    /// Examples per forward pass.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Write the predicted class of every example (a JSON array, dataset order) to this file.
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Write every example's outputs (float32 `[N, outputs]`, dataset order) as a NumPy `.npy`
    /// file, to compare with PyTorch or onnxruntime.
    #[arg(long, value_name = "OUT.npy")]
    pub logits: Option<PathBuf>,
    /// The architecture as an ONNX file whose weights come from MODEL, a state_dict (`.pt` or
    /// `.safetensors`) matched by name; runs on the graph engine.
    #[arg(long, value_name = "M.onnx")]
    pub graph: Option<PathBuf>,
    /// Which engine runs the model: `auto` (zoo layers when the model fits them, else the graph
    /// runtime), `layers`, or `graph` (the open graph IR on shrink-runtime; ONNX files only).
    #[arg(long, default_value = "auto", value_parser = ["auto", "layers", "graph"])]
    pub engine: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &EvalArgs) -> Result<()> {
    if a.batch_size == 0 {
        anyhow::bail!("--batch-size must be positive");
    }
    if let Some(path) = &a.logits {
        crate::common::check_output("--logits", path, &[&a.model], false)?;
    }
    if a.graph.is_some() {
        if a.engine == "layers" {
            anyhow::bail!("--graph runs on the graph engine, not --engine layers");
        }
        return eval_graph::run(a);
    }
    let model = match a.engine.as_str() {
        "graph" => return eval_graph::run(a),
        "layers" => shrink_io::load_model(&a.model, a.arch.as_deref())?,
        _ => match shrink_io::load_model(&a.model, a.arch.as_deref()) {
            Ok(m) => m,
            Err(e) if is_onnx_file(&a.model) => {
                let _ = e;
                return eval_graph::run(a);
            }
            Err(e) => return Err(e.into()),
        },
    };
    let norm = normalization(&model, a.mean.as_deref(), a.std.as_deref())?;
    let ds = load_data(&a.data, parse_split(&a.split)?)?;
    check_fit(&model, &ds, &a.model.display().to_string())?;
    let pb = crate::common::progress(ds.len() as u64, !a.json, "eval");
    let r = shrink_train::evaluate(&model, &ds, &norm, a.batch_size, Some(&pb))?;
    pb.finish_and_clear();
    if let Some(path) = &a.predictions {
        shrink_io::atomic::write_atomic(path, serde_json::to_string(&r.predictions)?.as_bytes())?;
    }
    if let Some(path) = &a.logits {
        shrink_io::npy::write_npy(path, &[r.samples, r.outputs], &r.logits)?;
    }
    let s = model_stats(&model)?;
    // The file as stored (bit-packed, pruned, ...) beside what the weights take as dense fp32.
    let file_bytes = std::fs::metadata(&a.model).map(|m| m.len()).unwrap_or(0);
    if a.json {
        let out = json!({
            "model": a.model.display().to_string(),
            "arch": model.meta.arch,
            "data": ds.source,
            "split": a.split,
            "accuracy": r.accuracy,
            "loss": r.loss,
            "samples": r.samples,
            "params": s.params,
            "nonzero_params": s.nonzero_params,
            "size_bytes": s.size_bytes,
            "file_bytes": file_bytes,
            "macs": s.macs,
            "latency_ms_per_batch": r.latency_ms_per_batch,
            "throughput_per_s": r.throughput,
            "batch_size": r.batch_size,
        });
        println!("{out}");
    } else {
        println!("model      {} ({})", a.model.display(), model.meta.arch);
        println!("data       {} [{}], {} samples", ds.source, a.split, r.samples);
        println!("accuracy   {:.2}%", 100.0 * r.accuracy);
        println!("loss       {:.4}", r.loss);
        println!("params     {} ({} nonzero)", s.params, s.nonzero_params);
        println!(
            "size       file {:.2} MB (dense fp32 {:.2} MB)",
            file_bytes as f64 / 1e6,
            s.size_bytes as f64 / 1e6
        );
        println!("MACs       {:.2} M per example", s.macs as f64 / 1e6);
        println!(
            "latency    {:.2} ms per batch of {} ({:.0} examples/s)",
            r.latency_ms_per_batch, r.batch_size, r.throughput
        );
    }
    Ok(())
}
