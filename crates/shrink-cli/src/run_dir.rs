//! An output directory that belongs to one run, and the journal of the run's finished cells.
//!
//! `run.json` in the directory names the run: its fingerprint (the command, the model file's
//! SHA-256, the data path and every flag that affects a result) and the files it writes.
//! `journal.jsonl` gets one JSON line per finished cell (one sweep cell, one layer × sparsity,
//! ...), flushed and fsync'd as it completes; a line torn by a kill is dropped on reading.
//!
//! [`RunDir::open`] claims the directory:
//! - empty or new: a fresh run;
//! - a `run.json` with the same fingerprint: the run resumes, finished cells are read back
//!   ([`RunDir::done`]) instead of being computed again;
//! - another run's `run.json`, or files shrink did not write: a one-line error naming the
//!   directory and `--force`. With `--force` the previous run's files (those its `run.json`
//!   lists, and the journal) are removed and the run starts fresh; files shrink did not write
//!   are never removed (they are listed as `kept`, so later runs accept them).
//!
//! Floats go through the journal exactly (as their shortest round-trip decimal text), so the
//! tables of a resumed run are byte-identical to an uninterrupted run's.
use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The run description file in an output directory.
pub const RUN_FILE: &str = "run.json";
/// The journal of finished cells in an output directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// Test hook: the process exits with code 130 (as after SIGINT) right after appending this
/// many journal lines, to simulate an interrupt at a known point.
pub const STOP_AFTER_ENV: &str = "SHRINK_TEST_STOP_AFTER_CELLS";

/// What `run.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct RunFile {
    /// `shrink COMMAND` that owns the directory.
    command: String,
    /// SHA-256 (hex) of the command, model hash, data path and parameters.
    fingerprint: String,
    model_sha256: String,
    data: String,
    /// The flags that affect the results.
    params: Value,
    /// Output files of the run, relative to the directory.
    files: Vec<String>,
    /// Files that were in the directory before the run and are not the run's (kept).
    #[serde(default)]
    kept: Vec<String>,
}

/// The identity of a run: what it computes and which files it writes.
pub struct RunSpec<'a> {
    /// `sweep quant`, `sensitivity`, ...
    pub command: &'a str,
    /// The model file (its content is hashed).
    pub model: &'a Path,
    /// The dataset path.
    pub data: &'a Path,
    /// Every flag that affects a result (serialized).
    pub params: Value,
    /// The output files the run writes in the directory (names relative to it).
    pub files: Vec<String>,
}

/// A claimed output directory with its journal open for appending.
pub struct RunDir {
    dir: PathBuf,
    journal: std::fs::File,
    done: HashMap<String, Value>,
    appended: usize,
    stop_after: Option<usize>,
}

/// Checks `--out-dir` before anything is loaded: not a file, and it (or, when it does not
/// exist yet, its nearest existing parent) is a directory that accepts new files.
pub fn check_out_dir(flag: &str, dir: &Path) -> Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            bail!("{flag} `{}` is a file; name a directory", dir.display());
        }
        return crate::common::check_writable_dir(flag, dir);
    }
    for a in dir.ancestors().skip(1) {
        let a = if a.as_os_str().is_empty() { Path::new(".") } else { a };
        if a.exists() {
            if !a.is_dir() {
                bail!("{flag} `{}`: `{}` is a file, not a directory", dir.display(), a.display());
            }
            return crate::common::check_writable_dir(flag, a);
        }
    }
    Ok(())
}

impl RunDir {
    /// Claims `dir` for the run `spec` (see the module doc); `flag` names the directory's flag
    /// in errors. Prints `resuming: ...` nowhere: callers know the cell count.
    pub fn open(flag: &str, dir: &Path, spec: RunSpec, force: bool) -> Result<RunDir> {
        let model_sha256 = sha256_file(spec.model)?;
        let data = std::fs::canonicalize(spec.data).unwrap_or_else(|_| spec.data.to_path_buf());
        let data = data.display().to_string();
        Self::open_identified(flag, dir, spec, model_sha256, data, force)
    }

