//! Step kinds and how each calls its command: a step's keys are the command's flags, turned into
//! an argument list and parsed by the command's own clap definition, then the command's `run`
//! is called in this process.
//!
//! Adding a kind is one variant, one line in [`StepKind::NAMES`] and one arm in [`call`].
use super::spec::{Input, Plan, Step};
use anyhow::{bail, Result};
use clap::{Args, CommandFactory, Parser};
use std::path::{Path, PathBuf};

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// `shrink train`: the `[model]` architecture from scratch (or `[model] file` as init).
    Train,
    /// `shrink prune`.
    Prune,
    /// `shrink sensitivity`: per-layer pruning scan.
    Sensitivity,
    /// `shrink quantize`.
    Quantize,
    /// `shrink sweep quant|prune` (`grid = "quant"` or `"prune"`).
    Sweep,
    /// `shrink histogram`: weight histograms.
    Histogram,
    /// `shrink train --init`: more epochs on the step's input model.
    Finetune,
    /// `shrink export` (default `--format shrink`, the deploy file).
    Export,
    /// `shrink compare`: the input model against `against`.
    Compare,
    /// `shrink qat`: quantization-aware training (STE or LSQ) of the step's input model;
    /// `teacher = true` distils from that input model.
    Qat,
}

/// Flags the recipe sets itself (paths between steps, output formats).
const RESERVED: [&str; 13] = [
    "model",
    "output",
    "out-dir",
    "data",
    "json",
    "force",
    "shard",
    "init",
    "arch",
    "graph",
    "original",
    "compressed",
    "resume",
];

impl StepKind {
    /// Every kind's name, in the order of the enum.
    pub const NAMES: [&'static str; 10] = [
        "train",
        "prune",
        "sensitivity",
        "quantize",
        "sweep",
        "histogram",
        "finetune",
        "export",
        "compare",
        "qat",
    ];
    const ALL: [StepKind; 10] = [
        StepKind::Train,
        StepKind::Prune,
        StepKind::Sensitivity,
        StepKind::Quantize,
        StepKind::Sweep,
        StepKind::Histogram,
        StepKind::Finetune,
        StepKind::Export,
        StepKind::Compare,
        StepKind::Qat,
    ];

    /// Parses a `kind = ...` value.
    pub fn parse(s: &str) -> Result<StepKind> {
        let Some(i) = Self::NAMES.iter().position(|n| *n == s) else {
            bail!("unknown step kind `{s}` (one of {})", Self::NAMES.join(", "))
        };
        Ok(Self::ALL[i])
    }

    /// The kind's name in recipes.
    pub fn name(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|k| *k == self).unwrap_or(0)]
    }

    /// Whether the step reads a model.
    pub fn consumes_model(self) -> bool {
        self != StepKind::Train
    }

    /// Whether the step writes a model later steps can read (`model.safetensors`).
    pub fn produces_model(self) -> bool {
        matches!(
            self,
            StepKind::Train | StepKind::Prune | StepKind::Quantize | StepKind::Finetune | StepKind::Qat
        )
    }

    /// Flags the recipe sets for this kind (beyond [`RESERVED`]).
    fn reserved(self, flag: &str) -> bool {
        RESERVED.contains(&flag)
            || (matches!(self, StepKind::Sweep | StepKind::Histogram) && flag == "format")
    }
}

/// A command's flags under a name clap can parse (the command's own definition).
#[derive(Parser)]
#[command(allow_negative_numbers = true, no_binary_name = true)]
struct Wrap<T: Args> {
    #[command(flatten)]
    args: T,
}

/// Parses `argv` with `T`'s flags and, unless `dry`, runs `f`.
fn parse_run<T: Args>(argv: &[String], dry: bool, f: impl FnOnce(&T) -> Result<()>) -> Result<()> {
    let w = Wrap::<T>::try_parse_from(argv).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("invalid flags").trim_start_matches("error: ").to_string();
        anyhow::anyhow!("{first}")
    })?;
    if dry {
        return Ok(());
    }
    f(&w.args)
}

/// The long flags of `T`.
fn longs<T: Args>() -> Vec<String> {
    let cmd = Wrap::<T>::command();
    let mut out: Vec<String> = cmd.get_arguments().filter_map(|a| a.get_long().map(String::from)).collect();
    for sub in cmd.get_subcommands() {
        out.extend(sub.get_arguments().filter_map(|a| a.get_long().map(String::from)));
    }
    out
}

