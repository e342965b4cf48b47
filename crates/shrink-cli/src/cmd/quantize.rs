//! `shrink quantize`: post-training weight quantization with the labs' quantizers; the output
//! evaluates with plain `shrink eval` (fake quant), or is stored bit-packed with `--packed`.
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;
use shrink_compress::quant::{self, Include, QuantConfig, RangeMethod, Scheme};
use std::path::PathBuf;

/// The quantizers `--scheme` accepts.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SchemeArg {
    /// MNIST lab: delta = 2q/2^l, clip(delta*round(w/delta), -q, q - delta).
    Clip,
    /// ResNet lab (e): round(w/alpha*s)/s*alpha, alpha = max|w|, s = 2^(b-1) - 1.
    Symmetric,
    /// ResNet lab (a): alpha = max - min, beta = min, 2^b - 1 levels.
    Asymmetric,
}

impl From<SchemeArg> for Scheme {
    fn from(s: SchemeArg) -> Scheme {
        match s {
            SchemeArg::Clip => Scheme::Clip,
            SchemeArg::Symmetric => Scheme::Symmetric,
            SchemeArg::Asymmetric => Scheme::Asymmetric,
        }
    }
}

#[derive(Args)]
pub struct QuantizeArgs {
    /// Model file (.safetensors, .onnx or bit-packed).
    pub model: PathBuf,
    #[arg(long, value_enum)]
    pub scheme: SchemeArg,
    /// Bit width l (1..=16; symmetric needs >= 2).
    #[arg(long, allow_negative_numbers = true)]
    pub bits: i64,
    /// Range: a number q > 0 (clip half-range, symmetric alpha, asymmetric [-q, q]), `max`
    /// (the labs' max|w| or [min, max]), `pNN` (percentile, e.g. p99.9) or `mse`.
    #[arg(long, default_value = "max", allow_hyphen_values = true)]
    pub range: String,
    /// One range per output channel instead of one per tensor.
    #[arg(long)]
    pub per_channel: bool,
    /// Also quantize these tensor groups (comma-separated): bias, batchnorm.
    #[arg(long, default_value = "")]
    pub include: String,
    /// Store integer codes bit-packed at `--bits` (about bits/32 of the fp32 file).
    #[arg(long)]
    pub packed: bool,
    /// Architecture override for plain state_dicts.
    #[arg(long)]
    pub arch: Option<String>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// Output model file.
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Builds the quantization recipe from flags (all checks happen before anything is loaded).
pub fn config(
    scheme: Scheme,
    bits: i64,
    range: &str,
    per_channel: bool,
    include: &str,
) -> Result<QuantConfig> {
    let Ok(bits) = u32::try_from(bits) else { bail!("--bits must be in 1..=16, got {bits}") };
    quant::check_bits(scheme, bits).context("--bits")?;
    let range = RangeMethod::parse(range).context("--range")?;
    let include = Include::parse(include).context("--include")?;
    Ok(QuantConfig { scheme, bits, range, per_channel, include })
}

pub fn run(a: &QuantizeArgs) -> Result<()> {
    let cfg = config(a.scheme.into(), a.bits, &a.range, a.per_channel, &a.include)?;
    if let Some(dir) = a.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            bail!("output directory `{}` does not exist", dir.display());
        }
    }
    let mut model = shrink_io::load_model(&a.model, a.arch.as_deref())?;
    let q = quant::quantize_model(&mut model, &cfg)?;
    if a.packed {
        shrink_io::save_packed(&model, &a.output)?;
    } else {
        shrink_io::save_model(&model, &a.output)?;
    }
    let size = std::fs::metadata(&a.output).map(|m| m.len()).unwrap_or(0);
    let weights: usize = q.iter().map(|t| t.values.len()).sum();
    let names: Vec<&str> = q.iter().map(|t| t.name.as_str()).collect();
    if a.json {
        let out = json!({
            "model": a.model.display().to_string(),
            "output": a.output.display().to_string(),
            "scheme": cfg.scheme.name(),
            "bits": cfg.bits,
            "range": a.range,
            "per_channel": cfg.per_channel,
            "packed": a.packed,
            "tensors": names,
            "quantized_params": weights,
            "size_bytes": size,
        });
        println!("{out}");
    } else {
        println!(
            "quantized  {} tensors ({} weights) with {} at {} bits, range {}{}",
            q.len(),
            weights,
            cfg.scheme,
            cfg.bits,
            a.range,
            if cfg.per_channel { " per channel" } else { "" }
        );
        println!(
            "wrote      {} ({:.2} MB{})",
            a.output.display(),
            size as f64 / 1e6,
            if a.packed { ", bit-packed" } else { ", fp32 + fake quant" }
        );
    }
    Ok(())
}