    /// [`RunDir::open`] with the model's hash and the data path already known (as another
    /// run's `run.json` records them): `spec.model` and `spec.data` are not read.
    pub fn open_identified(
        flag: &str,
        dir: &Path,
        spec: RunSpec,
        model_sha256: String,
        data: String,
        force: bool,
    ) -> Result<RunDir> {
        std::fs::create_dir_all(dir).with_context(|| format!("{flag}: cannot create `{}`", dir.display()))?;
        shrink_io::atomic::sweep_stale_in(dir);
        let fingerprint = {
            use sha2::Digest;
            let id = serde_json::json!([spec.command, model_sha256, data, spec.params, spec.files]);
            hex(&sha2::Sha256::digest(id.to_string().as_bytes()))
        };
        let previous = read_run_file(dir);
        // Without a readable run.json, a journal or run.json is not this program's either.
        let known: BTreeSet<&str> = previous
            .iter()
            .flat_map(|p| p.files.iter().chain(&p.kept).map(String::as_str).chain([RUN_FILE, JOURNAL_FILE]))
            .collect();
        let foreign: Vec<String> =
            list_files(dir)?.into_iter().filter(|f| !known.contains(f.as_str())).collect();
        let resume = !force && previous.as_ref().is_some_and(|p| p.fingerprint == fingerprint);
        if !force {
            let another = previous.as_ref().is_some_and(|p| p.fingerprint != fingerprint);
            if another {
                let p = previous.as_ref().map(|p| p.command.as_str()).unwrap_or_default();
                bail!(
                    "{flag} `{}` holds the results of another run (`shrink {p}` with other inputs or flags); \
                     choose another directory or pass --force to replace them",
                    dir.display()
                );
            }
            if let Some(f) = foreign.first() {
                bail!(
                    "{flag} `{}` holds files this run did not write (`{f}`{}); choose another directory \
                     or pass --force to write there anyway (such files are kept)",
                    dir.display(),
                    if foreign.len() > 1 {
                        format!(" and {} more", foreign.len() - 1)
                    } else {
                        String::new()
                    }
                );
            }
        }
        let mut kept: BTreeSet<String> = previous.iter().flat_map(|p| p.kept.iter().cloned()).collect();
        if !resume {
            // Start fresh: the previous run's files go, files shrink did not write stay.
            for f in previous.iter().flat_map(|p| &p.files).map(String::as_str).chain([JOURNAL_FILE]) {
                remove_if_present(&dir.join(f))?;
            }
            kept.extend(foreign.into_iter().filter(|f| f != JOURNAL_FILE && f != RUN_FILE));
            kept.retain(|f| !spec.files.contains(f) && dir.join(f).exists());
        }
        let run = RunFile {
            command: spec.command.to_string(),
            fingerprint,
            model_sha256,
            data,
            params: spec.params,
            files: spec.files,
            kept: kept.into_iter().collect(),
        };
        shrink_io::atomic::write_atomic(&dir.join(RUN_FILE), serde_json::to_string_pretty(&run)?.as_bytes())?;
        let journal_path = dir.join(JOURNAL_FILE);
        let (journal, done) = open_journal(&journal_path)?;
        let stop_after = std::env::var(STOP_AFTER_ENV).ok().and_then(|v| v.parse().ok());
        Ok(RunDir { dir: dir.to_path_buf(), journal, done, appended: 0, stop_after })
    }

    /// The recorded result of cell `key`, if a previous run of the same fingerprint finished it.
    pub fn done<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        serde_json::from_value(decode(self.done.get(key)?.clone())).ok()
    }

    /// How many of `keys` are finished.
    pub fn count_done(&self, keys: &[String]) -> usize {
        keys.iter().filter(|k| self.done.contains_key(k.as_str())).count()
    }

    /// Appends the finished cell `key` to the journal (one line, flushed and fsync'd).
    pub fn record<T: Serialize>(&mut self, key: &str, value: &T) -> Result<()> {
        let encoded = encode(serde_json::to_value(value)?);
        let mut line = serde_json::to_string(&serde_json::json!({ "cell": key, "value": encoded }))?;
        line.push('\n');
        let path = self.dir.join(JOURNAL_FILE);
        self.journal
            .write_all(line.as_bytes())
            .and_then(|()| self.journal.sync_data())
            .map_err(|e| shrink_io::IoError::file(&path, e))?;
        self.done.insert(key.to_string(), encoded);
        self.appended += 1;
        if self.stop_after.is_some_and(|n| self.appended >= n) {
            eprintln!("{STOP_AFTER_ENV}: stopping after {} journal lines", self.appended);
            std::process::exit(130);
        }
        Ok(())
    }
}

/// Prints `resuming: N of M cells done` on stderr when a previous run finished some cells.
pub fn report_resume(done: usize, total: usize) {
    if done > 0 {
        eprintln!("resuming: {done} of {total} cells done");
    }
}

