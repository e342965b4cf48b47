//! `shrink sparseopt`: the linear-model lab (sparse optimization of `min Σ(XW − y)²`).
//!
//! ```text
//! shrink sparseopt --method iht                      # lab problem, keep 2, lr 0.02, 200 steps
//! shrink sparseopt --method l1 --lambda 0.5 --json
//! shrink sparseopt --method prox --threshold 0.01    # --threshold is an alias of --lambda
//! shrink sparseopt --method trimmed-l1 --lambda 5 --plot-dir runs/lab1
//! shrink sparseopt --method gd --problem my_problem.json   # {"x": [[...]], "y": [...]}
//! ```
//!
//! All the logic lives in `shrink_compress::sparseopt` (update rules, validation, the lab's
//! semantics) and `shrink_report::plot` (charts); this module only maps flags to them.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use shrink_compress::sparseopt::{self, Method, Problem, Trace};

/// Update rule names accepted by `--method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodName {
    /// Plain gradient descent.
    #[value(name = "gd")]
    Gd,
    /// Iterative hard thresholding: keep the `--keep` largest weights.
    #[value(name = "iht")]
    Iht,
    /// L1 subgradient descent with strength `--lambda`.
    #[value(name = "l1")]
    L1,
    /// Proximal gradient: soft threshold `--lambda` (alias `--threshold`) per step.
    #[value(name = "prox")]
    Prox,
    /// Trimmed L1: soft threshold `lambda·lr`, the `--keep` largest weights exempt.
    #[value(name = "trimmed-l1")]
    TrimmedL1,
}

/// Arguments of `shrink sparseopt`.
#[derive(Debug, Clone, Args)]
pub struct SparseoptArgs {
    /// Update rule.
    #[arg(long, value_enum)]
    pub method: MethodName,
    /// Penalty strength λ (l1, trimmed-l1), or the per-step soft threshold for prox
    /// (not multiplied by the learning rate).
    #[arg(long, visible_alias = "threshold", allow_negative_numbers = true)]
    pub lambda: Option<f64>,
    /// Number of weights kept (iht) or exempt from the penalty (trimmed-l1).
    #[arg(long, default_value_t = sparseopt::LAB_KEEP)]
    pub keep: usize,
    /// Number of update steps.
    #[arg(long, default_value_t = sparseopt::LAB_STEPS)]
    pub steps: usize,
    /// Learning rate.
    #[arg(long, default_value_t = sparseopt::LAB_LEARNING_RATE, allow_negative_numbers = true)]
    pub lr: f64,
    /// Problem file, `.json` or `.toml`, with `x` (rows) and `y`; default: a built-in 3×5 example problem.
    #[arg(long, value_name = "FILE")]
    pub problem: Option<PathBuf>,
    /// Print one JSON object {"method", "params", "weights", "loss_history"} instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write `<run>-loss.png` and `<run>-weights.png` into this directory.
    #[arg(long, value_name = "DIR")]
    pub plot_dir: Option<PathBuf>,
}

impl SparseoptArgs {
    /// The [`Method`] these flags describe.
    pub fn to_method(&self) -> Result<Method> {
        let lambda = |lab: &str| {
            self.lambda.with_context(|| {
                format!("--method {} needs --lambda (the lab used {lab})", self.method_name())
            })
        };
        let method = match self.method {
            MethodName::Gd | MethodName::Iht if self.lambda.is_some() => {
                bail!("--lambda does not apply to --method {}", self.method_name())
            }
            MethodName::Gd => Method::Gd,
            MethodName::Iht => Method::Iht { keep: self.keep },
            MethodName::L1 => Method::L1 { lambda: lambda("0.2, 0.5, 1, 2")? },
            MethodName::Prox => Method::Prox { threshold: lambda("thresholds 0.004, 0.01, 0.02, 0.04")? },
            MethodName::TrimmedL1 => Method::TrimmedL1 { lambda: lambda("1, 2, 5, 10")?, keep: self.keep },
        };
        Ok(method)
    }

    fn method_name(&self) -> String {
        self.method.to_possible_value().map_or_else(String::new, |v| v.get_name().to_string())
    }
}

/// Runs `shrink sparseopt`, printing to stdout.
pub fn run(args: &SparseoptArgs) -> Result<()> {
    run_to(args, &mut std::io::stdout().lock())
}

/// Runs `shrink sparseopt`, printing the table or JSON to `out` (notes go to stderr).
pub fn run_to(args: &SparseoptArgs, out: &mut dyn Write) -> Result<()> {
    let method = args.to_method()?;
    if let Some(dir) = &args.plot_dir {
        crate::run_dir::check_out_dir("--plot-dir", dir)?;
    }
    let (problem, problem_name) = match &args.problem {
        Some(path) => (Problem::load(path)?, path.display().to_string()),
        None => (Problem::lab(), "lab".to_string()),
    };
    let trace = sparseopt::run(&problem, method, args.lr, args.steps)?;
    if !trace.final_loss().is_finite() {
        eprintln!("warning: the loss diverged (final loss {}); try a smaller --lr", trace.final_loss());
    }

    if let Some(dir) = &args.plot_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create plot directory", dir.display()))?;
        let paths = shrink_report::plot::history_charts(
            dir,
            &file_stem(method),
            "png",
            &method.to_string(),
            &trace.loss_history,
            &trace.weights_history,
        )?;
        for p in paths {
            eprintln!("wrote {}", p.display());
        }
    }

    if args.json {
        serde_json::to_writer(&mut *out, &json_report(method, args, &trace))?;
        writeln!(out)?;
    } else {
        write_table(out, method, args, &problem_name, &problem, &trace)?;
    }
    Ok(())
}

