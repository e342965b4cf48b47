//! `shrink sweep quant`: the MNIST lab's quantization study (seed 000) over a grid of
//! quantizers × bit widths × ranges. The model and data are loaded once; every cell quantizes
//! the pristine weights (never compounding).
//!
//! The model is held once: conv/linear weights are never copied, each cell's forward pass gets
//! their quantized rows a block at a time from [`quant::WeightSweep`] (exactly the lab formula's
//! values; low-bit layers that are mostly zeros run as CSR products), so peak memory is the
//! model plus the data and one batch of activations. `--fake-quant` instead attaches quantizer
//! slots (the path `shrink eval` takes on a quantized file: the same values within 2 ulp, at
//! the price of a pristine copy and a fake-quant pass over all weights per batch), for checking.
//!
//! Each finished cell is journaled in `--out-dir` ([`crate::run_dir`]): an interrupted sweep
//! re-run with the same model, data and flags computes only the missing cells, and its tables
//! and figures are byte-identical to an uninterrupted run's (wall times go to `timings.json`).
//!
//! `--shard I/N` computes only every N-th cell of the grid ([`crate::shard`]) and writes no
//! tables; [`merge`] writes them from the joined shard journals with the same writers.
use crate::common::{check_fit, load_data, normalization, parse_split};
use crate::run_dir::{self, RunDir, RunSpec};
use crate::shard::{self, Shard};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use shrink_compress::quant::{self, Include, QuantConfig, RangeMethod, Scheme};
use shrink_ir::prepared::DEFAULT_MAX_DENSITY;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The lab's grid (seed 000): `bit_values` and `q_values`.
pub const LAB_BITS: &str = "2,4,8,12,16";
pub const LAB_Q: &str = "0.5,0.8,1,1.2,1.5,1.7,2";

#[derive(Args, Serialize, Deserialize)]
pub struct SweepQuantArgs {
    /// Model file (.safetensors).
    pub model: PathBuf,
    /// Dataset to evaluate each cell on.
    #[arg(long)]
    pub data: PathBuf,
    /// Quantizers, comma-separated: clip, symmetric, asymmetric.
    #[arg(long, default_value = "clip")]
    pub method: String,
    /// Bit widths, comma-separated (1..=16; symmetric needs >= 2).
    #[arg(long, default_value = LAB_BITS, allow_hyphen_values = true)]
    pub bits: String,
    /// Ranges, comma-separated: numbers q > 0 (clip half-range, symmetric alpha, asymmetric
    /// [-q, q]), `max` (max|w|, or [min, max] for asymmetric), `pNN` (percentile) or `mse`.
    /// Same flag as `shrink quantize --range`; `--q` is accepted as an alias.
    #[arg(long = "range", visible_alias = "q", default_value = LAB_Q, allow_hyphen_values = true)]
    pub range: String,
    /// One range per output channel instead of one per tensor.
    #[arg(long)]
    pub per_channel: bool,
    /// Also quantize these tensor groups (comma-separated): bias, batchnorm.
    #[arg(long, default_value = "")]
    pub include: String,
    /// Dataset split to measure accuracy on: test or train.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Evaluation batch size. Streamed weights are re-quantized once per batch, so large
    /// batches amortize that pass (activations of 1000 simple-dnn images take ~38 MB).
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Per-channel mean (default: stored in the model).
    #[arg(long)]
    pub mean: Option<String>,
    /// Per-channel std (default: stored in the model).
    #[arg(long)]
    pub std: Option<String>,
    /// Architecture override for plain state_dicts.
    #[arg(long)]
    pub arch: Option<String>,
    /// Directory for table.{md,csv,json}, timings.json and the figures. It belongs to one run:
    /// re-running the same sweep there resumes it (finished cells are kept).
    #[arg(long, default_value = "runs/sweep-quant")]
    #[serde(skip)]
    pub out_dir: PathBuf,
    /// Figure format: png or svg.
    #[arg(long, default_value = "png")]
    pub format: String,
    /// Evaluate through quantizer slots (fake quant in every forward pass, as `shrink eval`
    /// does on a quantized file) instead of the baked values: slower, for checking.
    #[arg(long)]
    pub fake_quant: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub run: crate::shard::RunFlags,
}

