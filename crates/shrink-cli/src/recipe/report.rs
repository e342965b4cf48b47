//! The recipe's report: a summary of every model along the pipeline, then each step's tables
//! and charts, written as one self-contained `report.html` plus every table as CSV and JSON
//! under `tables/`.
use super::spec::{Plan, Step};
use super::steps::{self, StepKind};
use super::Outcome;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use shrink_io::atomic::write_atomic;
use shrink_report::html::{Figure, Report, Section, Table};
use std::path::{Path, PathBuf};

/// What the report shows of a model-writing (or exporting) step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Test accuracy on the run's data (absent for deploy files).
    pub accuracy: Option<f64>,
    pub params: Option<usize>,
    pub nonzero_params: Option<usize>,
    /// Size of the step's model (or deploy) file in bytes.
    pub file_bytes: u64,
}

const SUMMARY: &str = "summary.json";

/// Measures the model a finished step wrote (accuracy on the test split, parameter counts,
/// file size) into `dir/summary.json`.
pub fn write_summary(step: &Step, dir: &Path, data: &Path) -> Result<()> {
    let summary = if step.kind.produces_model() {
        let path = dir.join(steps::MODEL_FILE);
        let model = shrink_io::load_model(&path, None)?;
        let ds = crate::common::load_data(data, shrink_io::data::Split::Test)?;
        let norm = crate::common::normalization(&model, None, None)?;
        let r = shrink_train::evaluate(&model, &ds, &norm, 256, None)?;
        let s = shrink_ir::stats::model_stats(&model)?;
        Summary {
            accuracy: Some(r.accuracy),
            params: Some(s.params),
            nonzero_params: Some(s.nonzero_params),
            file_bytes: std::fs::metadata(&path)?.len(),
        }
    } else if step.kind == StepKind::Export {
        Summary {
            file_bytes: std::fs::metadata(dir.join(steps::export_file(step)))?.len(),
            ..Default::default()
        }
    } else {
        return Ok(());
    };
    write_atomic(&dir.join(SUMMARY), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    Ok(())
}

fn read_summary(dir: &Path) -> Option<Summary> {
    serde_json::from_str(&std::fs::read_to_string(dir.join(SUMMARY)).ok()?).ok()
}

/// Writes `out/report.html` and `out/tables/*.{csv,json}`; returns the report's path.
pub fn write(plan: &Plan, out: &Path, outcomes: &[Outcome]) -> Result<PathBuf> {
    let mut sections = vec![pipeline_section(plan, out, outcomes)];
    for (i, (step, o)) in plan.steps.iter().zip(outcomes).enumerate() {
        let mut s = step_section(step, &o.dir)?;
        s.title = format!("{}. {} ({})", i + 1, step.name, step.kind.name());
        sections.push(s);
    }
    let tables_dir = out.join("tables");
    std::fs::create_dir_all(&tables_dir)?;
    for (i, s) in sections.iter().enumerate() {
        for (j, t) in s.tables.iter().enumerate() {
            let stem = if i == 0 {
                "pipeline".to_string()
            } else {
                format!("{:02}-{}-{}", i, plan.steps[i - 1].name, j + 1)
            };
            write_atomic(&tables_dir.join(format!("{stem}.csv")), t.to_csv().as_bytes())?;
            write_atomic(&tables_dir.join(format!("{stem}.json")), t.to_json().as_bytes())?;
        }
    }
    let mut paragraphs = Vec::new();
    if !plan.description.is_empty() {
        paragraphs.push(plan.description.clone());
    }
    paragraphs.push(format!(
        "Recipe {} on data {}{}. Every table is also under tables/ as CSV and JSON; every chart \
         sits in its step's directory as SVG and PNG.",
        plan.file.display(),
        plan.data.display(),
        match plan.quick {
            Some(q) => format!(
                " (quick form: the first {} training and {} test examples, shortened steps)",
                q.train_examples, q.test_examples
            ),
            None => String::new(),
        }
    ));
    let title = if plan.title.is_empty() { plan.name.clone() } else { plan.title.clone() };
    let report = Report { title, paragraphs, sections };
    let path = out.join("report.html");
    // Written last, through shrink's temp-file registry: an interrupt leaves no half report.
    write_atomic(&path, report.to_html()?.as_bytes())?;
    Ok(path)
}

fn pipeline_section(plan: &Plan, out: &Path, outcomes: &[Outcome]) -> Section {
    let header = [
        "step",
        "kind",
        "status",
        "time (s)",
        "accuracy (%)",
        "params",
        "nonzero params",
        "file (MB)",
        "first model / this file",
        "directory",
    ];
    let mut first_bytes: Option<u64> = None;
    let mut rows = Vec::new();
    for (i, (step, o)) in plan.steps.iter().zip(outcomes).enumerate() {
        let s = read_summary(&o.dir);
        if let Some(s) = &s {
            if step.kind.produces_model() && first_bytes.is_none() {
                first_bytes = Some(s.file_bytes);
            }
        }
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        rows.push(vec![
            format!("{}. {}", i + 1, step.name),
            step.kind.name().to_string(),
            if o.ran { "ran".into() } else { "reused".into() },
            format!("{:.1}", o.seconds),
            opt(s.as_ref().and_then(|s| s.accuracy).map(|a| format!("{:.2}", 100.0 * a))),
            opt(s.as_ref().and_then(|s| s.params).map(|p| p.to_string())),
            opt(s.as_ref().and_then(|s| s.nonzero_params).map(|p| p.to_string())),
            opt(s.as_ref().map(|s| format!("{:.3}", s.file_bytes as f64 / 1048576.0))),
            opt(s
                .as_ref()
                .zip(first_bytes)
                .map(|(s, f)| format!("{:.2}x", f as f64 / s.file_bytes.max(1) as f64))),
            o.dir.strip_prefix(out).unwrap_or(&o.dir).display().to_string(),
        ]);
    }
    Section {
        title: "Pipeline".into(),
        paragraphs: vec![
            "Each step, whether this run computed it or reused a finished result, the test accuracy \
             of every model it wrote, and its file size."
                .into(),
        ],
        tables: vec![Table {
            caption: "Steps and models".into(),
            header: header.map(String::from).into(),
            rows,
        }],
        figures: Vec::new(),
    }
}

/// The tables and figures a step left in `dir`.
fn step_section(step: &Step, dir: &Path) -> Result<Section> {
    let mut section = Section::default();
    let mut flags: Vec<String> = step
        .params
        .iter()
        .map(|(k, v)| {
            let v = serde_json::to_string(v).unwrap_or_default();
            format!("{} = {v}", k.replace('-', "_"))
        })
        .collect();
    if flags.is_empty() {
        flags.push("defaults".into());
    }
    section.paragraphs.push(format!("Settings: {}.", flags.join(", ")));
    let found = dir_section(dir)?;
    section.tables = found.tables;
    section.figures = found.figures;
    Ok(section)
}

/// Writes `dir/report.html` for the results a command left in `dir` (a sweep's tables and
/// charts): the report every sweep writes beside its tables.
pub fn write_dir_report(dir: &Path, title: &str, intro: &str) -> Result<()> {
    let mut section = dir_section(dir)?;
    section.title = "Tables and charts".into();
    let report = Report { title: title.into(), paragraphs: vec![intro.into()], sections: vec![section] };
    write_atomic(&dir.join("report.html"), report.to_html()?.as_bytes())?;
    Ok(())
}

/// Every table (CSV, Markdown without a CSV twin, a sensitivity scan, a comparison) and chart
/// (SVG, PNG without an SVG twin) in `dir`.
fn dir_section(dir: &Path) -> Result<Section> {
    let mut section = Section::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for f in &files {
        let n = name(f);
        if n.starts_with('.') {
            continue;
        }
        match f.extension().and_then(|e| e.to_str()) {
            Some("csv") => section.tables.push(Table::from_csv(&n, &std::fs::read_to_string(f)?)),
            Some("md") if !f.with_extension("csv").exists() => {
                section.tables.extend(markdown_tables(&n, &std::fs::read_to_string(f)?));
            }
            Some("svg") => section.figures.push(Figure { caption: n.clone(), path: f.clone() }),
            Some("png") if !f.with_extension("svg").exists() => {
                section.figures.push(Figure { caption: n.clone(), path: f.clone() })
            }
            _ => {}
        }
    }
    if let Some(t) = sensitivity_table(&dir.join("sensitivity.json")) {
        section.tables.push(t);
    }
    if let Some(t) = compare_table(&dir.join("compare.json")) {
        section.tables.push(t);
    }
    Ok(section)
}

/// The pipe tables of a Markdown file.
fn markdown_tables(caption: &str, md: &str) -> Vec<Table> {
    let mut tables = Vec::new();
    let mut current: Option<Table> = None;
    for line in md.lines().map(str::trim) {
        if !line.starts_with('|') {
            tables.extend(current.take());
            continue;
        }
        let cells: Vec<String> = line.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect();
        if cells.iter().all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':'))) {
            continue;
        }
        match &mut current {
            None => current = Some(Table { caption: caption.into(), header: cells, rows: Vec::new() }),
            Some(t) => t.rows.push(cells),
        }
    }
    tables.extend(current);
    tables
}

