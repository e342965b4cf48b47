//! `shrink merge`: joins the directories of a sweep run as shards (`--shard I/N`) into the
//! files the whole run writes.
//!
//! The shards must be one run's: the same command, model (by content), data and flags apart
//! from `--shard`, the same N, every index 0..N-1 exactly once, and every cell finished. The
//! command's own writer then writes the tables and figures from the joined journals, and the
//! output directory gets the `run.json` and journal of the whole run: it is an ordinary
//! finished run directory (re-running the whole command there finds every cell done).
use crate::run_dir::{self, RunDir, RunInfo, RunSpec};
use crate::shard::Shard;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct MergeArgs {
    /// The shard directories (each the --out-dir of one `--shard I/N` run), in any order.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Directory for the whole run's tables, figures, run.json and journal.
    #[arg(long)]
    pub out_dir: PathBuf,
    /// Write into an --out-dir that holds another run's results or other files: the previous
    /// run's files are removed (other files are kept).
    #[arg(long)]
    pub force: bool,
}

/// The shards of one run, their journals joined.
pub struct Joined {
    /// The whole run's flags (the shards' with `shard` removed).
    params: Value,
    model_sha256: String,
    data: String,
    /// The shard directories by index.
    dirs: Vec<PathBuf>,
    /// Journal entries in shard order (then journal order), each key once (the lowest shard's:
    /// the baseline every shard measures comes from shard 0).
    entries: Vec<(String, Value)>,
    index: HashMap<String, usize>,
}

impl Joined {
    /// The whole run's arguments of a command.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.params.clone()).context("merge: the shards' run.json has unknown flags")
    }

    /// The joined value of cell `key`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        self.index
            .get(key)
            .and_then(|&i| run_dir::decode_value(&self.entries[i].1))
            .with_context(|| format!("merge: cell `{key}` is missing or unreadable in the shards' journals"))
    }

    /// Checks that `shared` (computed by every shard; shard 0's is used) and the grid `cells`
    /// (cell k is shard k mod N's) are all finished; the error names the unfinished shards and
    /// their first missing cells.
    pub fn check_complete(&self, shared: &[&str], cells: &[String]) -> Result<()> {
        let n = self.dirs.len();
        let mut missing: Vec<Vec<&str>> = vec![Vec::new(); n];
        for key in shared {
            if !self.index.contains_key(*key) {
                missing[0].push(key);
            }
        }
        for (k, key) in cells.iter().enumerate() {
            if !self.index.contains_key(key) {
                missing[Shard::owner(k, n)].push(key);
            }
        }
        let unfinished: Vec<String> = missing
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.is_empty())
            .map(|(i, m)| {
                let first: Vec<String> = m.iter().take(3).map(|k| format!("`{k}`")).collect();
                format!(
                    "shard {i}/{n} (`{}`) lacks {} cell{} ({}{})",
                    self.dirs[i].display(),
                    m.len(),
                    if m.len() == 1 { "" } else { "s" },
                    first.join(", "),
                    if m.len() > 3 { ", ..." } else { "" }
                )
            })
            .collect();
        if !unfinished.is_empty() {
            bail!(
                "merge: unfinished shards: {}; re-run them with the same flags to finish",
                unfinished.join("; ")
            );
        }
        Ok(())
    }

    /// A string flag of the whole run (empty if absent).
    pub fn param_str(&self, name: &str) -> String {
        self.params.get(name).and_then(Value::as_str).unwrap_or_default().to_string()
    }

    /// Checks that `model` (the file the shards were given) is here with the shards' content:
    /// `command`'s merge evaluates it.
    pub fn check_model(&self, model: &Path, command: &str) -> Result<()> {
        let sha = run_dir::file_sha256(model)
            .with_context(|| format!("merge: merging `shrink {command}` shards evaluates their model"))?;
        if sha != self.model_sha256 {
            bail!("merge: `{}` is not the model the shards measured (its content changed)", model.display());
        }
        Ok(())
    }

    /// Claims `out_dir` for the whole run `spec` and journals every joined cell there (those
    /// it does not hold yet).
    pub fn write_journal(&self, spec: RunSpec, out_dir: &Path, force: bool) -> Result<()> {
        let mut run = RunDir::open_identified(
            "--out-dir",
            out_dir,
            spec,
            self.model_sha256.clone(),
            self.data.clone(),
            force,
        )?;
        for (key, value) in &self.entries {
            // A merge re-run into its own output finds the cells already there.
            if run.done::<Value>(key).is_none() {
                run.record_raw(key, value)?;
            }
        }
        Ok(())
    }
}

