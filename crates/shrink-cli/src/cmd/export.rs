//! `shrink export`: write a model as ONNX (for onnxruntime & co.), as a PyTorch `.pt` state_dict
//! (for `torch.load(..., weights_only=True)` + `load_state_dict`) or as a shrink safetensors file.
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// Model file (.safetensors, .pt, .onnx or a packed shrink file).
    pub model: PathBuf,
    /// onnx (opset 17), pt (a PyTorch state_dict) — both with masked/quantized weights exported
    /// as the forward pass sees them — or safetensors (a shrink file keeping masks and
    /// quantizers).
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
}

pub fn run(a: &ExportArgs) -> Result<()> {
    if !matches!(a.format.as_str(), "onnx" | "pt" | "safetensors") {
        bail!("--format must be onnx, pt or safetensors, got `{}`", a.format);
    }
    crate::common::check_output("--output", &a.output, &[&a.model], a.force)?;
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
