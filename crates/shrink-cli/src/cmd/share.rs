//! `shrink share`: Deep Compression's weight sharing — each conv/linear weight's unpruned values
//! clustered by 1-D k-means into `2^bits` centroids (linear initialization by default) and
//! replaced by them. Fine-tune the centroids afterwards with `shrink train --init OUT
//! --share-weights`.
use crate::common::check_output;
use anyhow::{bail, Context, Result};
use clap::Args;
use shrink_compress::share::{share_weights, Init, ShareConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args)]
pub struct ShareArgs {
    /// Model file (.safetensors, .onnx, .pt), usually pruned and retrained.
    pub model: PathBuf,
    /// Index width in bits (1..=8): `2^bits` shared values per layer.
    #[arg(long, allow_negative_numbers = true)]
    pub bits: i64,
    /// Per-layer widths `layer=BITS,...` overriding --bits (the paper: 8 for conv, 5 for fc).
    #[arg(long)]
    pub layer_bits: Option<String>,
    /// Centroid initialization: linear (evenly spaced over [min, max], the paper's best) or
    /// density (at quantiles).
    #[arg(long, default_value = "linear", value_parser = ["linear", "density"])]
    pub init: String,
    /// Architecture override for plain state_dicts.
    #[arg(long)]
    pub arch: Option<String>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// Output model file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Overwrite the output even when it is also the input model.
    #[arg(long)]
    pub force: bool,
}

fn parse_bits(s: &str) -> Result<BTreeMap<String, u32>> {
    let mut m = BTreeMap::new();
    for item in s.split(',').filter(|x| !x.trim().is_empty()) {
        let (k, v) =
            item.split_once('=').with_context(|| format!("--layer-bits: `{item}` is not layer=BITS"))?;
        let v: u32 = v.trim().parse().with_context(|| format!("--layer-bits: `{v}` is not a bit width"))?;
        m.insert(k.trim().to_string(), v);
    }
    Ok(m)
}

pub fn run(a: &ShareArgs) -> Result<()> {
    if !(1..=8).contains(&a.bits) {
        bail!("--bits must be in 1..=8, got {}", a.bits);
    }
    let cfg = ShareConfig {
        bits: a.bits as u32,
        layer_bits: a.layer_bits.as_deref().map(parse_bits).transpose()?.unwrap_or_default(),
        init: if a.init == "density" { Init::Density } else { Init::Linear },
    };
    check_output("--output", &a.output, &[&a.model], a.force)?;
    let mut model = shrink_io::load_model(&a.model, a.arch.as_deref())?;
    let layers = share_weights(&mut model, &cfg)?;
    shrink_io::save_model(&model, &a.output).with_context(|| format!("writing {}", a.output.display()))?;
    if a.json {
        let rows: Vec<_> = layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name, "bits": l.bits, "weights": l.total, "kept": l.kept,
                    "centroids": l.centroids.len(), "iterations": l.iterations,
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "output": a.output.display().to_string(), "layers": rows }));
    } else {
        eprintln!("{:<24} {:>5} {:>10} {:>10} {:>10}", "weight", "bits", "weights", "kept", "centroids");
        for l in &layers {
            eprintln!(
                "{:<24} {:>5} {:>10} {:>10} {:>10}",
                l.name,
                l.bits,
                l.total,
                l.kept,
                l.centroids.len()
            );
        }
        eprintln!("wrote {}", a.output.display());
    }
    Ok(())
}
