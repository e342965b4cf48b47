//! `shrink`: compress neural networks and measure every trade-off. The binary is thin: parse
//! flags, call the library crates, print one-line errors and return an exit code.
mod cmd;
mod common;
mod run_dir;
mod signals;

use clap::{Parser, Subcommand};
use shrink_ir::alloc::RecyclingAlloc;
use std::process::ExitCode;

/// Recycles large tensor buffers between training steps (no page faults per step); `main`
/// tunes the system allocator under it first.
#[global_allocator]
static ALLOC: RecyclingAlloc = RecyclingAlloc::new();

#[derive(Parser)]
#[command(name = "shrink", version, about = "Compress neural networks and measure every trade-off")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a zoo architecture (or fine-tune a model file) on a dataset.
    #[command(allow_negative_numbers = true)]
    Train(Box<cmd::train::TrainArgs>),
    /// Evaluate a model: accuracy, loss, size, MACs, latency.
    Eval(cmd::eval::EvalArgs),
    /// Export a model as ONNX or safetensors.
    Export(cmd::export::ExportArgs),
    /// Show the per-layer table of a model.
    Info(cmd::info::InfoArgs),
    /// Prune a model: unstructured masks or physically removed neurons/filters/channels.
    Prune(cmd::prune::PruneArgs),
    /// Post-training weight quantization (clip / symmetric / asymmetric), optionally bit-packed.
    Quantize(cmd::quantize::QuantizeArgs),
    /// Mixed precision: per-tensor bit widths from a sensitivity scan under an average-bits budget.
    Mixed(cmd::mixed::MixedArgs),
    /// Weight histograms (all weights and per layer, log counts), optionally vs quantized.
    #[command(allow_negative_numbers = true)]
    Histogram(cmd::histogram::HistogramArgs),
    /// Per-layer pruning sensitivity scan and a per-layer sparsity plan for a size target.
    Sensitivity(cmd::sensitivity::SensitivityArgs),
    /// Sweep a compression setting over a grid and tabulate/plot every trade-off.
    Sweep(cmd::sweep::SweepArgs),
    /// The sparse-optimization lab on a linear model (GD, IHT, L1, proximal, trimmed L1).
    Sparseopt(cmd::sparseopt::SparseoptArgs),
    /// Measure training-step or inference throughput (compare with bench/torch_bench.py).
    Bench(cmd::bench::BenchArgs),
    /// Latency, MACs, params (and accuracy) of an original and a compressed model side by side.
    Compare(cmd::compare::CompareArgs),
}

fn main() -> ExitCode {
    // Heap-served buffers below 32 MB, recycled ones above (see shrink_ir::alloc).
    shrink_ir::alloc::tune_system_allocator();
    // Rust ignores SIGPIPE, so printing into a closed pipe (`shrink info M | head -1`) would
    // panic; the default action ends the process quietly like any Unix tool. Output files are
    // never at risk: they are written to a temp file and renamed.
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Interrupts remove the temp files in flight before exiting (130 for SIGINT, 143 for SIGTERM).
    signals::install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: clap's first line names the flag and the bad value.
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: invalid arguments"));
            return ExitCode::from(2);
        }
    };
    let result = match &cli.command {
        Command::Train(a) => cmd::train::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Compare(a) => cmd::compare::run(a),
        Command::Prune(a) => cmd::prune::run(a),
        Command::Quantize(a) => cmd::quantize::run(a),
        Command::Mixed(a) => cmd::mixed::run(a),
        Command::Histogram(a) => cmd::histogram::run(a),
        Command::Sweep(a) => cmd::sweep::run(a),
        Command::Sensitivity(a) => cmd::sensitivity::run(a),
        Command::Sparseopt(a) => cmd::sparseopt::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": ").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
