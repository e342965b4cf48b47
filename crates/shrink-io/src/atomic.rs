//! Atomic file writes: write a temp file next to the target, fsync, then rename over it, so an
//! interrupted or failed write never leaves a partial output file.
//!
//! Nothing is left behind either:
//! - every temp file in flight is listed in a process-wide registry ([`InFlight`]), so a signal
//!   handler can remove them all ([`remove_in_flight`]) before the process exits;
//! - a process killed outright (SIGKILL, power loss) cannot clean up, so the next write to the
//!   same path first sweeps the temp files of dead processes ([`sweep_stale`]).
//!
//! Temp files are named `.NAME.PID.tmp` (or `.NAME.PID.N.tmp.EXT` for writers that need the
//! extension, such as chart backends): the PID says whose file it is.
use crate::error::{IoError, Result};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The temp files of this process that exist (or are about to be created) right now.
static REGISTRY: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn registry() -> MutexGuard<'static, BTreeSet<PathBuf>> {
    // A writer that panicked while holding the lock leaves a still valid set.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The temp file `write_atomic` uses for `path`: `.NAME.PID.tmp` beside it.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// A registered temp file: listed for [`remove_in_flight`] from creation until it is renamed
/// into place ([`InFlight::finish`]) or dropped (which removes the file).
#[derive(Debug)]
pub struct InFlight {
    path: PathBuf,
}

impl InFlight {
    /// Registers `tmp` (a file about to be created). Prefer [`InFlight::create`], which
    /// creates it under the registry lock so a signal handler never misses it.
    pub fn register(tmp: &Path) -> InFlight {
        registry().insert(tmp.to_path_buf());
        InFlight { path: tmp.to_path_buf() }
    }

    /// Creates (truncates) `tmp` and registers it, atomically with respect to
    /// [`remove_in_flight`].
    pub fn create(tmp: &Path) -> std::io::Result<(InFlight, std::fs::File)> {
        let mut reg = registry();
        let file = std::fs::File::create(tmp)?;
        reg.insert(tmp.to_path_buf());
        Ok((InFlight { path: tmp.to_path_buf() }, file))
    }

    /// The temp file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temp file to `target` and deregisters it.
    pub fn finish(self, target: &Path) -> std::io::Result<()> {
        let renamed = std::fs::rename(&self.path, target);
        if renamed.is_ok() {
            registry().remove(&self.path);
            std::mem::forget(self);
        }
        renamed
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        registry().remove(&self.path);
    }
}

/// Registers a temp file created by a writer that cannot hold an [`InFlight`] (e.g. behind a
/// callback); pair with [`deregister`].
pub fn register(tmp: &Path) {
    registry().insert(tmp.to_path_buf());
}

/// Removes `tmp` from the registry (after it was renamed into place or removed).
pub fn deregister(tmp: &Path) {
    registry().remove(tmp);
}

/// Removes every registered temp file and returns how many existed. For a signal handler:
/// the registry stays locked until the process exits, so no new temp file appears meanwhile.
pub fn remove_in_flight() -> usize {
    let reg = registry();
    let removed = reg.iter().filter(|p| std::fs::remove_file(p).is_ok()).count();
    // Keep the lock: writers block instead of creating files the exit would leave behind.
    std::mem::forget(reg);
    removed
}

/// Test hook: milliseconds `write_atomic` waits between writing its temp file and renaming it,
/// so a test can interrupt a write in flight.
pub const WRITE_DELAY_ENV: &str = "SHRINK_TEST_WRITE_DELAY_MS";

fn write_delay() -> Option<std::time::Duration> {
    static DELAY: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let ms = *DELAY.get_or_init(|| std::env::var(WRITE_DELAY_ENV).ok().and_then(|v| v.parse().ok()));
    ms.map(std::time::Duration::from_millis)
}

/// Writes `bytes` to `path` atomically (after sweeping stale temp files of `path`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    sweep_stale(path);
    let tmp = temp_path(path);
    let result = (|| -> std::io::Result<()> {
        let (guard, mut f) = InFlight::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        if let Some(delay) = write_delay() {
            std::thread::sleep(delay);
        }
        guard.finish(path)
    })();
    result.map_err(|e| IoError::file(path, e))
}

/// The target name and owner PID of a temp file name `.NAME.PID.tmp` or `.NAME.PID.N.tmp.EXT`.
pub fn temp_owner(file_name: &str) -> Option<(&str, u32)> {
    let inner = file_name.strip_prefix('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let stem = match inner.strip_suffix(".tmp") {
        Some(stem) => stem,
        None => {
            // `.NAME.PID.N.tmp.EXT`
            let (rest, ext) = inner.rsplit_once('.')?;
            if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            let (rest, n) = rest.strip_suffix(".tmp")?.rsplit_once('.')?;
            if !digits(n) {
                return None;
            }
            rest
        }
    };
    let (name, pid) = stem.rsplit_once('.')?;
    if name.is_empty() || !digits(pid) {
        return None;
    }
    Some((name, pid.parse().ok()?))
}

