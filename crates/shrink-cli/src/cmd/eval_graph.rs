//! `shrink eval --engine graph`: an ONNX model imported into the open graph IR and run by
//! shrink-runtime (any architecture the IR covers, not only the zoo's layers).
use super::EvalArgs;
use crate::common::{load_data, parse_floats, parse_split};
use anyhow::{bail, Result};
use serde_json::json;
use shrink_io::data::{default_normalize, Normalize};
use shrink_train::graph_eval::{evaluate_graph, plan_input};

/// Evaluate `a.model` as a graph.
pub fn run(a: &EvalArgs) -> Result<()> {
    let graph = crate::common::load_engine_graph(&a.model, a.graph.as_deref())?;
    let ds = load_data(&a.data, parse_split(&a.split)?)?;
    let what = a.model.display().to_string();
    let plan = plan_input(&graph, ds.image_shape(), a.batch_size, &what)?;
    let mut norm = default_normalize(ds.channels);
    if let Some(m) = &a.mean {
        norm.mean = parse_floats("--mean", m)?;
    }
    if let Some(s) = &a.std {
        norm.std = parse_floats("--std", s)?;
    }
    check_norm(&norm, ds.channels)?;
    let pb = crate::common::progress(ds.len() as u64, !a.json, "eval");
    let r = evaluate_graph(&graph, &ds, &norm, &plan, Some(&pb))?;
    pb.finish_and_clear();
    if let Some(path) = &a.predictions {
        shrink_io::atomic::write_atomic(path, serde_json::to_string(&r.predictions)?.as_bytes())?;
    }
    if let Some(path) = &a.logits {
        shrink_io::npy::write_npy(path, &[r.samples, r.outputs], &r.logits)?;
    }
    let params = graph.params();
    let macs = graph.cost().macs;
    let file_bytes = std::fs::metadata(&a.model).map(|m| m.len()).unwrap_or(0);
    if a.json {
        let out = json!({
            "model": what,
            "engine": "graph",
            "nodes": graph.nodes.len(),
            "data": ds.source,
            "split": a.split,
            "accuracy": r.accuracy,
            "loss": r.loss,
            "samples": r.samples,
            "params": params,
            "file_bytes": file_bytes,
            "macs": macs,
            "latency_ms_per_batch": r.latency_ms_per_batch,
            "throughput_per_s": r.throughput,
            "batch_size": r.batch_size,
        });
        println!("{out}");
    } else {
        println!("model      {what} (graph of {} nodes, shrink-runtime)", graph.nodes.len());
        println!("data       {} [{}], {} samples", ds.source, a.split, r.samples);
        println!("accuracy   {:.2}%", 100.0 * r.accuracy);
        println!("loss       {:.4}", r.loss);
        println!("params     {params}");
        println!("size       file {:.2} MB", file_bytes as f64 / 1e6);
        println!("MACs       {:.2} M per example", macs as f64 / 1e6);
        println!(
            "latency    {:.2} ms per batch of {} ({:.0} examples/s)",
            r.latency_ms_per_batch, r.batch_size, r.throughput
        );
    }
    Ok(())
}

fn check_norm(norm: &Normalize, channels: usize) -> Result<()> {
    for (flag, v) in [("--mean", &norm.mean), ("--std", &norm.std)] {
        if v.len() != 1 && v.len() != channels {
            bail!("{flag} needs 1 or {channels} values for {channels}-channel images (got {})", v.len());
        }
    }
    if let Some(s) = norm.std.iter().find(|s| **s <= 0.0 || !s.is_finite()) {
        bail!("--std values must be positive, got {s}");
    }
    Ok(())
}
