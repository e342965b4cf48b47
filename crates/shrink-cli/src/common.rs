//! Helpers shared by subcommands: parsing lists, loading models and data with clear errors.
use anyhow::{bail, Context, Result};
use shrink_io::data::{self, Dataset, Normalize, Split};
use shrink_ir::Model;
use std::path::Path;

/// Parses `a,b,c` into floats, naming the flag on error.
pub fn parse_floats(flag: &str, s: &str) -> Result<Vec<f32>> {
    s.split(',')
        .map(|v| v.trim().parse::<f32>().with_context(|| format!("{flag}: `{v}` is not a number")))
        .collect()
}

/// Parses `a,b,c` into ratios in [0, 1] (f64 straight from the text, so the seeds'
/// `int(n·p)` sees 0.2 and not 0.2f32), naming the flag on error.
pub fn parse_ratios(flag: &str, s: &str) -> Result<Vec<f64>> {
    let values: Vec<f64> = s
        .split(',')
        .map(|v| v.trim().parse::<f64>().with_context(|| format!("{flag}: `{v}` is not a number")))
        .collect::<Result<_>>()?;
    for v in &values {
        shrink_compress::prune::check_ratio(flag, *v)?;
    }
    Ok(values)
}

/// Normalization from `--mean/--std` flags, else the model's stored one.
pub fn normalization(model: &Model, mean: Option<&str>, std: Option<&str>) -> Result<Normalize> {
    let mean = match mean {
        Some(s) => parse_floats("--mean", s)?,
        None => model.meta.mean.clone(),
    };
    let std = match std {
        Some(s) => parse_floats("--std", s)?,
        None => model.meta.std.clone(),
    };
    let c = model.meta.input_shape.first().copied().unwrap_or(1);
    if mean.len() != c || std.len() != c {
        bail!("--mean/--std need {c} values for a {c}-channel model (got {} and {})", mean.len(), std.len());
    }
    if let Some(s) = std.iter().find(|s| **s <= 0.0 || !s.is_finite()) {
        bail!("--std values must be positive, got {s}");
    }
    Ok(Normalize { mean, std })
}

/// Loads a dataset split.
pub fn load_data(path: &Path, split: Split) -> Result<Dataset> {
    Ok(data::load(path, split)?)
}

/// Checks that `ds` fits `model`'s input shape and class count.
pub fn check_fit(model: &Model, ds: &Dataset, model_path: &str) -> Result<()> {
    let shape = ds.image_shape();
    if model.meta.input_shape != shape {
        bail!(
            "model `{model_path}` ({}) expects inputs {:?} but `{}` has images {:?}",
            model.meta.arch,
            model.meta.input_shape,
            ds.source,
            shape
        );
    }
    let shapes = model.shapes()?;
    let outputs: usize = shapes.last().map(|s| s.iter().product()).unwrap_or(0);
    if ds.num_classes() > outputs {
        bail!(
            "`{}` has {} classes but model `{model_path}` has {outputs} outputs",
            ds.source,
            ds.num_classes()
        );
    }
    Ok(())
}

/// Parses `--split`.
pub fn parse_split(s: &str) -> Result<Split> {
    match s {
        "train" => Ok(Split::Train),
        "test" => Ok(Split::Test),
        other => bail!("--split must be `train` or `test`, got `{other}`"),
    }
}

/// A progress bar on stderr (hidden when disabled or when stderr is not a terminal).
pub fn progress(len: u64, enabled: bool, prefix: &str) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed_precise}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(prefix.to_string());
    pb
}

/// Checks an output file path before any long work starts: it is not a directory, its
/// directory exists and accepts a new file, and it is none of `inputs` unless `force`.
pub fn check_output(flag: &str, output: &Path, inputs: &[&Path], force: bool) -> Result<()> {
    if output.is_dir() {
        bail!("{flag} `{}` is a directory; name a file inside it", output.display());
    }
    let dir = match output.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => std::path::PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!("{flag}: directory `{}` does not exist", dir.display());
    }
    check_writable_dir(flag, &dir)?;
    if !force && output.exists() {
        let out = std::fs::canonicalize(output).ok();
        for input in inputs {
            if out.is_some() && std::fs::canonicalize(input).ok() == out {
                bail!(
                    "{flag} `{}` is also an input; choose another name or pass --force to overwrite it",
                    output.display()
                );
            }
        }
    }
    Ok(())
}