/// Whether process `pid` may still be running (on doubt: yes).
pub fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        if pid <= 0 {
            return true;
        }
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        if unsafe { libc::kill(pid, 0) } == 0 {
            return true;
        }
        std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Removes the temp files in `dir` (regular files only) whose owner is dead and, when `target`
/// is given, whose target name is `target`. Returns the removed paths.
fn sweep(dir: &Path, target: Option<&str>) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((owner_target, pid)) = temp_owner(name) else { continue };
        if target.is_some_and(|t| t != owner_target) || pid_alive(pid) {
            continue;
        }
        let path = entry.path();
        let is_file = std::fs::symlink_metadata(&path).map(|m| m.is_file()).unwrap_or(false);
        if is_file && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Removes the temp files a dead process left for `path` (`.NAME.PID.tmp` siblings whose PID
/// is not running; never this process's nor a live one's). Returns the removed paths.
pub fn sweep_stale(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return Vec::new() };
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d,
        None => Path::new("."),
    };
    sweep(dir, Some(name))
}

/// Removes every temp file a dead process left in `dir`. Returns the removed paths.
pub fn sweep_stale_in(dir: &Path) -> Vec<PathBuf> {
    sweep(dir, None)
}

/// Writes `path` atomically like [`write_atomic`], the content coming from `write`, which gets
/// the temp file (so a large file is streamed out instead of built in memory first). On any
/// error or interrupt the temp file is removed and `path` is untouched.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    sweep_stale(path);
    let tmp = temp_path(path);
    let (guard, mut f) = InFlight::create(&tmp).map_err(|e| IoError::file(path, e))?;
    write(&mut f).map_err(|e| e.in_file(path))?;
    f.sync_all().map_err(|e| IoError::file(path, e))?;
    drop(f);
    if let Some(delay) = write_delay() {
        std::thread::sleep(delay);
    }
    guard.finish(path).map_err(|e| IoError::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_temp_names() {
        assert_eq!(temp_owner(".model.safetensors.123.tmp"), Some(("model.safetensors", 123)));
        assert_eq!(temp_owner(".a.png.77.3.tmp.png"), Some(("a.png", 77)));
        assert_eq!(temp_owner(".x.999999999.tmp"), Some(("x", 999_999_999)));
        for not_temp in
            ["model.tmp", ".x.tmp", ".x.12a.tmp", "..1.tmp", ".x.1.tmp.", ".x.1.y.tmp.png", ".x.1"]
        {
            assert_eq!(temp_owner(not_temp), None, "{not_temp}");
        }
    }

    #[test]
    fn a_write_sweeps_dead_writers_temp_files_and_keeps_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x");
        let dead = dir.path().join(".x.999999999.tmp");
        let dead_chart = dir.path().join(".x.999999998.4.tmp.png");
        let dead_other = dir.path().join(".y.999999999.tmp");
        // PID 1 (init) is always alive; our own PID is alive by definition.
        let live = dir.path().join(".x.1.tmp");
        let own = dir.path().join(format!(".x.{}.7.tmp.svg", std::process::id()));
        for f in [&dead, &dead_chart, &dead_other, &live, &own] {
            std::fs::write(f, b"partial").unwrap();
        }
        write_atomic(&target, b"hello").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");
        assert!(!dead.exists() && !dead_chart.exists(), "dead writers' temp files swept");
        assert!(dead_other.exists(), "only the written path's temp files are swept");
        assert!(live.exists() && own.exists(), "live writers' temp files kept");
        assert!(!temp_path(&target).exists(), "our own temp file was renamed");

        let removed = sweep_stale_in(dir.path());
        assert_eq!(removed, vec![dead_other.clone()]);
        assert!(live.exists() && own.exists());
    }

    #[test]
    fn the_registry_lists_temp_files_in_flight_until_renamed_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(".a.1.tmp");
        let (guard, _f) = InFlight::create(&tmp).unwrap();
        assert!(registry().contains(&tmp));
        guard.finish(&dir.path().join("a")).unwrap();
        assert!(!registry().contains(&tmp) && dir.path().join("a").is_file());

        let tmp2 = dir.path().join(".b.1.tmp");
        let (guard, _f) = InFlight::create(&tmp2).unwrap();
        drop(guard);
        assert!(!registry().contains(&tmp2) && !tmp2.exists(), "a dropped temp file is removed");
    }
}
