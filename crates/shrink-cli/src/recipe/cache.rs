//! Step caching: a step's directory is named by a hash of its kind, its flags and the hashes of
//! what it reads (the previous steps' keys, the model file's content, the data's content), and
//! appears by an atomic rename once the step has finished. A re-run finds the directories of
//! finished steps and skips them; an interrupted step left only a `.partial-*` directory.
use super::spec::{Input, Plan, Step};
use super::steps::StepKind;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Bumped when a step's outputs change meaning, so old caches are not reused.
const VERSION: u32 = 1;

/// The cache key of `step` (hex SHA-256); `keys` are the earlier steps' keys.
pub fn step_key(
    plan: &Plan,
    step: &Step,
    keys: &[String],
    data_key: &str,
    model_key: &str,
) -> Result<String> {
    let input_key = |i: Option<Input>| match i {
        None => String::new(),
        Some(Input::Source) => model_key.to_string(),
        Some(Input::Step(j)) => keys[j].clone(),
    };
    let params: serde_json::Map<String, serde_json::Value> =
        step.params.iter().map(|(k, v)| Ok((k.clone(), serde_json::to_value(v)?))).collect::<Result<_>>()?;
    let id = serde_json::json!({
        "version": VERSION,
        "shrink": env!("CARGO_PKG_VERSION"),
        "kind": step.kind.name(),
        "params": params,
        "input": input_key(step.input),
        "against": input_key(step.against),
        "data": data_key,
        "quick": plan.quick,
        "arch": plan.arch,
        "model": model_key,
        "mean": plan.mean,
        "std": plan.std,
    });
    Ok(hex(&Sha256::digest(id.to_string().as_bytes())))
}

/// A content hash of a dataset file or directory (every file's relative path, size and bytes).
pub fn data_key(path: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut files = Vec::new();
    collect(path, path, &mut files)?;
    files.sort();
    for rel in files {
        let full = if rel.is_empty() { path.to_path_buf() } else { path.join(&rel) };
        let bytes = std::fs::read(&full).with_context(|| format!("reading `{}`", full.display()))?;
        h.update(rel.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(hex(&h.finalize()))
}

fn collect(root: &Path, p: &Path, out: &mut Vec<String>) -> Result<()> {
    if p.is_file() {
        out.push(p.strip_prefix(root).unwrap_or(p).display().to_string());
        return Ok(());
    }
    for entry in std::fs::read_dir(p).with_context(|| format!("reading `{}`", p.display()))? {
        collect(root, &entry?.path(), out)?;
    }
    Ok(())
}

/// Makes the working directory of a step that is about to run. Sweeps and sensitivity scans
/// keep an interrupted attempt's directory (they resume from its journal); other steps start
/// afresh (their files are written atomically, so nothing half-written is there either way).
pub fn prepare_partial(dir: &Path, kind: StepKind) -> Result<()> {
    let resumable = matches!(kind, StepKind::Sweep | StepKind::Sensitivity);
    if dir.exists() && !resumable {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing `{}`", dir.display()))?;
    }
    if dir.exists() {
        // PNG twins of SVG charts are the recipe's, not the command's: the resumed command
        // would take them for foreign files. They are drawn again with the charts.
        for entry in std::fs::read_dir(dir)? {
            let p = entry?.path();
            if p.extension().is_some_and(|e| e == "png") && p.with_extension("svg").exists() {
                std::fs::remove_file(&p)?;
            }
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