fn read_run_file(dir: &Path) -> Option<RunFile> {
    serde_json::from_slice(&std::fs::read(dir.join(RUN_FILE)).ok()?).ok()
}

/// Names of the entries of `dir` that count as its files: everything but subdirectories and
/// temp files of running writers (dead writers' were swept).
fn list_files(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false)
            || shrink_io::atomic::temp_owner(&name).is_some()
        {
            continue;
        }
        out.push(name);
    }
    out.sort();
    Ok(out)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(shrink_io::IoError::file(path, e)).context("cannot remove the previous run's file")
        }
        _ => Ok(()),
    }
}

/// Opens (creating) the journal for appending and reads its finished cells; a torn last line
/// (no newline: the writer was killed mid-line) is cut off.
fn open_journal(path: &Path) -> Result<(std::fs::File, HashMap<String, Value>)> {
    let io = |e| shrink_io::IoError::file(path, e);
    let mut f = std::fs::OpenOptions::new().read(true).create(true).append(true).open(path).map_err(io)?;
    let mut text = Vec::new();
    f.read_to_end(&mut text).map_err(io)?;
    let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if complete < text.len() {
        f.set_len(complete as u64).map_err(io)?;
        f.seek(std::io::SeekFrom::End(0)).map_err(io)?;
    }
    let done = journal_entries(&text[..complete], path)
        .map_err(|e| anyhow::anyhow!("{e:#}; pass --force to start over"))?
        .into_iter()
        .collect::<HashMap<_, _>>();
    Ok((f, done))
}

/// Replaces every float by `{"f64": "<shortest round-trip text>"}` (JSON number parsing may
/// round the last bit; Rust's float text round-trips exactly).
fn encode(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            serde_json::json!({ "f64": format!("{:?}", n.as_f64().unwrap_or(f64::NAN)) })
        }
        Value::Array(a) => Value::Array(a.into_iter().map(encode).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, encode(v))).collect()),
        other => other,
    }
}

/// The inverse of [`encode`].
fn decode(v: Value) -> Value {
    match v {
        Value::Object(o) => {
            if o.len() == 1 {
                if let Some(x) = o.get("f64").and_then(Value::as_str).and_then(|s| s.parse::<f64>().ok()) {
                    return serde_json::Number::from_f64(x).map(Value::Number).unwrap_or(Value::Null);
                }
            }
            Value::Object(o.into_iter().map(|(k, v)| (k, decode(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(decode).collect()),
        other => other,
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).map_err(|e| shrink_io::IoError::file(path, e))?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| shrink_io::IoError::file(path, e))?;
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What another run's `run.json` says about it (for `shrink merge`).
pub struct RunInfo {
    /// `sweep quant`, `sensitivity`, ...
    pub command: String,
    pub model_sha256: String,
    /// The dataset path as recorded (canonical where it existed).
    pub data: String,
    /// The flags that affect the results.
    pub params: Value,
}

/// Reads `dir/run.json`; `flag` names the directory in errors.
pub fn read_run_info(flag: &str, dir: &Path) -> Result<RunInfo> {
    let path = dir.join(RUN_FILE);
    let bytes = std::fs::read(&path).map_err(|e| shrink_io::IoError::file(&path, e)).with_context(|| {
        format!("{flag} `{}` is not a run directory (no readable {RUN_FILE})", dir.display())
    })?;
    let run: RunFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("{flag}: `{}` is not a shrink run description", path.display()))?;
    Ok(RunInfo { command: run.command, model_sha256: run.model_sha256, data: run.data, params: run.params })
}

/// The finished cells journaled in `dir`, in journal order, with their values as recorded
/// (read back with [`decode_value`]); a torn last line is ignored, the file is not changed.
pub fn read_journal(dir: &Path) -> Result<Vec<(String, Value)>> {
    let path = dir.join(JOURNAL_FILE);
    let text = std::fs::read(&path).map_err(|e| shrink_io::IoError::file(&path, e))?;
    let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    journal_entries(&text[..complete], &path)
}

/// The `(cell, value)` entries of complete journal lines, in order; a line that is not an entry
/// is an error naming the journal and the line.
fn journal_entries(lines: &[u8], path: &Path) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for (i, line) in lines.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let entry: Value = serde_json::from_slice(line)
            .ok()
            .filter(|v: &Value| v["cell"].is_string())
            .with_context(|| format!("{}: line {} is not a journal entry", path.display(), i + 1))?;
        if let (Some(key), Some(value)) = (entry["cell"].as_str(), entry.get("value")) {
            out.push((key.to_string(), value.clone()));
        }
    }
    Ok(out)
}

/// SHA-256 (hex) of a file's content, as `run.json` records the model's.
pub fn file_sha256(path: &Path) -> Result<String> {
    sha256_file(path)
}

/// A journaled value as its type (`None` if it is not one).
pub fn decode_value<T: DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(decode(v.clone())).ok()
}

