//! `shrink info`: the per-layer table (name, type, shape, params, nonzeros, sparsity, MACs).
use anyhow::Result;
use clap::Args;
use shrink_ir::stats::model_stats;
use std::path::PathBuf;

#[derive(Args)]
pub struct InfoArgs {
    /// Model file (.safetensors, .onnx or bit-packed).
    pub model: PathBuf,
    /// Architecture override for plain state_dicts.
    #[arg(long)]
    pub arch: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &InfoArgs) -> Result<()> {
    let model = shrink_io::load_model(&a.model, a.arch.as_deref())?;
    let s = model_stats(&model)?;
    // The file as stored (bit-packed, pruned, ...) beside what the weights take as dense fp32.
    let file_bytes = std::fs::metadata(&a.model).map(|m| m.len()).unwrap_or(0);
    if a.json {
        let out = serde_json::json!({
            "model": a.model.display().to_string(),
            "meta": model.meta,
            "params": s.params,
            "nonzero_params": s.nonzero_params,
            "size_bytes": s.size_bytes,
            "file_bytes": file_bytes,
            "macs": s.macs,
            "layers": s.layers,
            "weight_quant": model.params.quants(),
            "act_quant": model.act_quant,
        });
        println!("{out}");
        return Ok(());
    }
    println!(
        "{} — arch {}, input {:?}, {} classes",
        a.model.display(),
        model.meta.arch,
        model.meta.input_shape,
        model.meta.classes.len()
    );
    let header = ["layer", "type", "weight shape", "output", "params", "nonzero", "sparsity", "MACs"];
    let mut rows: Vec<[String; 8]> = s
        .layers
        .iter()
        .map(|l| {
            [
                l.name.clone(),
                l.op_type.clone(),
                if l.weight_shape.is_empty() { "-".into() } else { format!("{:?}", l.weight_shape) },
                format!("{:?}", l.output_shape),
                l.params.to_string(),
                l.nonzero_params.to_string(),
                format!("{:.2}%", 100.0 * l.sparsity),
                l.macs.to_string(),
            ]
        })
        .collect();
    let total_sparsity = if s.params > 0 { 1.0 - s.nonzero_params as f64 / s.params as f64 } else { 0.0 };
    rows.push([
        "total".into(),
        String::new(),
        String::new(),
        String::new(),
        s.params.to_string(),
        s.nonzero_params.to_string(),
        format!("{:.2}%", 100.0 * total_sparsity),
        s.macs.to_string(),
    ]);
    let widths: Vec<usize> =
        (0..8).map(|i| rows.iter().map(|r| r[i].len()).chain([header[i].len()]).max().unwrap_or(0)).collect();
    let line =
        |cells: Vec<&str>| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i >= 4 {
                        format!("{c:>w$}", w = widths[i])
                    } else {
                        format!("{c:<w$}", w = widths[i])
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
        };
    println!("{}", line(header.to_vec()));
    println!("{}", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
    for r in &rows {
        println!("{}", line(r.iter().map(|s| s.as_str()).collect()));
    }
    println!("size: file {:.2} MB (dense fp32 {:.2} MB)", file_bytes as f64 / 1e6, s.size_bytes as f64 / 1e6);
    for (name, q) in model.params.quants() {
        let per =
            if q.axis.is_some() { format!(", per channel ({})", q.scales.len()) } else { String::new() };
        println!("quantized weight  {name}: {} {} bits{per}", q.scheme, q.bits);
    }
    for (node, q) in &model.act_quant {
        let lo = q.offsets[0];
        let hi = lo + q.scales[0] * q.qmax;
        println!("quantized output  {node}: {} bits, range [{lo:.4}, {hi:.4}]", q.bits);
    }
    Ok(())
}