/// One range of the grid: its text (as in the table) and the parsed method.
#[derive(Debug, Clone)]
pub struct RangeSpec {
    pub label: String,
    pub method: RangeMethod,
}

impl RangeSpec {
    /// The numeric half-range of a fixed range (the x axis of accuracy vs q).
    pub fn value(&self) -> Option<f64> {
        match self.method {
            RangeMethod::Fixed(q) => Some(q),
            _ => None,
        }
    }
}

/// One cell of the quantization sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuantCell {
    pub method: String,
    pub bits: u32,
    /// The range as given (`0.8`, `max`, `p99.9`, `mse`).
    pub q: String,
    /// The numeric half-range for a fixed range.
    pub q_value: Option<f64>,
    /// Top-1 accuracy as a fraction.
    pub accuracy: f64,
    /// Correctly classified examples.
    pub correct: usize,
    pub loss: f64,
    /// Accuracy minus the fp32 model's, percentage points.
    pub delta_pp: f64,
}

/// A finished cell as journaled: the result and its wall time (quantize + evaluate), seconds.
#[derive(Serialize, Deserialize)]
struct Finished {
    cell: QuantCell,
    seconds: f64,
}

/// The fp32 baseline as journaled.
#[derive(Serialize, Deserialize)]
struct Baseline {
    accuracy: f64,
    loss: f64,
    samples: usize,
    /// The dataset's source (for the report; tables of merged shards need it).
    #[serde(default)]
    source: String,
}

/// The grid of a sweep: quantizers × ranges × bit widths, in that (the tables') order.
struct Grid {
    schemes: Vec<Scheme>,
    bits: Vec<u32>,
    ranges: Vec<RangeSpec>,
}

impl Grid {
    /// Parses `--method`, `--bits` and `--range`.
    fn parse(a: &SweepQuantArgs) -> Result<Grid> {
        let schemes = nonempty("--method", parse_methods(&a.method)?)?;
        let bits = nonempty("--bits", parse_bits(&a.bits, &schemes)?)?;
        let ranges = nonempty("--range", parse_ranges(&a.range)?)?;
        Ok(Grid { schemes, bits, ranges })
    }

    /// Every cell in the fixed order (the journal keys; cell k belongs to shard k mod N).
    fn cells(&self) -> Vec<(Scheme, &RangeSpec, u32, String)> {
        let mut out = Vec::new();
        for &scheme in &self.schemes {
            for r in &self.ranges {
                for &b in &self.bits {
                    out.push((scheme, r, b, format!("{scheme}/{b}/{}", r.label)));
                }
            }
        }
        out
    }

    /// The run's identity (for `run.json`).
    fn spec<'a>(&self, a: &'a SweepQuantArgs) -> Result<RunSpec<'a>> {
        let files = if a.run.shard.is_some() {
            Vec::new()
        } else {
            output_files(&self.schemes, &self.ranges, &a.format)
        };
        Ok(RunSpec {
            command: "sweep quant",
            model: &a.model,
            data: &a.data,
            params: serde_json::to_value(a)?,
            files,
        })
    }
}

/// The whole sweep as written to `table.json`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    model: String,
    data: String,
    split: &'a str,
    samples: usize,
    per_channel: bool,
    fake_quant: bool,
    fp32_accuracy: f64,
    fp32_correct: usize,
    fp32_loss: f64,
    cells: &'a [QuantCell],
}

/// Parses `--method`.
pub fn parse_methods(s: &str) -> Result<Vec<Scheme>> {
    items(s).map(|m| Scheme::parse(m).context("--method")).collect()
}

/// Parses `--bits` for every scheme (symmetric needs >= 2).
pub fn parse_bits(s: &str, schemes: &[Scheme]) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for b in items(s) {
        let Ok(v) = b.parse::<i64>() else { bail!("--bits: `{b}` is not an integer") };
        let Ok(bits) = u32::try_from(v) else { bail!("--bits must be in 1..=16, got {v}") };
        for &scheme in schemes {
            quant::check_bits(scheme, bits).context("--bits")?;
        }
        out.push(bits);
    }
    Ok(out)
}

