//! `shrink export`: write a model as ONNX (for onnxruntime & co.), as a PyTorch `.pt` state_dict
//! (for `torch.load(..., weights_only=True)` + `load_state_dict`) or as a shrink safetensors file.
//! With `--int8` (ONNX only) the model, as an open-IR graph, is calibrated on `--calib` and
//! written as a QDQ ONNX model (`shrink_compress::quant::graph`).
use crate::common::QuantFlags;
use anyhow::{bail, Context, Result};
use clap::Args;
use shrink_graph::{Graph, Tensor};
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// Model file (.safetensors, .pt, .onnx or a packed shrink file).
    pub model: PathBuf,
    /// onnx (opset 17; opset 21 QDQ with --int8), pt (a PyTorch state_dict) — both with
    /// masked/quantized weights exported as the forward pass sees them — or safetensors (a
    /// shrink file keeping masks and quantizers).
    #[arg(long)]
    pub format: String,
    /// Architecture override for plain state_dicts.
    #[arg(long)]
    pub arch: Option<String>,
    /// Output file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Overwrite the output even when it is also the input model.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub quant: QuantFlags,
}

pub fn run(a: &ExportArgs) -> Result<()> {
    if !matches!(a.format.as_str(), "onnx" | "pt" | "safetensors") {
        bail!("--format must be onnx, pt or safetensors, got `{}`", a.format);
    }
    a.quant.check()?;
    if a.quant.int8 && a.format != "onnx" {
        bail!("--int8 writes a QDQ ONNX model: it needs --format onnx, got `{}`", a.format);
    }
    crate::common::check_output("--output", &a.output, &[&a.model], a.force)?;
    if a.quant.int8 {
        return export_qdq(a);
    }
    let model = shrink_io::load_model(&a.model, a.arch.as_deref())?;
    match a.format.as_str() {
        "onnx" => shrink_io::onnx::save_onnx(&model, &a.output)?,
        "pt" => shrink_io::pt::save_pt(&model, &a.output)?,
        "safetensors" => shrink_io::save_model(&model, &a.output)?,
        other => bail!("--format must be onnx, pt or safetensors, got `{other}`"),
    }
    eprintln!("wrote {}", a.output.display());
    Ok(())
}

/// The model as an open-IR graph: ONNX files import directly, shrink models convert.
fn load_graph(a: &ExportArgs) -> Result<Graph> {
    if shrink_io::format::detect(&a.model)? == shrink_io::format::ModelFormat::Onnx {
        return Ok(shrink_io::onnx::graph_import::load_graph(&a.model)?);
    }
    let model = shrink_io::load_model(&a.model, a.arch.as_deref())?;
    model.to_graph().with_context(|| format!("model `{}`: conversion to a graph", a.model.display()))
}

/// Calibrate, quantize and write the QDQ ONNX model.
fn export_qdq(a: &ExportArgs) -> Result<()> {
    let graph = load_graph(a)?;
    let what = a.model.display().to_string();
    let batches = a.quant.calibration_batches(&graph, &what)?;
    let cfg = a.quant.config();
    let ranges = shrink_compress::quant::graph::calibrate(&graph, &batches, &cfg)?;
    let q = shrink_compress::quant::graph::quantize_graph(&graph, &ranges, &cfg)?;
    shrink_io::onnx::graph_export::save_graph_onnx(&q, &a.output)?;
    let quantized = q.nodes.iter().filter(|n| matches!(n.op, shrink_graph::Op::QuantizeLinear(_))).count();
    eprintln!(
        "wrote {} (QDQ: {} activations quantized, calibrated on {} images)",
        a.output.display(),
        quantized,
        batches.iter().map(|b: &Vec<Tensor>| b[0].shape[0]).sum::<usize>()
    );
    Ok(())
}
