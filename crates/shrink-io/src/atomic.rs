//! Atomic file writes: write a temp file next to the target, fsync, then rename over it, so an
//! interrupted or failed write never leaves a partial output file.
use crate::error::{IoError, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(IoError::file(path, e));
    }
    Ok(())
}

/// Writes `path` atomically like [`write_atomic`], the content coming from `write`, which gets
/// the temp file (so a large file is streamed out instead of built in memory first). On any
/// error the temp file is removed and `path` is untouched.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp).map_err(|e| IoError::file(path, e))?;
        write(&mut f)?;
        f.sync_all().map_err(|e| IoError::file(path, e))?;
        std::fs::rename(&tmp, path).map_err(|e| IoError::file(path, e))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.in_file(path));
    }
    Ok(())
}
