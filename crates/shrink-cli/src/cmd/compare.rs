//! `shrink compare ORIGINAL COMPRESSED`: seed 002's table — latency, MACs and parameters of two
//! models side by side with their reduction ratios (and accuracy when `--data` is given).
//! Latency is measured in alternating rounds so that machine load hits both models alike.
use crate::common::{check_fit, load_data, normalization, parse_split};
use anyhow::{bail, Result};
use clap::Args;
use shrink_ir::candle_core::{Device, Tensor};
use shrink_ir::stats::model_stats;
use shrink_ir::{Mode, Model};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct CompareArgs {
    /// The original model file.
    pub original: PathBuf,
    /// The compressed (pruned, quantized, ...) model file.
    pub compressed: PathBuf,
    /// Also measure top-1 accuracy of both on this dataset.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Dataset split to measure accuracy on: test or train.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Batch size of the latency measurement (1 = single-example latency).
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// Alternating measurement rounds; the median round is reported.
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
    /// Forward passes per round.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Median forward latency (ms) of each model over alternating rounds on the same input.
fn alternating_latency(models: [&Model; 2], batch: usize, rounds: usize, steps: usize) -> Result<[f64; 2]> {
    let mut shape = vec![batch];
    shape.extend(&models[0].meta.input_shape);
    let x = Tensor::randn(0f32, 1.0, shape.as_slice(), &Device::Cpu)?;
    let mut times = [Vec::new(), Vec::new()];
    for m in models {
        m.forward(&x, Mode::Eval)?.to_vec2::<f32>()?; // warm-up
    }
    for _ in 0..rounds {
        for (i, m) in models.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..steps {
                m.forward(&x, Mode::Eval)?.to_vec2::<f32>()?;
            }
            times[i].push(1000.0 * start.elapsed().as_secs_f64() / steps as f64);
        }
    }
    Ok(times.map(|mut t| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    }))
}

pub fn run(a: &CompareArgs) -> Result<()> {
    run_to(a, &mut std::io::stdout().lock())
}

/// [`run`] printing into `out` (a recipe step keeps the JSON in its directory).
pub fn run_to(a: &CompareArgs, out: &mut dyn std::io::Write) -> Result<()> {
    if a.batch_size == 0 || a.rounds == 0 || a.steps == 0 {
        bail!("--batch-size, --rounds and --steps must be positive");
    }
    let original = shrink_io::load_model(&a.original, None)?;
    let compressed = shrink_io::load_model(&a.compressed, None)?;
    if original.meta.input_shape != compressed.meta.input_shape {
        bail!(
            "{}: input shape {:?} differs from {}'s {:?}",
            a.compressed.display(),
            compressed.meta.input_shape,
            a.original.display(),
            original.meta.input_shape
        );
    }
    let accuracy = match &a.data {
        Some(path) => {
            let ds = load_data(path, parse_split(&a.split)?)?;
            let mut acc = [0.0; 2];
            for (i, (m, p)) in
                [(&original, &a.original), (&compressed, &a.compressed)].into_iter().enumerate()
            {
                check_fit(m, &ds, &p.display().to_string())?;
                let norm = normalization(m, None, None)?;
                acc[i] = shrink_train::evaluate(m, &ds, &norm, 256, None)?.accuracy;
            }
            Some(acc)
        }
        None => None,
    };
    let latency = alternating_latency([&original, &compressed], a.batch_size, a.rounds, a.steps)?;
    let (so, sc) = (model_stats(&original)?, model_stats(&compressed)?);
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { f64::INFINITY };
    if a.json {
        let side = |lat: f64, s: &shrink_ir::stats::ModelStats, acc: Option<f64>| {
            serde_json::json!({"latency_ms": lat, "macs": s.macs, "params": s.params,
                "nonzero_params": s.nonzero_params, "accuracy": acc})
        };
        let json = serde_json::json!({
            "batch_size": a.batch_size,
            "original": side(latency[0], &so, accuracy.map(|x| x[0])),
            "compressed": side(latency[1], &sc, accuracy.map(|x| x[1])),
            "latency_ratio": ratio(latency[0], latency[1]),
            "macs_ratio": ratio(so.macs as f64, sc.macs as f64),
            "params_ratio": ratio(so.params as f64, sc.params as f64),
        });
        writeln!(out, "{json}")?;
        return Ok(());
    }
    writeln!(out, "|  | Original | Compressed | Reduction ratio |\n|---|---|---|---|")?;
    writeln!(
        out,
        "| Latency (ms, batch {}) | {:.2} | {:.2} | {:.2}x |",
        a.batch_size,
        latency[0],
        latency[1],
        ratio(latency[0], latency[1])
    )?;
    let (mo, mc) = (so.macs as f64 / 1e6, sc.macs as f64 / 1e6);
    writeln!(out, "| MACs (M) | {mo:.2} | {mc:.2} | {:.2}x |", ratio(mo, mc))?;
    let (po, pc) = (so.params as f64 / 1e6, sc.params as f64 / 1e6);
    writeln!(out, "| Params (M) | {po:.4} | {pc:.4} | {:.2}x |", ratio(po, pc))?;
    if so.nonzero_params != so.params || sc.nonzero_params != sc.params {
        let (no, nc) = (so.nonzero_params as f64 / 1e6, sc.nonzero_params as f64 / 1e6);
        writeln!(out, "| Nonzero params (M) | {no:.4} | {nc:.4} | {:.2}x |", ratio(no, nc))?;
    }
    if let Some([ao, ac]) = accuracy {
        writeln!(
            out,
            "| Accuracy (%) | {:.2} | {:.2} | {:+.2} pp |",
            100.0 * ao,
            100.0 * ac,
            100.0 * (ac - ao)
        )?;
    }
    Ok(())
}
