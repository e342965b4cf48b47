//! `shrink recipe RUN.toml`: validate a recipe, run its steps (reusing finished ones) and write
//! `report.html`. The file format is documented in README.md and `recipes/`.
use crate::recipe;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct RecipeArgs {
    /// The recipe file (TOML): model, data and ordered steps.
    pub recipe: PathBuf,
    /// The quick form: the first examples of each split only (the recipe's [quick] table,
    /// default 2,000 train and 500 test) and each step's `quick` overrides (fewer epochs).
    #[arg(long)]
    pub quick: bool,
    /// Run directory: step outputs, report.html, tables/ (default: runs/NAME, or runs/NAME-quick).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Only validate the recipe (keys, values, files, step order) and list its steps.
    #[arg(long)]
    pub check: bool,
}

pub fn run(a: &RecipeArgs) -> Result<()> {
    let plan = recipe::spec::load(&a.recipe, a.quick)?;
    if a.check {
        for (i, s) in plan.steps.iter().enumerate() {
            println!("{}. {} ({})", i + 1, s.name, s.kind.name());
        }
        eprintln!("{}: valid, {} steps", a.recipe.display(), plan.steps.len());
        return Ok(());
    }
    let out = a.output.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(if a.quick { format!("{}-quick", plan.name) } else { plan.name.clone() })
    });
    crate::run_dir::check_out_dir("-o", &out)?;
    // Charts go into the report as SVG and next to it as PNG too.
    shrink_report::plot::set_png_companions(true);
    let outcomes = recipe::execute(&plan, &out)?;
    let report = recipe::report::write(&plan, &out, &outcomes)?;
    println!("{}", report.display());
    eprintln!("report: {}", report.display());
    Ok(())
}
