//! `shrink bench`: training-step or inference throughput of a zoo architecture on synthetic
//! data, with the same flags and JSON output as `bench/torch_bench.py` for side-by-side ratios;
//! given a MODEL file, the latency of its compiled runtime plan instead (`bench_plan.rs`).
use anyhow::{bail, Result};
use clap::Args;
use shrink_ir::candle_core::{Device, Tensor};
use shrink_ir::Mode;
use shrink_train::{eval::loss_and_correct, Optimizer, OptimizerConfig};
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// An ONNX model: measure its compiled runtime plan (latency per --batch size) instead of
    /// training or evaluating a zoo architecture.
    #[arg(value_name = "MODEL")]
    pub path: Option<std::path::PathBuf>,
    /// Runtime plan: batch sizes to measure (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub batch: Vec<usize>,
    /// Runtime plan: timed runs per batch size (the median is reported).
    #[arg(long, default_value_t = 50)]
    pub iters: usize,
    /// Runtime plan: a table of the slowest steps (name, op, kernel, ms, % of total).
    #[arg(long)]
    pub per_layer: bool,
    /// Runtime plan: steps shown by --per-layer in the text table, slowest first (0: all;
    /// --json always lists every step).
    #[arg(long, default_value_t = 15)]
    pub top: usize,
    /// Runtime plan: time the candidate kernels of every layer and keep the fastest.
    #[arg(long)]
    pub tune: bool,
    /// Runtime plan: one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Zoo architecture to benchmark (simple-dnn, lenet-300-100, lenet5, lenet5-bn, lenet5-caffe,
    /// resnet20|32|44|56, vgg9-bn, vgg11-bn, vgg16-bn).
    #[arg(long, default_value = "simple-dnn")]
    pub arch: String,
    /// Benchmark this model file (e.g. a pruned one) instead of a fresh `--arch` model.
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
    /// train (forward + backward + SGD step) or eval (forward only).
    #[arg(long, default_value = "train")]
    pub mode: String,
    /// Examples per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    /// Untimed steps first (caches, allocator, thread pool).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Eval mode: first zero out random weights of every linear layer, keeping this fraction.
    #[arg(long)]
    pub density: Option<f64>,
    /// Eval mode: run linear layers as sparse kernels at or below this density (negative: always
    /// dense; default: the evaluator's threshold).
    #[arg(long, allow_negative_numbers = true)]
    pub sparse_threshold: Option<f64>,
    /// Train mode: materialize weight gradients and update afterwards, instead of applying the
    /// update inside the backward pass (for A/B comparisons).
    #[arg(long)]
    pub update_after_backward: bool,
}

/// Keeps a random `density` fraction (fixed seed) of every linear weight, zeroing the rest.
fn sparsify_linears(model: &shrink_ir::Model, density: f64) -> Result<()> {
    // splitmix64: a fixed, dependency-free stream of uniform draws.
    let mut state = 0u64;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    for node in &model.graph.nodes {
        if !matches!(node.op, shrink_ir::Op::Linear { .. }) {
            continue;
        }
        let p = model.params.get(&format!("{}.weight", node.name))?;
        let t = p.var.as_tensor();
        let v: Vec<f32> = t
            .flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(|w| if uniform() < density { w } else { 0.0 })
            .collect();
        p.var.set(&Tensor::from_vec(v, t.shape(), t.device())?)?;
    }
    Ok(())
}

pub fn run(a: &BenchArgs) -> Result<()> {
    if let Some(path) = &a.path {
        return super::bench_plan::run(a, path);
    }
    if a.batch_size == 0 || a.steps == 0 {
        bail!("--batch-size and --steps must be positive");
    }
    let train = match a.mode.as_str() {
        "train" => true,
        "eval" => false,
        other => bail!("--mode must be train or eval, got `{other}`"),
    };
    let device = Device::Cpu;
    let model = match &a.model {
        Some(path) => shrink_io::load_model(path, None)?,
        None => shrink_ir::zoo::build(&a.arch, 0, &device)?,
    };
    if let Some(d) = a.density {
        if !(0.0..=1.0).contains(&d) || train {
            bail!("--density must be in [0, 1] and needs --mode eval, got {d}");
        }
        sparsify_linears(&model, d)?;
    }
    let threshold = a.sparse_threshold.unwrap_or(shrink_ir::prepared::DEFAULT_MAX_DENSITY);
    let prepared = shrink_ir::Prepared::sparse(&model, threshold)?;
    let mut shape = vec![a.batch_size];
    shape.extend(&model.meta.input_shape);
    let x = Tensor::randn(0f32, 1.0, shape.as_slice(), &device)?;
    let y = Tensor::from_vec(
        (0..a.batch_size as u32).map(|i| i % 10).collect::<Vec<_>>(),
        a.batch_size,
        &device,
    )?;
    let mut opt = Optimizer::new(model.params.trainable(), OptimizerConfig::sgd(0.9, 0.0), 0.01);
    let mut step = |i: usize| -> Result<()> {
        if train {
            let forward = || -> Result<_> {
                let logits = model.forward(&x, Mode::Train { seed: i as u64 })?;
                Ok(loss_and_correct(&logits, &y)?)
            };
            if a.update_after_backward {
                let (loss, _) = forward()?;
                opt.step(&shrink_ir::backward(&loss)?)?;
            } else {
                opt.step_in_backward(forward)?;
            }
        } else {
            let logits = model.forward_prepared(&x, &prepared)?;
            logits.argmax(1)?.to_vec1::<u32>()?;
        }
        Ok(())
    };
    for i in 0..a.warmup {
        step(i)?;
    }
    let start = Instant::now();
    for i in 0..a.steps {
        step(a.warmup + i)?;
    }
    let dt = start.elapsed().as_secs_f64();
    let out = serde_json::json!({
        "impl": format!("shrink {}", env!("CARGO_PKG_VERSION")),
        "arch": model.meta.arch, "mode": a.mode, "batch_size": a.batch_size, "steps": a.steps,
        "threads": rayon_threads(),
        "samples_per_sec": (a.batch_size * a.steps) as f64 / dt,
        "ms_per_step": 1000.0 * dt / a.steps as f64,
        "sparse_layers": prepared.sparse_layers(),
    });
    println!("{out}");
    Ok(())
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}
