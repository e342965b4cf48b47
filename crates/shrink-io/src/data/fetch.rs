//! Downloading a dataset archive with SHA-256 verification.
//!
//! The download itself runs the system's `curl` (or `wget`): this keeps an HTTP/TLS stack out of
//! the build. The SHA-256 check is done here, and a file is only put in place once it matches.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::error::{show, DataError};

/// The official CIFAR-10 binary archive.
pub const CIFAR10_BINARY_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// SHA-256 of [`CIFAR10_BINARY_URL`] (170,052,171 bytes; MD5 c32a1d4ab5d03f1284b67883e8d87530).
pub const CIFAR10_BINARY_SHA256: &str = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd";

/// The SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, DataError> {
    let mut file = fs::File::open(path).map_err(|e| DataError::io(show(path), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| DataError::io(show(path), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Makes sure `dest` holds the file at `url` with the given SHA-256 (hex, any case).
///
/// A `dest` that already has that hash is kept without downloading. Otherwise the file is
/// downloaded next to `dest` (with `curl`, else `wget`), checked, and renamed into place; a
/// download with another hash is deleted and reported.
pub fn fetch(url: &str, dest: &Path, sha256: &str) -> Result<(), DataError> {
    let want = sha256.trim().to_ascii_lowercase();
    if want.len() != 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DataError::invalid(show(dest), format!("`{sha256}` is not a SHA-256 in hex")));
    }
    if dest.is_file() && sha256_file(dest)? == want {
        return Ok(());
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| DataError::io(show(parent), e))?;
    }
    let mut part = dest.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let result = download(url, &part).and_then(|()| {
        let got = sha256_file(&part)?;
        if got != want {
            return Err(DataError::invalid(
                url,
                format!("SHA-256 mismatch: expected {want}, downloaded file has {got}"),
            ));
        }
        fs::rename(&part, dest).map_err(|e| DataError::io(show(dest), e))
    });
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result
}

fn download(url: &str, to: &Path) -> Result<(), DataError> {
    let attempts: [(&str, Vec<&std::ffi::OsStr>); 2] = [
        (
            "curl",
            vec![
                "--fail".as_ref(),
                "--location".as_ref(),
                "--silent".as_ref(),
                "--show-error".as_ref(),
                "--retry".as_ref(),
                "2".as_ref(),
                "--output".as_ref(),
                to.as_os_str(),
                url.as_ref(),
            ],
        ),
        ("wget", vec!["--quiet".as_ref(), "-O".as_ref(), to.as_os_str(), url.as_ref()]),
    ];
    for (program, args) in attempts {
        match Command::new(program).args(&args).output() {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                return Err(DataError::invalid(
                    url,
                    format!("download with {program} failed ({}): {}", out.status, stderr.trim()),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(DataError::invalid(url, format!("cannot run {program}: {e}"))),
        }
    }
    Err(DataError::invalid(url, "cannot download: neither curl nor wget is installed"))
}
