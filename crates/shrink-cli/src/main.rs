//! `shrink`: compress neural networks and measure every trade-off. The binary is thin: parse
//! flags, call the library crates, print one-line errors and return an exit code.
mod cmd;
mod common;
mod recipe;
mod run_dir;
mod shard;
mod signals;

use clap::{Parser, Subcommand};
use shrink_ir::alloc::RecyclingAlloc;
use std::process::ExitCode;

/// Recycles large tensor buffers between training steps (no page faults per step); `main`
/// tunes the system allocator under it first.
#[global_allocator]
static ALLOC: RecyclingAlloc = RecyclingAlloc::new();

#[derive(Parser)]
#[command(
    name = "shrink",
    version,
    about = "Compress neural networks and measure every trade-off",
    arg_required_else_help = true
)]
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
    /// Fine-tune any ONNX model (e.g. a graph-pruned one) on a dataset; writes ONNX.
    Finetune(Box<cmd::finetune::FinetuneArgs>),
    /// Quantization-aware training (STE or LSQ, optional distillation); keeps the quantizers.
    #[command(allow_negative_numbers = true)]
    Qat(Box<cmd::qat::QatArgs>),
    /// Export a model as ONNX, PyTorch .pt or safetensors.
    Export(cmd::export::ExportArgs),
    /// Show the per-layer table of a model.
    Info(cmd::info::InfoArgs),
    /// Prune a model: unstructured masks or physically removed neurons/filters/channels.
    Prune(Box<cmd::prune::PruneArgs>),
    /// Post-training weight quantization (clip / symmetric / asymmetric), optionally bit-packed.
    Quantize(cmd::quantize::QuantizeArgs),
    /// Deep Compression weight sharing: per-layer k-means codebooks of 2^bits shared values.
    #[command(allow_negative_numbers = true)]
    Share(cmd::share::ShareArgs),
    /// Mixed precision: per-tensor bit widths from a sensitivity scan under an average-bits budget.
    Mixed(cmd::mixed::MixedArgs),
    /// Weight histograms (all weights and per layer, log counts), optionally vs quantized.
    #[command(allow_negative_numbers = true)]
    Histogram(cmd::histogram::HistogramArgs),
    /// Per-layer pruning sensitivity scan and a per-layer sparsity plan for a size target.
    Sensitivity(cmd::sensitivity::SensitivityArgs),
    /// Sweep a compression setting over a grid and tabulate/plot every trade-off.
    Sweep(cmd::sweep::SweepArgs),
    /// Sparse optimization of a linear least-squares model (GD, IHT, L1, proximal, trimmed L1).
    Sparseopt(cmd::sparseopt::SparseoptArgs),
    /// Measure training-step or inference throughput (compare with bench/torch_bench.py), or a model's runtime-plan latency.
    Bench(cmd::bench::BenchArgs),
    /// Run a model through the compiled runtime on a dataset: accuracy, examples/s, logits.
    Run(cmd::run::RunArgs),
    /// Latency, MACs, params (and accuracy) of an original and a compressed model side by side.
    Compare(cmd::compare::CompareArgs),
    /// Join the shards (--shard I/N) of a sweep, sensitivity scan or mixed search into the whole run's outputs.
    Merge(cmd::merge::MergeArgs),
    /// Run a recipe (model, data, ordered steps in a TOML file) and write report.html.
    Recipe(cmd::recipe::RecipeArgs),
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
    // clap's whole message: the missing arguments by name, "did you mean", the usage line;
    // bare `shrink` prints the usage and the command list (exit 2).
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Train(a) => cmd::train::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Finetune(a) => cmd::finetune::run(a),
        Command::Qat(a) => cmd::qat::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Compare(a) => cmd::compare::run(a),
        Command::Prune(a) => cmd::prune::run(a),
        Command::Quantize(a) => cmd::quantize::run(a),
        Command::Mixed(a) => cmd::mixed::run(a),
        Command::Share(a) => cmd::share::run(a),
        Command::Histogram(a) => cmd::histogram::run(a),
        Command::Sweep(a) => cmd::sweep::run(a),
        Command::Sensitivity(a) => cmd::sensitivity::run(a),
        Command::Sparseopt(a) => cmd::sparseopt::run(a),
        Command::Merge(a) => cmd::merge::run(a),
        Command::Recipe(a) => cmd::recipe::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once: a cause whose text the line already
/// holds (an OS error that a file error quotes) is not repeated.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every flag of every command says what it does in `--help`.
    #[test]
    fn every_flag_has_a_help_line() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} --{}", arg.get_long().unwrap_or(id)));
                }
                // Help speaks the user's words, not the lab reports' internal names.
                let help = format!("{:?} {:?}", arg.get_help(), arg.get_long_help());
                for internal in ["seed 0", "lab (", "issue "] {
                    if help.contains(internal) {
                        missing.push(format!("{path} --{}: says `{internal}`", arg.get_long().unwrap_or(id)));
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "shrink", &mut missing);
        assert!(missing.is_empty(), "flags without a (user-worded) help line:\n{}", missing.join("\n"));
    }

    #[test]
    fn error_line_prints_each_cause_once() {
        let os = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let e = anyhow::Error::new(shrink_io::IoError::file(std::path::Path::new("m.safetensors"), os))
            .context("reading the model");
        assert_eq!(
            error_line(&e),
            "reading the model: m.safetensors: No such file or directory (os error 2)"
        );
    }
}