pub fn run(a: &MergeArgs) -> Result<()> {
    run_dir::check_out_dir("--out-dir", &a.out_dir)?;
    let out = std::fs::canonicalize(&a.out_dir).ok();
    let mut shards: Vec<(Shard, &Path, RunInfo)> = Vec::new();
    for dir in &a.dirs {
        if out.is_some() && std::fs::canonicalize(dir).ok() == out {
            bail!(
                "--out-dir `{}` is one of the shard directories; name a new directory",
                a.out_dir.display()
            );
        }
        let info = run_dir::read_run_info("merge:", dir)?;
        let Some(spec) = info.params.get("shard").and_then(Value::as_str) else {
            bail!(
                "merge: `{}` holds a whole run (`shrink {}` without --shard), not a shard",
                dir.display(),
                info.command
            );
        };
        let shard = Shard::parse(spec).with_context(|| format!("merge: `{}`", dir.display()))?;
        shards.push((shard, dir, info));
    }
    let (first_shard, first_dir, first) = (&shards[0].0, shards[0].1, &shards[0].2);
    let whole = |info: &RunInfo| {
        let mut p = info.params.clone();
        if let Some(o) = p.as_object_mut() {
            o.remove("shard");
        }
        p
    };
    let params = whole(first);
    for (shard, dir, info) in &shards[1..] {
        let what = if info.command != first.command {
            format!("`shrink {}` vs `shrink {}`", info.command, first.command)
        } else if info.model_sha256 != first.model_sha256 {
            "another model file content".to_string()
        } else if info.data != first.data {
            format!("data `{}` vs `{}`", info.data, first.data)
        } else if whole(info) != params {
            format!("flags {}", differing_flags(&whole(info), &params).join(", "))
        } else if shard.count != first_shard.count {
            format!("--shard {shard} vs --shard {first_shard}")
        } else {
            continue;
        };
        bail!(
            "merge: `{}` and `{}` are shards of different runs ({what})",
            first_dir.display(),
            dir.display()
        );
    }
    let n = first_shard.count;
    let mut by_index: Vec<Option<&Path>> = vec![None; n];
    for (shard, dir, _) in &shards {
        if let Some(other) = by_index[shard.index].replace(dir) {
            bail!("merge: shard {shard} is given twice (`{}` and `{}`)", other.display(), dir.display());
        }
    }
    let absent: Vec<String> =
        by_index.iter().enumerate().filter(|(_, d)| d.is_none()).map(|(i, _)| format!("{i}/{n}")).collect();
    if !absent.is_empty() {
        bail!(
            "merge: missing shard{} {} of {n}",
            if absent.len() == 1 { "" } else { "s" },
            absent.join(", ")
        );
    }
    let dirs: Vec<PathBuf> = by_index.into_iter().flatten().map(Path::to_path_buf).collect();
    let mut entries = Vec::new();
    let mut index = HashMap::new();
    for dir in &dirs {
        for (key, value) in
            run_dir::read_journal(dir).with_context(|| format!("merge: `{}`", dir.display()))?
        {
            if !index.contains_key(&key) {
                index.insert(key.clone(), entries.len());
                entries.push((key, value));
            }
        }
    }
    let joined = Joined {
        params,
        model_sha256: first.model_sha256.clone(),
        data: first.data.clone(),
        dirs,
        entries,
        index,
    };
    match first.command.as_str() {
        "sweep quant" => crate::cmd::sweep_quant::merge(&joined, &a.out_dir, a.force),
        "sweep prune" => crate::cmd::sweep::merge_prune(&joined, &a.out_dir, a.force),
        "sensitivity" => crate::cmd::sensitivity::merge(&joined, &a.out_dir, a.force),
        "mixed" => crate::cmd::mixed::merge(&joined, &a.out_dir, a.force),
        other => bail!("merge: `shrink {other}` runs cannot be merged"),
    }
}

/// The names of the flags whose values differ between two parameter objects.
fn differing_flags(a: &Value, b: &Value) -> Vec<String> {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else { return vec!["?".into()] };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("--{}", k.replace('_', "-")))
        .collect()
}