/// The long flags a step of `kind` (sweep: of `grid`) accepts.
fn known_flags(kind: StepKind, grid: &str) -> Vec<String> {
    use crate::cmd::*;
    match kind {
        StepKind::Train | StepKind::Finetune => longs::<train::TrainArgs>(),
        StepKind::Prune => longs::<prune::PruneArgs>(),
        StepKind::Sensitivity => longs::<sensitivity::SensitivityArgs>(),
        StepKind::Quantize => longs::<quantize::QuantizeArgs>(),
        StepKind::Sweep if grid == "prune" => longs::<sweep::SweepPruneArgs>(),
        StepKind::Sweep => longs::<sweep_quant::SweepQuantArgs>(),
        StepKind::Histogram => longs::<histogram::HistogramArgs>(),
        StepKind::Export => longs::<export::ExportArgs>(),
        StepKind::Compare => longs::<compare::CompareArgs>(),
        StepKind::Qat => longs::<qat::QatArgs>(),
    }
}

/// Checks that `flag` is one a step of `kind` may set.
pub fn check_key(kind: StepKind, grid: &str, flag: &str) -> Result<()> {
    if kind == StepKind::Sweep && flag == "grid" {
        if grid != "quant" && grid != "prune" {
            bail!("`grid` must be \"quant\" or \"prune\"");
        }
        return Ok(());
    }
    if kind.reserved(flag) {
        bail!("`{}` is set by the recipe, not by a step", flag.replace('-', "_"));
    }
    let known = known_flags(kind, grid);
    if !known.iter().any(|k| k == flag) {
        let mut keys: Vec<String> =
            known.iter().filter(|k| !kind.reserved(k) && *k != "help").map(|k| k.replace('-', "_")).collect();
        keys.sort();
        keys.dedup();
        bail!(
            "unknown key `{}` for a {} step (known: {})",
            flag.replace('-', "_"),
            kind.name(),
            keys.join(", ")
        );
    }
    Ok(())
}

/// The command-line words of one `flag = value` (`true` → the bare flag, `false` → nothing,
/// arrays → comma-joined).
pub fn flag_values(flag: &str, value: &toml::Value) -> Result<Vec<String>> {
    let scalar = |v: &toml::Value| -> Result<String> {
        Ok(match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => format!("{f:?}"),
            _ => {
                bail!("`{}` must be a string, a number, a boolean or a list of them", flag.replace('-', "_"))
            }
        })
    };
    Ok(match value {
        toml::Value::Boolean(true) => vec![format!("--{flag}")],
        toml::Value::Boolean(false) => Vec::new(),
        toml::Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(scalar).collect::<Result<_>>()?;
            vec![format!("--{flag}"), parts.join(",")]
        }
        v => vec![format!("--{flag}"), scalar(v)?],
    })
}

/// Paths a step runs with.
pub struct Paths<'a> {
    /// The step's output directory.
    pub dir: &'a Path,
    /// The dataset (the quick subset under `--quick`).
    pub data: &'a Path,
    /// The input model (and compare's reference).
    pub input: Option<&'a Path>,
    pub against: Option<&'a Path>,
}

/// The model file a model-writing step leaves in its directory.
pub const MODEL_FILE: &str = "model.safetensors";

/// The output file of an export step.
pub fn export_file(step: &Step) -> String {
    let format = step.params.get("format").and_then(|v| v.as_str()).unwrap_or("shrink");
    let ext = match format {
        "onnx" => "onnx",
        "pt" => "pt",
        "safetensors" => "safetensors",
        _ => "shrink",
    };
    format!("model.{ext}")
}

fn csv(v: &[f64]) -> String {
    v.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(",")
}

