//! `shrink histogram`: the MNIST lab's weight histograms (seed 000): all weights concatenated
//! and per layer, log-scale counts, optionally overlaid with the same weights quantized, and the
//! fraction of weights inside ±q (the lab's `len(w[(w > -q) & (w < q)]) / len(w)`).
use crate::cmd::quantize::{config, SchemeArg};
use crate::cmd::sweep_quant::LAB_Q;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use shrink_compress::quant::{self, Include, QuantConfig, RangeMethod, Scheme, Source};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct HistogramArgs {
    /// Model file (.safetensors or bit-packed).
    pub model: PathBuf,
    /// Also quantize the weights with this scheme and overlay their histogram.
    #[arg(long, value_enum)]
    pub quantized: Option<SchemeArg>,
    /// Bit width for `--quantized` (1..=16; symmetric needs >= 2).
    #[arg(long, allow_negative_numbers = true)]
    pub bits: Option<i64>,
    /// Half-ranges q (comma-separated) whose ±q fractions are printed. With `--quantized`: one
    /// range, used to quantize (a number, `max`, `pNN` or `mse`; default `max`), as in
    /// `shrink quantize --range`. `--q` is accepted as an alias.
    #[arg(long = "range", visible_alias = "q", allow_hyphen_values = true)]
    pub range: Option<String>,
    /// One range per output channel (with `--quantized`).
    #[arg(long)]
    pub per_channel: bool,
    /// Also include these tensor groups (comma-separated): bias, batchnorm.
    #[arg(long, default_value = "")]
    pub include: String,
    /// Number of histogram bins.
    #[arg(long, default_value_t = 100)]
    pub bins: usize,
    /// Figure format: png or svg.
    #[arg(long, default_value = "png")]
    pub format: String,
    /// Architecture override for plain state_dicts.
    #[arg(long)]
    pub arch: Option<String>,
    /// Output directory for the figures and summary.{md,json}.
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Statistics of one tensor (or of all of them).
#[derive(Debug, Serialize)]
struct Stats {
    name: String,
    count: usize,
    min: f32,
    max: f32,
    /// `(q, fraction of weights with -q < w < q)`.
    inside: Vec<(f64, f64)>,
    /// Distinct values after quantization (with `--quantized`).
    quantized_levels: Option<usize>,
    /// Figure written for this tensor.
    figure: String,
}

#[derive(Debug, Serialize)]
struct Summary {
    model: String,
    quantized: Option<String>,
    tensors: Vec<Stats>,
    all: Stats,
}

fn min_max(w: &[f32]) -> (f32, f32) {
    w.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// `bins` equal bins over `[lo, hi]`; the last bin includes `hi`.
fn histogram(w: &[f32], lo: f64, hi: f64, bins: usize) -> Vec<(f64, f64, f64)> {
    let width = if hi > lo { (hi - lo) / bins as f64 } else { 1.0 };
    let mut counts = vec![0u64; bins];
    for &x in w {
        let k = (((x as f64 - lo) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[k] += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(k, &c)| (lo + k as f64 * width, lo + (k + 1) as f64 * width, c as f64))
        .collect()
}

fn inside(w: &[f32], qs: &[f64]) -> Vec<(f64, f64)> {
    qs.iter()
        .map(|&q| {
            let n = w.iter().filter(|&&x| (x as f64) > -q && (x as f64) < q).count();
            (q, n as f64 / w.len().max(1) as f64)
        })
        .collect()
}

fn levels(v: &[f32]) -> usize {
    let mut bits: Vec<u32> = v.iter().map(|x| (x + 0.0).to_bits()).collect();
    bits.sort_unstable();
    bits.dedup();
    bits.len()
}

/// A file stem for a tensor name (`fc1.weight` → `fc1.weight`, `a/b` → `a_b`).
fn stem(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}

fn figure(
    path: &Path,
    title: &str,
    original: &[f32],
    quantized: Option<&[f32]>,
    label: &str,
    bins: usize,
) -> Result<()> {
    let (mut lo, mut hi) = min_max(original);
    if let Some(q) = quantized {
        let (a, b) = min_max(q);
        (lo, hi) = (lo.min(a), hi.max(b));
    }
    let mut series = vec![("original".to_string(), histogram(original, lo as f64, hi as f64, bins))];
    if let Some(q) = quantized {
        series.push((label.to_string(), histogram(q, lo as f64, hi as f64, bins)));
    }
    shrink_report::plot::histogram_chart(
        path,
        title,
        "weight value",
        "occurrences (log scale)",
        &series,
        true,
    )?;
    Ok(())
}

pub fn run(a: &HistogramArgs) -> Result<()> {
    // Every flag is checked before anything is loaded or written.
    if a.bins == 0 {
        bail!("--bins must be positive");
    }
    if a.format != "png" && a.format != "svg" {
        bail!("--format must be png or svg, got `{}`", a.format);
    }
    let include = Include::parse(&a.include).context("--include")?;
    let (cfg, qs): (Option<QuantConfig>, Vec<f64>) = match a.quantized {
        Some(scheme) => {
            let Some(bits) = a.bits else { bail!("--bits is required with --quantized") };
            let range = a.range.as_deref().unwrap_or("max");
            if range.contains(',') {
                bail!("--range: `--quantized` takes one range, got `{range}`");
            }
            let cfg = config(scheme.into(), bits, range, a.per_channel, &a.include)?;
            let qs = match cfg.range {
                RangeMethod::Fixed(q) => vec![q],
                _ => vec![],
            };
            (Some(cfg), qs)
        }
        None => {
            if a.bits.is_some() {
                bail!("--bits needs --quantized METHOD");
            }
            if a.per_channel {
                bail!("--per-channel needs --quantized METHOD");
            }
            let mut qs = Vec::new();
            for q in a.range.as_deref().unwrap_or(LAB_Q).split(',').map(str::trim) {
                match q.parse::<f64>() {
                    Ok(v) if v > 0.0 && v.is_finite() => qs.push(v),
                    _ => bail!("--range: `{q}` is not a number > 0"),
                }
            }
            (None, qs)
        }
    };
    crate::run_dir::check_out_dir("-o", &a.output)?;
    let model = shrink_io::load_model(&a.model, a.arch.as_deref())?;
    let sources: Vec<Source> = quant::sources(&model, include)?;
    if sources.is_empty() {
        bail!("{}: no weights to plot", a.model.display());
    }
    let quantized = match &cfg {
        Some(cfg) => Some(quant::quantize_sources(&sources, cfg)?),
        None => None,
    };
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("{}: cannot create directory", a.output.display()))?;

    let label = match &cfg {
        Some(c) => format!("{} {} bits, q = {}", c.scheme, c.bits, a.range.as_deref().unwrap_or("max")),
        None => String::new(),
    };
    let suffix = if cfg.is_some() { format!(" vs {label}") } else { String::new() };
    let ext = &a.format;
    let mut tensors = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let qv = quantized.as_ref().map(|q| q[i].values.as_slice());
        let file = format!("{}.{ext}", stem(&s.name));
        let title = format!("{} ({} weights){suffix}", s.name, s.values.len());
        figure(&a.output.join(&file), &title, &s.values, qv, &label, a.bins)?;
        let (min, max) = min_max(&s.values);
        tensors.push(Stats {
            name: s.name.clone(),
            count: s.values.len(),
            min,
            max,
            inside: inside(&s.values, &qs),
            quantized_levels: qv.map(levels),
            figure: file,
        });
    }
    let all: Vec<f32> = sources.iter().flat_map(|s| s.values.iter().copied()).collect();
    let all_q: Option<Vec<f32>> =
        quantized.as_ref().map(|q| q.iter().flat_map(|t| t.values.iter().copied()).collect());
    let file = format!("all-weights.{ext}");
    let title = format!("all weights ({}){suffix}", all.len());
    figure(&a.output.join(&file), &title, &all, all_q.as_deref(), &label, a.bins)?;
    let (min, max) = min_max(&all);
    let summary = Summary {
        model: a.model.display().to_string(),
        quantized: cfg.map(|_| label.clone()),
        all: Stats {
            name: "all".into(),
            count: all.len(),
            min,
            max,
            inside: inside(&all, &qs),
            quantized_levels: all_q.as_deref().map(levels),
            figure: file,
        },
        tensors,
    };
    let md = markdown(&summary, &qs, cfg.map(|c| c.scheme));
    shrink_io::atomic::write_atomic(&a.output.join("summary.md"), md.as_bytes())?;
    shrink_io::atomic::write_atomic(
        &a.output.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    print!("{md}");
    eprintln!(
        "wrote {} figures and summary.{{md,json}} to {}",
        summary.tensors.len() + 1,
        a.output.display()
    );
    Ok(())
}

fn markdown(s: &Summary, qs: &[f64], scheme: Option<Scheme>) -> String {
    let mut out = format!("# Weight histograms of `{}`\n\n", s.model);
    if let Some(q) = &s.quantized {
        out += &format!("quantized: {q}\n\n");
    }
    out += "| tensor | weights | min | max |";
    for q in qs {
        out += &format!(" inside ±{q} (%) |");
    }
    if scheme.is_some() {
        out += " levels used |";
    }
    out += &format!(
        "\n|---|---|---|---|{}{}\n",
        "---|".repeat(qs.len()),
        if scheme.is_some() { "---|" } else { "" }
    );
    for t in s.tensors.iter().chain(std::iter::once(&s.all)) {
        out += &format!("| {} | {} | {:.4} | {:.4} |", t.name, t.count, t.min, t.max);
        for (_, f) in &t.inside {
            out += &format!(" {:.4} |", 100.0 * f);
        }
        if let Some(l) = t.quantized_levels {
            out += &format!(" {l} |");
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_the_range_and_fractions_are_strict() {
        let w = [-1.0f32, -0.5, 0.0, 0.5, 1.0];
        let h = histogram(&w, -1.0, 1.0, 4);
        assert_eq!(h.iter().map(|b| b.2).collect::<Vec<_>>(), vec![1.0, 1.0, 1.0, 2.0]);
        assert_eq!(h[0].0, -1.0);
        assert_eq!(h[3].1, 1.0);
        assert_eq!(inside(&w, &[1.0, 0.6]), vec![(1.0, 0.6), (0.6, 0.6)]);
        assert_eq!(levels(&[0.0, -0.0, 0.5, 0.5]), 2);
        assert_eq!(stem("a/b.weight"), "a_b.weight");
    }
}
