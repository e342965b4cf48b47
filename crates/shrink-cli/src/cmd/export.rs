//! `shrink export`: write a model as ONNX (for onnxruntime & co.), as a PyTorch `.pt` state_dict
//! (for `torch.load(..., weights_only=True)` + `load_state_dict`) or as a shrink safetensors file.
//! With `--int8` (ONNX only) the model, as an open-IR graph, is calibrated on `--calib` and
//! written as a QDQ ONNX model (`shrink_compress::quant::graph`). `--format shrink` writes the
//! deploy file `shrink run` executes: every weight in the smallest lossless encoding
//! `--encodings` allows (pruned zeros as sparse gaps, shared weights as codebook indices,
//! Huffman-coded streams), or the QDQ graph's int8 codes with `--int8`. `--int4` (no
//! calibration) turns every Gemm / MatMul weight into 4-bit symmetric per-output-channel codes
//! and a `DequantizeLinear` (activations stay f32); the deploy file stores the codes at 4 bits
//! and `shrink run` executes them with int4 kernels.
use crate::common::QuantFlags;
use anyhow::{bail, Context, Result};
use clap::Args;
use shrink_graph::{Graph, Tensor};
use shrink_io::deploy::Encodings;
use shrink_runtime::deploy::DeployMeta;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// Model file (.safetensors, .pt, .onnx or a packed shrink file).
    pub model: PathBuf,
    /// onnx (opset 17; opset 21 QDQ with --int8), pt (a PyTorch state_dict) — both with
    /// masked/quantized weights exported as the forward pass sees them — or safetensors (a
    /// shrink file keeping masks and quantizers), or shrink (the deploy file `shrink run`
    /// executes).
    #[arg(long)]
    pub format: String,
    /// Deploy file encodings (--format shrink), comma-separated from sparse, codebook, huffman;
    /// `all` (default) or `raw` (plain f32, the dense baseline).
    #[arg(long, default_value = "all")]
    pub encodings: String,
    /// Print the deploy file's size report as JSON on stdout (--format shrink).
    #[arg(long)]
    pub json: bool,
    /// Compact deploy file (--format shrink): deflated header, packed payloads (format
    /// version 2; for models of a few KB, where the header is a large share of the file).
    #[arg(long)]
    pub compact: bool,
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
    /// Int4 weight-only quantization of every Gemm / MatMul weight (4-bit symmetric per output
    /// channel, activations f32; no calibration): --format shrink (stored at 4 bits) or onnx
    /// (a QDQ weight onnxruntime reads).
    #[arg(long, conflicts_with = "int8")]
    pub int4: bool,
}

pub fn run(a: &ExportArgs) -> Result<()> {
    if !matches!(a.format.as_str(), "onnx" | "pt" | "safetensors" | "shrink") {
        bail!("--format must be onnx, pt, safetensors or shrink, got `{}`", a.format);
    }
    a.quant.check()?;
    if a.compact && a.format != "shrink" {
        bail!("--compact applies to deploy files: it needs --format shrink, got `{}`", a.format);
    }
    if a.quant.int8 && !matches!(a.format.as_str(), "onnx" | "shrink") {
        bail!("--int8 writes a QDQ model: it needs --format onnx or shrink, got `{}`", a.format);
    }
    if a.int4 && !matches!(a.format.as_str(), "onnx" | "shrink") {
        bail!("--int4 writes int4 weight codes: it needs --format onnx or shrink, got `{}`", a.format);
    }
    let encodings = parse_encodings(&a.encodings)?;
    crate::common::check_output("--output", &a.output, &[&a.model], a.force)?;
    if a.format == "shrink" {
        return export_deploy(a, encodings);
    }
    if a.quant.int8 {
        return export_qdq(a);
    }
    if a.int4 {
        let (q, n) = quantize_int4(a, &load_graph(a)?)?;
        shrink_io::onnx::graph_export::save_graph_onnx(&q, &a.output)?;
        eprintln!("wrote {} (int4 weights: {n} Gemm/MatMul weights)", a.output.display());
        return Ok(());
    }
    let model = shrink_io::load_model(&a.model, a.arch.as_deref())?;
    match a.format.as_str() {
        // Activation quantizers (QAT, LSQ) export as Q/DQ nodes through the graph IR.
        "onnx" if !model.act_quant.is_empty() => {
            let graph = model
                .to_graph()
                .with_context(|| format!("model `{}`: conversion to a graph", a.model.display()))?;
            shrink_io::onnx::graph_export::save_graph_onnx(&graph, &a.output)?
        }
        "onnx" => shrink_io::onnx::save_onnx(&model, &a.output)?,
        "pt" => shrink_io::pt::save_pt(&model, &a.output)?,
        "safetensors" => shrink_io::save_model(&model, &a.output)?,
        other => bail!("--format must be onnx, pt or safetensors, got `{other}`"),
    }
    eprintln!("wrote {}", a.output.display());
    Ok(())
}