/// The argument list of `step` (positional words first, then the recipe's flags, then the
/// step's own).
pub fn argv(plan: &Plan, step: &Step, p: &Paths) -> Result<Vec<String>> {
    let s = |x: &Path| x.display().to_string();
    let dir = p.dir;
    let input = p.input.map(s).unwrap_or_default();
    let data = s(p.data);
    let mut a: Vec<String> = Vec::new();
    let norm = |a: &mut Vec<String>| {
        if let Some(m) = &plan.mean {
            a.extend(["--mean".into(), csv(m)]);
        }
        if let Some(v) = &plan.std {
            a.extend(["--std".into(), csv(v)]);
        }
    };
    match step.kind {
        StepKind::Train => {
            match (&plan.model_file, &plan.arch) {
                (Some(f), _) => a.extend(["--init".into(), s(f)]),
                (None, Some(arch)) => a.extend(["--arch".into(), arch.clone()]),
                (None, None) => bail!("train needs [model] arch or file"),
            }
            a.extend(["--data".into(), data, "--output".into(), s(&dir.join(MODEL_FILE))]);
            norm(&mut a);
        }
        StepKind::Finetune => {
            a.extend([
                "--init".into(),
                input,
                "--data".into(),
                data,
                "--output".into(),
                s(&dir.join(MODEL_FILE)),
            ]);
            norm(&mut a);
        }
        StepKind::Prune | StepKind::Quantize => {
            a.extend([input, "--output".into(), s(&dir.join(MODEL_FILE))]);
            if step.kind == StepKind::Quantize && step.params.contains_key("activations") {
                a.extend(["--data".into(), data]);
            }
        }
        StepKind::Sensitivity => a.extend([input, "--data".into(), data, "--out-dir".into(), s(dir)]),
        StepKind::Sweep => {
            let grid = step.params.get("grid").and_then(|v| v.as_str()).unwrap_or("quant");
            a.extend([grid.into(), input, "--data".into(), data, "--out-dir".into(), s(dir)]);
            a.extend(["--format".into(), "svg".into()]);
        }
        StepKind::Histogram => {
            a.extend([input, "--output".into(), s(dir), "--format".into(), "svg".into()]);
        }
        StepKind::Export => {
            a.extend([input, "--output".into(), s(&dir.join(export_file(step)))]);
            if !step.params.contains_key("format") {
                a.extend(["--format".into(), "shrink".into()]);
            }
        }
        StepKind::Compare => {
            let against = p.against.map(s).unwrap_or_default();
            a.extend([against, input, "--data".into(), data, "--json".into()]);
        }
        StepKind::Qat => {
            a.extend([input.clone(), "--data".into(), data, "--output".into(), s(&dir.join(MODEL_FILE))]);
            norm(&mut a);
            if step.params.get("teacher").and_then(|v| v.as_bool()) == Some(true) {
                a.extend(["--teacher".into(), input]);
            }
        }
    }
    for (flag, value) in &step.params {
        if flag == "grid" || (step.kind == StepKind::Qat && flag == "teacher" && value.is_bool()) {
            continue;
        }
        a.extend(flag_values(flag, value)?);
    }
    Ok(a)
}

/// Parses `step`'s flags with its command's parser, on placeholder paths (nothing runs).
pub fn dry_parse(plan: &Plan, step: &Step) -> Result<()> {
    let placeholder = PathBuf::from("model.safetensors");
    let p = Paths {
        dir: Path::new("out"),
        data: &plan.data,
        input: step.input.map(|_| placeholder.as_path()),
        against: step.against.map(|_| placeholder.as_path()),
    };
    call(step, &argv(plan, step, &p)?, true, None)
}

/// Parses and (unless `dry`) runs `step` with `argv`; compare's JSON goes to `json_out`.
pub fn call(step: &Step, argv: &[String], dry: bool, json_out: Option<&Path>) -> Result<()> {
    use crate::cmd::*;
    match step.kind {
        StepKind::Train | StepKind::Finetune => parse_run::<train::TrainArgs>(argv, dry, train::run),
        StepKind::Prune => parse_run::<prune::PruneArgs>(argv, dry, prune::run),
        StepKind::Sensitivity => parse_run::<sensitivity::SensitivityArgs>(argv, dry, sensitivity::run),
        StepKind::Quantize => parse_run::<quantize::QuantizeArgs>(argv, dry, quantize::run),
        StepKind::Sweep => parse_run::<sweep::SweepArgs>(argv, dry, sweep::run),
        StepKind::Histogram => parse_run::<histogram::HistogramArgs>(argv, dry, histogram::run),
        StepKind::Export => parse_run::<export::ExportArgs>(argv, dry, export::run),
        StepKind::Compare => parse_run::<compare::CompareArgs>(argv, dry, |a| {
            let mut out = Vec::new();
            compare::run_to(a, &mut out)?;
            match json_out {
                Some(path) => shrink_io::atomic::write_atomic(path, &out).map_err(Into::into),
                None => Ok(()),
            }
        }),
        StepKind::Qat => parse_run::<qat::QatArgs>(argv, dry, qat::run),
    }
}

/// The input model path of `step` given the finished steps' directories.
pub fn input_path(plan: &Plan, input: Option<Input>, dirs: &[PathBuf]) -> Option<PathBuf> {
    match input? {
        Input::Source => plan.model_file.clone(),
        Input::Step(j) => Some(dirs[j].join(MODEL_FILE)),
    }
}