/// Checks that `dir` accepts new files by creating and removing a probe file in it.
pub fn check_writable_dir(flag: &str, dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".shrink-probe.{}.tmp", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => bail!("{flag}: cannot write in `{}` ({e})", dir.display()),
    }
}

/// The graph a graph-engine command works on: `model` itself (an ONNX file), or with
/// `--graph M.onnx` that file's graph with its weights from the state_dict `model`.
pub fn load_engine_graph(model: &Path, graph: Option<&Path>) -> Result<shrink_graph::Graph> {
    Ok(match graph {
        Some(onnx) => shrink_io::graph_weights::load_graph_with_state_dict(onnx, model)?,
        None => shrink_io::onnx::graph_import::load_graph(model)?,
    })
}

/// Quantization flags of `shrink export` (`--format onnx` QDQ today; reusable by other formats).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct QuantFlags {
    /// Quantize to int8: weights symmetric per output channel, activations uint8 per tensor
    /// calibrated on --calib (static PTQ; biases stay f32).
    #[arg(long)]
    pub int8: bool,
    /// Calibration dataset (MNIST/CIFAR directory or archive) for --int8; its train split is read.
    #[arg(long)]
    pub calib: Option<std::path::PathBuf>,
    /// Calibration batches, taken from the start of the train split.
    #[arg(long, default_value_t = 1)]
    pub calib_batches: usize,
    /// Images per calibration batch.
    #[arg(long, default_value_t = 64)]
    pub calib_batch_size: usize,
    /// Node names to keep in f32 (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
}

impl QuantFlags {
    /// Check the flags' consistency (before any long work).
    pub fn check(&self) -> Result<()> {
        if !self.int8 {
            if self.calib.is_some() || !self.skip.is_empty() {
                bail!("--calib and --skip only apply with --int8");
            }
            return Ok(());
        }
        let Some(calib) = &self.calib else { bail!("--int8 needs calibration data: pass --calib DATA") };
        if !calib.exists() {
            bail!("--calib `{}` does not exist", calib.display());
        }
        if self.calib_batches == 0 || self.calib_batch_size == 0 {
            bail!("--calib-batches and --calib-batch-size must be at least 1");
        }
        Ok(())
    }

    /// The quantizer settings.
    pub fn config(&self) -> shrink_compress::quant::graph::QdqConfig {
        shrink_compress::quant::graph::QdqConfig { skip: self.skip.clone(), ..Default::default() }
    }

    /// The calibration batches for `graph` (one f32 image input): the first
    /// `calib_batches × calib_batch_size` train images of --calib, normalized as `shrink eval`
    /// does (the dataset's default mean/std).
    pub fn calibration_batches(
        &self,
        graph: &shrink_graph::Graph,
        what: &str,
    ) -> Result<Vec<Vec<shrink_graph::Tensor>>> {
        let path = self.calib.as_deref().context("--int8 needs --calib")?;
        let ds = load_data(path, Split::Train).with_context(|| format!("--calib `{}`", path.display()))?;
        let plan =
            shrink_train::graph_eval::plan_input(graph, ds.image_shape(), self.calib_batch_size, what)?;
        let norm = data::default_normalize(ds.channels);
        let example: usize = plan.example_shape.iter().product();
        let n = (self.calib_batches * plan.batch).min(ds.len());
        if n == 0 {
            bail!("--calib `{}` has no images", path.display());
        }
        let indices: Vec<usize> = (0..n).collect();
        let mut out = Vec::new();
        for chunk in indices.chunks(plan.batch) {
            let mut buf = Vec::new();
            data::make_batch(&ds, chunk, &norm, None, &mut buf);
            let rows = if plan.fixed_batch { plan.batch } else { chunk.len() };
            buf.resize(rows * example, 0.0);
            let shape: Vec<usize> = [rows].into_iter().chain(plan.example_shape.iter().copied()).collect();
            out.push(vec![shrink_graph::Tensor::f32(shape, buf)]);
        }
        Ok(out)
    }
}