/// `--encodings`: `all`, `raw`, or a list from sparse, codebook, huffman.
fn parse_encodings(s: &str) -> Result<Encodings> {
    match s {
        "all" => return Ok(Encodings::ALL),
        "raw" => return Ok(Encodings::RAW),
        _ => {}
    }
    let mut e = Encodings::RAW;
    for item in s.split(',').map(str::trim) {
        match item {
            "sparse" => e.sparse = true,
            "codebook" => e.codebook = true,
            "huffman" => e.huffman = true,
            other => bail!("--encodings: unknown encoding `{other}` (all, raw, or a list from sparse, codebook, huffman)"),
        }
    }
    Ok(e)
}

/// The model as an open-IR graph plus its deploy metadata: ONNX files import directly (no
/// metadata), shrink models convert.
fn load_graph_meta(a: &ExportArgs) -> Result<(Graph, DeployMeta)> {
    let producer = format!("shrink {}", env!("CARGO_PKG_VERSION"));
    if shrink_io::format::detect(&a.model)? == shrink_io::format::ModelFormat::Onnx {
        let meta = DeployMeta { producer, ..Default::default() };
        return Ok((shrink_io::onnx::graph_import::load_graph(&a.model)?, meta));
    }
    let model = shrink_io::load_model(&a.model, a.arch.as_deref())?;
    let graph =
        model.to_graph().with_context(|| format!("model `{}`: conversion to a graph", a.model.display()))?;
    let meta = DeployMeta {
        mean: model.meta.mean.clone(),
        std: model.meta.std.clone(),
        classes: model.meta.classes.clone(),
        producer,
        ..Default::default()
    };
    Ok((graph, meta))
}

fn load_graph(a: &ExportArgs) -> Result<Graph> {
    Ok(load_graph_meta(a)?.0)
}

/// Calibrates on `--calib` and quantizes `graph` into a QDQ graph.
fn quantize(a: &ExportArgs, graph: &Graph) -> Result<(Graph, usize)> {
    let what = a.model.display().to_string();
    let batches = a.quant.calibration_batches(graph, &what)?;
    let cfg = a.quant.config();
    let ranges = shrink_compress::quant::graph::calibrate(graph, &batches, &cfg)?;
    let images = batches.iter().map(|b: &Vec<Tensor>| b[0].shape[0]).sum::<usize>();
    Ok((shrink_compress::quant::graph::quantize_graph(graph, &ranges, &cfg)?, images))
}

/// Writes the deploy file and prints its size per tensor.
fn export_deploy(a: &ExportArgs, encodings: Encodings) -> Result<()> {
    let (mut graph, meta) = load_graph_meta(a)?;
    if a.quant.int8 {
        graph = quantize(a, &graph)?.0;
    }
    if a.int4 {
        graph = quantize_int4(a, &graph)?.0;
    }
    let deploy = shrink_io::deploy::to_deploy(graph, meta, encodings)?;
    let report = if a.compact {
        shrink_io::deploy::save_deploy_as(&deploy, &a.output, shrink_runtime::deploy::Form::Compact)?
    } else {
        shrink_io::deploy::save_deploy(&deploy, &a.output)?
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for t in &report.tensors {
            eprintln!("{:<32} {:<10} {:>10} -> {:>10} B", t.name, t.encoding, t.raw_bytes, t.bytes);
        }
        eprintln!(
            "wrote {} ({} B: payload {} B of {} B raw, header {} B)",
            a.output.display(),
            report.file_bytes,
            report.payload_bytes(),
            report.raw_bytes(),
            report.header_bytes
        );
    }
    Ok(())
}

/// Calibrate, quantize and write the QDQ ONNX model.
fn export_qdq(a: &ExportArgs) -> Result<()> {
    let graph = load_graph(a)?;
    let (q, images) = quantize(a, &graph)?;
    shrink_io::onnx::graph_export::save_graph_onnx(&q, &a.output)?;
    let quantized = q.nodes.iter().filter(|n| matches!(n.op, shrink_graph::Op::QuantizeLinear(_))).count();
    eprintln!(
        "wrote {} (QDQ: {} activations quantized, calibrated on {} images)",
        a.output.display(),
        quantized,
        images
    );
    Ok(())
}

/// Int4 weight-only quantization of `graph` (errors name the model).
fn quantize_int4(a: &ExportArgs, graph: &Graph) -> Result<(Graph, usize)> {
    let (q, n) = shrink_compress::quant::graph::quantize_weights_int4(graph, &[])
        .with_context(|| format!("model `{}`: int4 quantization", a.model.display()))?;
    if n == 0 {
        bail!("model `{}`: --int4 found no Gemm or MatMul with a constant weight", a.model.display());
    }
    Ok((q, n))
}