/// `shrink sensitivity`'s curves as a table: one row per layer, one column per sparsity.
fn sensitivity_table(path: &Path) -> Option<Table> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let curves = v.get("curves")?.as_array()?;
    let first = curves.first()?.get("points")?.as_array()?;
    let mut header = vec!["layer".to_string()];
    header.extend(first.iter().map(|p| format!("{} sparse (%)", p[0])));
    let rows = curves
        .iter()
        .map(|c| {
            let mut row = vec![c["layer"].as_str().unwrap_or("?").to_string()];
            for p in c["points"].as_array().into_iter().flatten() {
                row.push(format!("{:.2}", 100.0 * p[1].as_f64().unwrap_or(f64::NAN)));
            }
            row
        })
        .collect();
    Some(Table { caption: "accuracy with one layer pruned".into(), header, rows })
}

/// `shrink compare --json` as a table.
fn compare_table(path: &Path) -> Option<Table> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let (o, c) = (&v["original"], &v["compressed"]);
    let num = |x: &serde_json::Value, scale: f64| {
        x.as_f64().map(|f| format!("{:.4}", f * scale)).unwrap_or("-".into())
    };
    let rows = [
        ("latency (ms)", "latency_ms", 1.0),
        ("MACs (M)", "macs", 1e-6),
        ("params (M)", "params", 1e-6),
        ("nonzero params (M)", "nonzero_params", 1e-6),
        ("accuracy (%)", "accuracy", 100.0),
    ]
    .iter()
    .map(|(label, key, s)| vec![label.to_string(), num(&o[key], *s), num(&c[key], *s)])
    .collect();
    Some(Table {
        caption: "original vs compressed".into(),
        header: vec!["".into(), "original".into(), "compressed".into()],
        rows,
    })
}