impl RunDir {
    /// Appends a cell whose value is already in journal form (read by [`read_journal`]).
    pub fn record_raw(&mut self, key: &str, value: &Value) -> Result<()> {
        self.record(key, &decode(value.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(model: &'a Path, params: Value, files: &[&str]) -> RunSpec<'a> {
        RunSpec {
            command: "test",
            model,
            data: model,
            params,
            files: files.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn floats_round_trip_exactly_and_a_torn_line_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("m");
        std::fs::write(&model, b"weights").unwrap();
        let dir = tmp.path().join("run");
        let hard = [0.1f64 + 0.2, 1.0 / 3.0, 5e-324, 0.9234567890123457, 1e300, 2.0];
        let mut run = RunDir::open("--out-dir", &dir, spec(&model, Value::Null, &["t.md"]), false).unwrap();
        run.record("a", &hard).unwrap();
        run.record("b", &(7u64, "x")).unwrap();
        drop(run);
        let mut f = std::fs::OpenOptions::new().append(true).open(dir.join(JOURNAL_FILE)).unwrap();
        f.write_all(b"{\"cell\":\"c\",\"val").unwrap();
        drop(f);
        let mut run = RunDir::open("--out-dir", &dir, spec(&model, Value::Null, &["t.md"]), false).unwrap();
        assert_eq!(run.done::<[f64; 6]>("a"), Some(hard));
        assert_eq!(run.done::<(u64, String)>("b"), Some((7, "x".into())));
        assert_eq!(run.count_done(&["a".into(), "b".into(), "c".into()]), 2);
        run.record("c", &1.5f64).unwrap();
        drop(run);
        let text = std::fs::read_to_string(dir.join(JOURNAL_FILE)).unwrap();
        assert_eq!(text.lines().count(), 3, "torn tail cut before appending: {text}");
    }

    #[test]
    fn another_run_or_foreign_files_need_force_which_removes_only_the_runs_files() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("m");
        std::fs::write(&model, b"weights").unwrap();
        let dir = tmp.path().join("run");
        let mut run = RunDir::open("--out-dir", &dir, spec(&model, 1.into(), &["a.png"]), false).unwrap();
        run.record("x", &1).unwrap();
        std::fs::write(dir.join("a.png"), b"old").unwrap();
        drop(run);
        let err = |r: Result<RunDir>| format!("{:#}", r.err().expect("should refuse"));
        let e = err(RunDir::open("--out-dir", &dir, spec(&model, 2.into(), &["b.png"]), false));
        assert!(e.contains("--force") && e.contains("another run") && e.contains("`shrink test`"), "{e}");
        std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
        let e = err(RunDir::open("--out-dir", &dir, spec(&model, 1.into(), &["a.png"]), false));
        assert!(e.contains("notes.txt") && e.contains("--force"), "{e}");

        let run = RunDir::open("--out-dir", &dir, spec(&model, 2.into(), &["b.png"]), true).unwrap();
        assert_eq!(run.count_done(&["x".into()]), 0, "--force starts fresh");
        assert!(!dir.join("a.png").exists(), "the previous run's figure is removed");
        assert!(dir.join("notes.txt").exists(), "a file shrink did not write is kept");
        drop(run);
        // The kept file no longer blocks a resume.
        let run = RunDir::open("--out-dir", &dir, spec(&model, 2.into(), &["b.png"]), false).unwrap();
        drop(run);
        std::fs::write(&model, b"other weights").unwrap();
        let e = err(RunDir::open("--out-dir", &dir, spec(&model, 2.into(), &["b.png"]), false));
        assert!(e.contains("another run"), "a changed model file is another run: {e}");
    }

    #[test]
    fn out_dir_checks() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let e = format!("{:#}", check_out_dir("--out-dir", &file).unwrap_err());
        assert!(e.starts_with("--out-dir") && e.contains("is a file"), "{e}");
        let e = format!("{:#}", check_out_dir("--out-dir", &file.join("sub")).unwrap_err());
        assert!(e.contains("is a file"), "{e}");
        check_out_dir("--out-dir", &tmp.path().join("new/deeper")).unwrap();
        assert!(!tmp.path().join("new").exists(), "the check creates nothing");
    }
}