/// `{"method": "l1", "params": {"lambda": 0.5, "lr": 0.02, "steps": 200}, "weights": [...],
/// "loss_history": [L(W_0), ..., L(W_steps)]}`.
fn json_report(method: Method, args: &SparseoptArgs, trace: &Trace) -> serde_json::Value {
    let mut params = serde_json::Map::new();
    for (name, value) in method.params() {
        params.insert(name.to_string(), serde_json::json!(value));
    }
    params.insert("lr".into(), serde_json::json!(args.lr));
    params.insert("steps".into(), serde_json::json!(args.steps));
    serde_json::json!({
        "method": method.name(),
        "params": params,
        "weights": trace.final_weights(),
        "loss_history": trace.loss_history,
    })
}

fn write_table(
    out: &mut dyn Write,
    method: Method,
    args: &SparseoptArgs,
    problem_name: &str,
    problem: &Problem,
    trace: &Trace,
) -> Result<()> {
    let mut params: Vec<String> = method.params().iter().map(|(k, v)| format!("{k}={v}")).collect();
    params.push(format!("lr={}", args.lr));
    params.push(format!("steps={}", args.steps));
    writeln!(out, "method      {}", method.name())?;
    writeln!(out, "params      {}", params.join(", "))?;
    writeln!(out, "problem     {problem_name} ({}×{})", problem.rows(), problem.dim())?;
    writeln!(out)?;
    writeln!(out, "weight      final value")?;
    for (j, w) in trace.final_weights().iter().enumerate() {
        writeln!(out, "{:<10} {w:>15.8}", format!("W[{j}]"))?;
    }
    writeln!(out)?;
    writeln!(out, "final loss  {:.6e}", trace.final_loss())?;
    writeln!(out, "nonzeros    {} of {}", trace.final_nonzeros(), problem.dim())?;
    Ok(())
}

/// `l1-lambda0.5`, `trimmed-l1-lambda1-keep2`, `gd`.
fn file_stem(method: Method) -> String {
    let mut stem = method.name().to_string();
    for (k, v) in method.params() {
        stem.push_str(&format!("-{k}{v}"));
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SparseoptArgs,
    }

    fn parse(argv: &[&str]) -> SparseoptArgs {
        Cli::try_parse_from(std::iter::once("sparseopt").chain(argv.iter().copied())).unwrap().args
    }

    fn output(args: &SparseoptArgs) -> String {
        let mut out = Vec::new();
        run_to(args, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn flags_map_to_methods() {
        assert_eq!(parse(&["--method", "gd"]).to_method().unwrap(), Method::Gd);
        let a = parse(&["--method", "iht"]);
        assert_eq!((a.keep, a.steps, a.lr), (2, 200, 0.02));
        assert_eq!(a.to_method().unwrap(), Method::Iht { keep: 2 });
        assert_eq!(
            parse(&["--method", "prox", "--threshold", "0.01"]).to_method().unwrap(),
            Method::Prox { threshold: 0.01 }
        );
        assert_eq!(
            parse(&["--method", "trimmed-l1", "--lambda", "5", "--keep", "3"]).to_method().unwrap(),
            Method::TrimmedL1 { lambda: 5.0, keep: 3 }
        );
        let err = parse(&["--method", "l1"]).to_method().unwrap_err();
        assert_eq!(err.to_string(), "--method l1 needs --lambda (the lab used 0.2, 0.5, 1, 2)");
        let err = parse(&["--method", "gd", "--lambda", "1"]).to_method().unwrap_err();
        assert_eq!(err.to_string(), "--lambda does not apply to --method gd");
        assert!(Cli::try_parse_from(["sparseopt", "--method", "lasso"]).is_err());
    }

    #[test]
    fn table_and_json() {
        let table = output(&parse(&["--method", "iht"]));
        assert!(table.contains("method      iht"), "{table}");
        assert!(table.contains("params      keep=2, lr=0.02, steps=200"), "{table}");
        assert!(table.lines().any(|l| l.starts_with("W[1] ") && l.ends_with(" -3.00000000")), "{table}");
        assert!(table.contains("nonzeros    2 of 5"), "{table}");

        let json = output(&parse(&["--method", "l1", "--lambda", "0.5", "--json"]));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["method"], "l1");
        assert_eq!(v["params"]["lambda"], 0.5);
        assert_eq!(v["params"]["steps"], 200);
        assert_eq!(v["weights"].as_array().unwrap().len(), 5);
        assert_eq!(v["loss_history"].as_array().unwrap().len(), 201);
        assert_eq!(v["loss_history"][0], 51.0);
    }

    #[test]
    fn invalid_values_are_reported() {
        let run_err = |argv: &[&str]| run_to(&parse(argv), &mut Vec::new()).unwrap_err().to_string();
        assert_eq!(run_err(&["--method", "l1", "--lambda", "-1"]), "lambda must be finite and >= 0, got -1");
        assert_eq!(run_err(&["--method", "gd", "--lr", "0"]), "learning rate must be finite and > 0, got 0");
        assert_eq!(
            run_err(&["--method", "iht", "--keep", "9"]),
            "keep = 9 exceeds the number of weights (5)"
        );
        assert!(run_err(&["--method", "gd", "--problem", "nope.json"]).contains("nope.json"));
    }

    #[test]
    fn plots_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        output(&parse(&["--method", "trimmed-l1", "--lambda", "1", "--plot-dir", d]));
        assert!(dir.path().join("trimmed-l1-lambda1-keep2-loss.png").exists());
        assert!(dir.path().join("trimmed-l1-lambda1-keep2-weights.png").exists());
    }
}
