//! Recipes: a declarative pipeline in one TOML file (model source, data, preprocessing, ordered
//! steps), validated completely before anything runs ([`spec`]), each step calling a command's
//! implementation in this process ([`steps`]), each step's output cached under the run
//! directory by a content hash of its parameters and inputs ([`cache`]), and one
//! self-contained `report.html` at the end ([`report`]).
pub mod cache;
pub mod quick;
pub mod report;
pub mod spec;
pub mod steps;

use anyhow::{Context, Result};
use spec::Plan;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What became of one step in this run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The step's finished directory.
    pub dir: PathBuf,
    /// `false` when a previous run's output was reused.
    pub ran: bool,
    /// Seconds this run spent on it.
    pub seconds: f64,
}

/// Runs `plan` in `out` (validated already); returns each step's outcome.
pub fn execute(plan: &Plan, out: &Path) -> Result<Vec<Outcome>> {
    std::fs::create_dir_all(out.join("steps"))
        .with_context(|| format!("-o: creating `{}`", out.display()))?;
    let t = Instant::now();
    let data_key = cache::data_key(&plan.data)?;
    let model_key = match &plan.model_file {
        Some(f) => crate::run_dir::file_sha256(f)?,
        None => String::new(),
    };
    let data = match plan.quick {
        Some(q) => {
            let tag = format!("{}-{}-{}", &data_key[..12], q.train_examples, q.test_examples);
            quick::subset(&plan.data, out, &tag, q)?
        }
        None => plan.data.clone(),
    };
    eprintln!(
        "recipe {}: {} steps, validated and hashed in {:.2}s",
        plan.name,
        plan.steps.len(),
        t.elapsed().as_secs_f64()
    );
    let mut keys: Vec<String> = Vec::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let key = cache::step_key(plan, step, &keys, &data_key, &model_key)?;
        let stem = format!("{:02}-{}-{}", i + 1, step.name, &key[..12]);
        let dir = out.join("steps").join(&stem);
        let dirs: Vec<PathBuf> = outcomes.iter().map(|o| o.dir.clone()).collect();
        let label = format!("[{}/{}] {}", i + 1, plan.steps.len(), step.name);
        if dir.is_dir() {
            eprintln!("{label}: done before, reusing {}", dir.display());
            outcomes.push(Outcome { dir, ran: false, seconds: 0.0 });
            keys.push(key);
            continue;
        }
        eprintln!("{label}: {}", step.kind.name());
        let t = Instant::now();
        let partial = out.join("steps").join(format!(".partial-{stem}"));
        cache::prepare_partial(&partial, step.kind)?;
        let input = steps::input_path(plan, step.input, &dirs);
        let against = steps::input_path(plan, step.against, &dirs);
        let paths =
            steps::Paths { dir: &partial, data: &data, input: input.as_deref(), against: against.as_deref() };
        let argv = steps::argv(plan, step, &paths)?;
        steps::call(step, &argv, false, Some(&partial.join("compare.json"))).with_context(|| {
            format!("{}:{}: step {} ({})", plan.file.display(), step.line, i + 1, step.name)
        })?;
        report::write_summary(step, &partial, &data)?;
        std::fs::rename(&partial, &dir).with_context(|| format!("renaming `{}`", partial.display()))?;
        let seconds = t.elapsed().as_secs_f64();
        eprintln!("{label}: finished in {seconds:.1}s");
        outcomes.push(Outcome { dir, ran: true, seconds });
        keys.push(key);
    }
    Ok(outcomes)
}
