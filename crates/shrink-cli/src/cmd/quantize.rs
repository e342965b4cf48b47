//! `shrink quantize`: post-training weight quantization with the labs' quantizers; the output
//! evaluates with plain `shrink eval` (fake quant), or is stored bit-packed with `--packed`.
use crate::common::{check_fit, load_data, normalization};
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use clap::{Args, ValueEnum};
use serde_json::json;
use shrink_compress::quant::{self, ActConfig, ActRange, Include, QuantConfig, RangeMethod, Scheme};
use shrink_io::data::{make_batch, validation_indices, Split};
use std::path::{Path, PathBuf};

/// The quantizers `--scheme` accepts.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SchemeArg {
    /// Uniform grid on [-q, q): delta = 2q/2^bits, w -> clip(delta*round(w/delta), -q, q - delta).
    Clip,
    /// Symmetric: round(w/alpha*s)/s*alpha, alpha = max|w| (or --range), s = 2^(bits-1) - 1.
    Symmetric,
    /// Asymmetric (zero point): alpha = max - min, beta = min, 2^bits - 1 steps.
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
    /// Quantizer: clip, symmetric or asymmetric.
    #[arg(long, value_enum)]
    pub scheme: SchemeArg,
    /// Bit width l (1..=16; symmetric needs >= 2).
    #[arg(long, allow_negative_numbers = true)]
    pub bits: i64,
    /// Range: a number q > 0 (clip half-range, symmetric alpha, asymmetric [-q, q]), `max`
    /// (max|w|, or [min, max] for asymmetric), `pNN` (percentile, e.g. p99.9) or `mse`.
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
    /// Also fake-quantize activations (the input of every conv/linear layer, per tensor,
    /// unsigned after a ReLU) at this many bits (1..=16), calibrated on `--data`'s train split.
    #[arg(long, allow_negative_numbers = true)]
    pub activations: Option<i64>,
    /// Activation range calibration: `minmax`, `pNN` (percentile, e.g. p99.99) or `mse`.
    #[arg(long, default_value = "minmax")]
    pub act_range: String,
    /// Dataset for activation calibration (its train split).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Calibration batches (drawn with `--seed` from the train split).
    #[arg(long, default_value_t = 8)]
    pub calib_batches: usize,
    /// Examples per calibration batch.
    #[arg(long, default_value_t = 128)]
    pub calib_batch_size: usize,
    /// Random seed that draws the calibration batches.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Per-channel mean for calibration inputs (default: stored in the model).
    #[arg(long)]
    pub mean: Option<String>,
    /// Per-channel std for calibration inputs (default: stored in the model).
    #[arg(long)]
    pub std: Option<String>,
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

/// The activation recipe from flags, if `--activations` is given (checked before loading).
pub fn act_config(a: &QuantizeArgs) -> Result<Option<ActConfig>> {
    let Some(bits) = a.activations else { return Ok(None) };
    let Ok(bits) = u32::try_from(bits) else { bail!("--activations must be in 1..=16, got {bits}") };
    let range = ActRange::parse(&a.act_range).context("--act-range")?;
    let cfg = ActConfig::new(bits, range).context("--activations")?;
    if a.data.is_none() {
        bail!("--activations needs --data (calibration batches come from its train split)");
    }
    if a.calib_batches == 0 || a.calib_batch_size == 0 {
        bail!("--calib-batches and --calib-batch-size must be positive");
    }
    Ok(Some(cfg))
}

/// Fixed-seed calibration batches from the train split of `data`, normalized like evaluation.
fn calibration_batches(a: &QuantizeArgs, model: &shrink_ir::Model, data: &Path) -> Result<Vec<Tensor>> {
    let ds = load_data(data, Split::Train)?;
    check_fit(model, &ds, &a.model.display().to_string())?;
    let norm = normalization(model, a.mean.as_deref(), a.std.as_deref())?;
    let want = a.calib_batches.saturating_mul(a.calib_batch_size);
    let (_, picked) = validation_indices(ds.len(), want, a.seed);
    let [c, h, w] = ds.image_shape();
    let mut batches = Vec::new();
    for idx in picked.chunks(a.calib_batch_size) {
        let mut buf = Vec::new();
        make_batch(&ds, idx, &norm, None, &mut buf);
        batches.push(Tensor::from_vec(buf, (idx.len(), c, h, w), &model.device())?);
    }
    Ok(batches)
}

pub fn run(a: &QuantizeArgs) -> Result<()> {
    let cfg = config(a.scheme.into(), a.bits, &a.range, a.per_channel, &a.include)?;
    let act = act_config(a)?;
    crate::common::check_output("--output", &a.output, &[&a.model], a.force)?;
    if let Some(data) = a.data.as_ref().filter(|d| !d.exists()) {
        bail!("--data `{}` does not exist", data.display());
    }
    let mut model = shrink_io::load_model(&a.model, a.arch.as_deref())?;
    // In place, tensor by tensor: the model is held once (no pristine copy, no codes).
    let q = quant::quantize_model_in_place(&mut model, &cfg)?;
    // Activations are calibrated on the weight-quantized model, as it will run.
    let act_slots = match (act, &a.data) {
        (Some(act), Some(data)) => {
            let batches = calibration_batches(a, &model, data)?;
            quant::calibrate(&mut model, &batches, act)?
        }
        _ => Vec::new(),
    };
    if a.packed {
        shrink_io::save_packed(&model, &a.output)?;
    } else {
        shrink_io::save_model(&model, &a.output)?;
    }
    let size = std::fs::metadata(&a.output).map(|m| m.len()).unwrap_or(0);
    let weights: usize = q.iter().map(|t| t.len()).sum();
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
            "activation_bits": act.map(|c| c.bits),
            "activation_range": act.map(|_| a.act_range.as_str()),
            "activation_points": act_slots.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
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
        if let Some(act) = act {
            println!(
                "activations {} tensors at {} bits, range {} ({} calibration batches)",
                act_slots.len(),
                act.bits,
                a.act_range,
                a.calib_batches
            );
        }
        println!(
            "wrote      {} ({:.2} MB{})",
            a.output.display(),
            size as f64 / 1e6,
            if a.packed { ", bit-packed" } else { ", fp32 + fake quant" }
        );
    }
    Ok(())
}