/// Parses `--range`.
pub fn parse_ranges(s: &str) -> Result<Vec<RangeSpec>> {
    items(s)
        .map(|q| Ok(RangeSpec { label: q.to_string(), method: RangeMethod::parse(q).context("--range")? }))
        .collect()
}

fn items(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

fn nonempty<T>(flag: &str, v: Vec<T>) -> Result<Vec<T>> {
    if v.is_empty() {
        bail!("{flag}: empty list");
    }
    Ok(v)
}

pub fn run(a: &SweepQuantArgs) -> Result<()> {
    // Every flag is checked before anything is loaded or written.
    let grid = Grid::parse(a)?;
    let shard = Shard::parse_flag(a.run.shard.as_deref())?;
    let include = Include::parse(&a.include).context("--include")?;
    if a.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    if a.format != "png" && a.format != "svg" {
        bail!("--format must be png or svg, got `{}`", a.format);
    }
    let split = parse_split(&a.split)?;
    run_dir::check_out_dir("--out-dir", &a.out_dir)?;

    let mut model = shrink_io::load_model(&a.model, a.arch.as_deref())?;
    let norm = normalization(&model, a.mean.as_deref(), a.std.as_deref())?;
    let ds = load_data(&a.data, split)?;
    check_fit(&model, &ds, &a.model.display().to_string())?;
    if !model.params.quants().is_empty() {
        bail!("{}: model is already quantized (sweep a full-precision model)", a.model.display());
    }
    if a.per_channel {
        for (name, p) in model.params.iter() {
            if include.selects(p.kind) && p.var.elem_count() > 0 && p.var.dims().len() < 2 {
                bail!("--per-channel: `{name}` has shape {:?} (no output channels)", p.var.dims());
            }
        }
    }
    // Baked cells stream quantized rows from the model's own weights (no copy of the model);
    // `--fake-quant` keeps pristine copies and attaches quantizer slots instead.
    let sources = if a.fake_quant { quant::sources(&model, include)? } else { Vec::new() };
    let sweep = if a.fake_quant { None } else { Some(quant::WeightSweep::new(&model, include)?) };
    let mut run = RunDir::open("--out-dir", &a.out_dir, grid.spec(a)?, a.run.force)?;
    let grid_cells: Vec<_> = grid
        .cells()
        .into_iter()
        .enumerate()
        .filter(|&(k, _)| shard::mine(shard, k))
        .map(|(_, c)| c)
        .collect();
    let keys: Vec<String> = grid_cells.iter().map(|c| c.3.clone()).collect();
    run_dir::report_resume(run.count_done(&keys), keys.len());

    let n = grid_cells.len();
    let pb = progress(n as u64 + 1);
    pb.set_message("fp32");
    let base = match run.done::<Baseline>("fp32") {
        Some(b) => b,
        None => {
            let e = shrink_train::evaluate(&model, &ds, &norm, a.batch_size, None)?;
            let b = Baseline {
                accuracy: e.accuracy,
                loss: e.loss,
                samples: e.samples,
                source: ds.source.clone(),
            };
            run.record("fp32", &b)?;
            b
        }
    };
    let samples = base.samples.max(1);
    pb.inc(1);

    let mut cells = Vec::with_capacity(n);
    let mut timings = Vec::with_capacity(n);
    for (scheme, r, b, key) in grid_cells {
        if let Some(done) = run.done::<Finished>(&key) {
            cells.push(done.cell);
            timings.push(done.seconds);
            pb.inc(1);
            continue;
        }
        pb.set_message(format!("{scheme} {b} bits q={}", r.label));
        let start = Instant::now();
        let cfg = QuantConfig { scheme, bits: b, range: r.method, per_channel: a.per_channel, include };
        let e = match &sweep {
            Some(sweep) => {
                let prepared = sweep.prepare(&mut model, &cfg, DEFAULT_MAX_DENSITY)?;
                shrink_train::evaluate_prepared(&model, &ds, &norm, a.batch_size, None, &prepared)?
            }
            None => {
                for src in &sources {
                    let q = quant::quantize_source(src, &cfg)?;
                    quant::apply(&mut model, std::slice::from_ref(&q))?;
                }
                shrink_train::evaluate(&model, &ds, &norm, a.batch_size, None)?
            }
        };
        let done = Finished {
            cell: QuantCell {
                method: scheme.name().to_string(),
                bits: b,
                q: r.label.clone(),
                q_value: r.value(),
                accuracy: e.accuracy,
                correct: (e.accuracy * samples as f64).round() as usize,
                loss: e.loss,
                delta_pp: 100.0 * (e.accuracy - base.accuracy),
            },
            seconds: start.elapsed().as_secs_f64(),
        };
        run.record(&key, &done)?;
        cells.push(done.cell);
        timings.push(done.seconds);
        pb.inc(1);
    }
    pb.finish_and_clear();
    if let Some(shard) = shard {
        shard::report_done(shard, n, &a.out_dir);
        return Ok(());
    }
    // The tables and figures need none of these: free the model and data before plotting.
    let data_source = ds.source.clone();
    drop((sweep, sources, model, ds));
    write_outputs(a, &grid, &base, data_source, &cells, &timings)
}

/// Writes the tables, `timings.json` and the figures of the finished sweep `cells` (in the
/// grid's order) and prints the Markdown table: the end of a whole run and of [`merge`].
fn write_outputs(
    a: &SweepQuantArgs,
    grid: &Grid,
    base: &Baseline,
    data_source: String,
    cells: &[QuantCell],
    timings: &[f64],
) -> Result<()> {
    let Grid { schemes, bits, ranges } = grid;
    let n = cells.len();
    let grid_seconds: f64 = timings.iter().sum();
    let samples = base.samples.max(1);
    let report = Report {
        model: a.model.display().to_string(),
        data: data_source,
        split: &a.split,
        samples: base.samples,
        per_channel: a.per_channel,
        fake_quant: a.fake_quant,
        fp32_accuracy: base.accuracy,
        fp32_correct: (base.accuracy * samples as f64).round() as usize,
        fp32_loss: base.loss,
        cells,
    };
    let md = markdown(&report, schemes, bits, ranges);
    write_tables(&a.out_dir, &report, &md)?;
    write_timings(&a.out_dir, cells, timings)?;
    let figures = write_figures(&a.out_dir, &a.format, &report, schemes, bits, ranges)?;
    crate::recipe::report::write_dir_report(
        &a.out_dir,
        "Quantization sweep",
        &format!(
            "shrink sweep quant of {}: every cell quantized from the pristine weights.",
            a.model.display()
        ),
    )?;
    print!("{md}");
    eprintln!(
        "{n} cells in {grid_seconds:.1} s ({:.2} s per cell); wrote {}/table.{{md,csv,json}}, timings.json and {figures} figures",
        grid_seconds / n as f64,
        a.out_dir.display()
    );
    Ok(())
}

/// `shrink merge` of `sweep quant` shards: the whole sweep's files from the joined journals.
pub fn merge(joined: &crate::cmd::merge::Joined, out_dir: &Path, force: bool) -> Result<()> {
    let mut a: SweepQuantArgs = joined.args()?;
    a.out_dir = out_dir.to_path_buf();
    a.run.force = force;
    let grid = Grid::parse(&a)?;
    let cells = grid.cells();
    let keys: Vec<String> = cells.iter().map(|c| c.3.clone()).collect();
    joined.check_complete(&["fp32"], &keys)?;
    let base: Baseline = joined.get("fp32")?;
    let mut done = Vec::with_capacity(keys.len());
    let mut timings = Vec::with_capacity(keys.len());
    for key in &keys {
        let f: Finished = joined.get(key)?;
        done.push(f.cell);
        timings.push(f.seconds);
    }
    joined.write_journal(grid.spec(&a)?, out_dir, force)?;
    let source = base.source.clone();
    write_outputs(&a, &grid, &base, source, &done, &timings)
}

/// The files a sweep writes in its directory (for `run.json`).
fn output_files(schemes: &[Scheme], ranges: &[RangeSpec], ext: &str) -> Vec<String> {
    let mut files: Vec<String> =
        ["table.md", "table.csv", "table.json", "timings.json", "report.html"].map(String::from).into();
    let numeric = ranges.iter().any(|q| q.value().is_some());
    for scheme in schemes {
        files.push(format!("{scheme}-accuracy-vs-bits.{ext}"));
        if numeric {
            files.push(format!("{scheme}-accuracy-vs-q.{ext}"));
        }
    }
    files
}

/// `timings.json`: the wall time of every cell (the journaled one for resumed cells) and their
/// sum. Kept apart from the tables, which are the same for every run of the same sweep.
fn write_timings(dir: &Path, cells: &[QuantCell], seconds: &[f64]) -> Result<()> {
    let rows: Vec<_> = cells
        .iter()
        .zip(seconds)
        .map(|(c, s)| serde_json::json!({ "method": c.method, "bits": c.bits, "q": c.q, "seconds": s }))
        .collect();
    let json = serde_json::json!({ "grid_seconds": seconds.iter().sum::<f64>(), "cells": rows });
    shrink_io::atomic::write_atomic(
        &dir.join("timings.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    Ok(())
}

fn progress(len: u64) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "sweep quant [{bar:30}] {pos}/{len} {elapsed_precise} (eta {eta}) {msg}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

fn pct(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

fn find<'a>(cells: &'a [QuantCell], scheme: Scheme, bits: u32, q: &str) -> Option<&'a QuantCell> {
    cells.iter().find(|c| c.method == scheme.name() && c.bits == bits && c.q == q)
}

/// Per method a pivot (rows q, columns bits, like the lab's plots), then every cell.
fn markdown(r: &Report, schemes: &[Scheme], bits: &[u32], ranges: &[RangeSpec]) -> String {
    let mut s = format!(
        "# Quantization sweep\n\nmodel `{}`, data `{}` ({}, {} samples){}{}; fp32 top-1 accuracy {}%\n",
        r.model,
        r.data,
        r.split,
        r.samples,
        if r.per_channel { ", per channel" } else { "" },
        if r.fake_quant { ", fake-quant forward" } else { "" },
        pct(r.fp32_accuracy)
    );
    for &scheme in schemes {
        s += &format!("\n## {scheme}: top-1 accuracy (%), range q (rows) × bits (columns)\n\n| q \\ bits |");
        for b in bits {
            s += &format!(" {b} |");
        }
        s += &format!("\n|---|{}\n", "---|".repeat(bits.len()));
        for q in ranges {
            s += &format!("| {} |", q.label);
            for &b in bits {
                let v = find(r.cells, scheme, b, &q.label).map(|c| pct(c.accuracy)).unwrap_or_default();
                s += &format!(" {v} |");
            }
            s += "\n";
        }
    }
    s += "\n## All cells\n\n| method | bits | q | accuracy (%) | Δ vs fp32 (pp) | loss |\n";
    s += "|---|---|---|---|---|---|\n";
    for c in r.cells {
        s += &format!(
            "| {} | {} | {} | {} | {:+.2} | {:.4} |\n",
            c.method,
            c.bits,
            c.q,
            pct(c.accuracy),
            c.delta_pp,
            c.loss
        );
    }
    s
}

fn write_tables(dir: &Path, r: &Report, md: &str) -> Result<()> {
    let mut csv = String::from("method,bits,q,accuracy,correct,samples,delta_pp,loss\n");
    for c in r.cells {
        csv += &format!(
            "{},{},{},{},{},{},{:.4},{:.6}\n",
            c.method,
            c.bits,
            c.q,
            pct(c.accuracy),
            c.correct,
            r.samples,
            c.delta_pp,
            c.loss
        );
    }
    shrink_io::atomic::write_atomic(&dir.join("table.md"), md.as_bytes())?;
    shrink_io::atomic::write_atomic(&dir.join("table.csv"), csv.as_bytes())?;
    shrink_io::atomic::write_atomic(&dir.join("table.json"), serde_json::to_string_pretty(r)?.as_bytes())?;
    Ok(())
}

/// The lab's two figures per method: accuracy vs bits (one line per q) and accuracy vs q (one
/// line per bit width; numeric ranges only), each with the fp32 accuracy as a reference line.
fn write_figures(
    dir: &Path,
    ext: &str,
    r: &Report,
    schemes: &[Scheme],
    bits: &[u32],
    ranges: &[RangeSpec],
) -> Result<usize> {
    let fp32 = 100.0 * r.fp32_accuracy;
    let reference = |xs: &[f64]| -> (String, Vec<(f64, f64)>) {
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        ("fp32".to_string(), vec![(lo, fp32), (hi, fp32)])
    };
    let mut written = 0;
    for &scheme in schemes {
        let bx: Vec<f64> = bits.iter().map(|&b| b as f64).collect();
        let mut series: Vec<(String, Vec<(f64, f64)>)> = ranges
            .iter()
            .map(|q| {
                let pts = bits
                    .iter()
                    .filter_map(|&b| {
                        find(r.cells, scheme, b, &q.label).map(|c| (b as f64, 100.0 * c.accuracy))
                    })
                    .collect();
                (format!("q = {}", q.label), pts)
            })
            .collect();
        series.push(reference(&bx));
        shrink_report::plot::line_chart(
            dir.join(format!("{scheme}-accuracy-vs-bits.{ext}")),
            &format!("{scheme}: accuracy vs bits (one line per range q)"),
            "bits",
            "top-1 accuracy (%)",
            &series,
            false,
        )?;
        written += 1;

        let numeric: Vec<(&RangeSpec, f64)> =
            ranges.iter().filter_map(|q| q.value().map(|v| (q, v))).collect();
        if numeric.is_empty() {
            continue;
        }
        let qx: Vec<f64> = numeric.iter().map(|&(_, v)| v).collect();
        let mut series: Vec<(String, Vec<(f64, f64)>)> = bits
            .iter()
            .map(|&b| {
                let mut pts: Vec<(f64, f64)> = numeric
                    .iter()
                    .filter_map(|&(q, v)| find(r.cells, scheme, b, &q.label).map(|c| (v, 100.0 * c.accuracy)))
                    .collect();
                pts.sort_by(|x, y| x.0.total_cmp(&y.0));
                (format!("{b} bits"), pts)
            })
            .collect();
        series.push(reference(&qx));
        shrink_report::plot::line_chart(
            dir.join(format!("{scheme}-accuracy-vs-q.{ext}")),
            &format!("{scheme}: accuracy vs range q (one line per bit width)"),
            "range q",
            "top-1 accuracy (%)",
            &series,
            false,
        )?;
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_grid_and_names_the_flag() {
        let s = parse_methods("clip, asymmetric").unwrap();
        assert_eq!(s, vec![Scheme::Clip, Scheme::Asymmetric]);
        assert_eq!(parse_bits("2,4,8", &s).unwrap(), vec![2, 4, 8]);
        assert_eq!(parse_bits("1", &[Scheme::Clip]).unwrap(), vec![1]);
        let e = |r: Result<Vec<u32>>| format!("{:#}", r.unwrap_err());
        assert!(e(parse_bits("1", &[Scheme::Symmetric])).starts_with("--bits"));
        assert!(e(parse_bits("0", &s)).starts_with("--bits"));
        assert!(e(parse_bits("17", &s)).starts_with("--bits"));
        assert!(e(parse_bits("-2", &s)).starts_with("--bits"));
        assert!(e(parse_bits("x", &s)).starts_with("--bits"));
        let q = parse_ranges("0.5,max,p99.9").unwrap();
        assert_eq!(q.iter().map(RangeSpec::value).collect::<Vec<_>>(), vec![Some(0.5), None, None]);
        assert!(format!("{:#}", parse_ranges("0").unwrap_err()).starts_with("--range"));
        assert!(format!("{:#}", parse_methods("float8").unwrap_err()).starts_with("--method"));
    }
}
