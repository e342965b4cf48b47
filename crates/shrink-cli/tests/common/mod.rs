//! Helpers shared by the CLI end-to-end tests: run the binary, check its outcome, build a tiny
//! MNIST copy from the one shipped in data/.
#![allow(dead_code)] // each test binary uses its own subset
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `shrink` binary with `args`.
pub fn shrink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shrink")).args(args).output().expect("run shrink")
}

/// Asserts success and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "shrink failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Asserts a clean failure: non-zero exit, exactly one line on stderr containing `needle`, no panic.
/// A usage error (exit 2: a flag value clap rejects) is clap's whole message instead: the error
/// line, the possible values or usage, the hint; see [`assert_usage_error`].
pub fn assert_one_line_error(o: &Output, needle: &str) {
    if o.status.code() == Some(2) {
        assert_usage_error(o, needle);
        return;
    }
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "error must be one line: {err:?}");
    assert!(err.contains(needle), "error {err:?} should mention {needle:?}");
}

/// The MNIST copy shipped in the repository.
pub fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

pub fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_end(&mut out).unwrap();
    out
}

/// Writes a small MNIST-format copy (first `n_train`/`n_test` examples) into `dir`.
pub fn tiny_mnist(dir: &Path, n_train: usize, n_test: usize) {
    let src = mnist_dir();
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let images = gunzip(&src.join(format!("{prefix}-images-idx3-ubyte.gz")));
        let labels = gunzip(&src.join(format!("{prefix}-labels-idx1-ubyte.gz")));
        let mut img = images[..16 + n * 784].to_vec();
        img[4..8].copy_from_slice(&(n as u32).to_be_bytes());
        let mut lab = labels[..8 + n].to_vec();
        lab[4..8].copy_from_slice(&(n as u32).to_be_bytes());
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), img).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), lab).unwrap();
    }
}

/// A temp dir with tiny MNIST (`n_train`/`n_test` images) in `data/` and a lenet-300-100
/// `model.safetensors` trained on it for `epochs` (at `batch_size`, if given; 64 validation
/// images). Returns (dir, data, model).
#[allow(dead_code)] // not every test binary trains a model
pub fn trained_lenet(
    n_train: usize,
    n_test: usize,
    epochs: usize,
    batch_size: Option<usize>,
) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    tiny_mnist(&data, n_train, n_test);
    let model = tmp.path().join("model.safetensors");
    let (d, m, e) = (data.to_str().unwrap(), model.to_str().unwrap(), epochs.to_string());
    let mut args = vec!["train", "--arch", "lenet-300-100", "--data", d, "--epochs", &e];
    let bs = batch_size.map(|b| b.to_string());
    if let Some(b) = &bs {
        args.extend(["--batch-size", b.as_str()]);
    }
    args.extend(["--val-size", "64", "-o", m]);
    ok(shrink(&args));
    (tmp, data, model)
}

/// Asserts a command-line usage error: exit code 2, clap's message containing `needle`, no panic.
pub fn assert_usage_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "expected a usage error (exit 2); stderr: {err}");
    assert!(err.starts_with("error: "), "clap's message starts with the error line: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(err.contains(needle), "error {err:?} should mention {needle:?}");
}

/// A freshly initialized `arch` model (`train --epochs 0` on `data`) written to `dir/ARCH.safetensors`.
pub fn init_model_on(dir: &Path, arch: &str, data: &Path) -> PathBuf {
    let out = dir.join(format!("{arch}.safetensors"));
    ok(shrink(&[
        "train",
        "--arch",
        arch,
        "--data",
        data.to_str().unwrap(),
        "--epochs",
        "0",
        "-o",
        out.to_str().unwrap(),
    ]));
    out
}

/// Asserts that every file of `files` has the same bytes under `a` and `b` (`what` names the
/// two runs in the failure).
pub fn assert_same_files(a: &Path, b: &Path, files: &[&str], what: &str) {
    for f in files {
        let (x, y) = (std::fs::read(a.join(f)), std::fs::read(b.join(f)));
        let (x, y) = (x.unwrap_or_else(|e| panic!("{f}: {e}")), y.unwrap_or_else(|e| panic!("{f}: {e}")));
        assert!(x == y, "{f} differs between {what}");
    }
}

/// A temp dir holding a tiny MNIST copy (`n_train`/`n_test` images) in `mnist/`; returns both.
pub fn tiny_mnist_dir(n_train: usize, n_test: usize) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    tiny_mnist(&data, n_train, n_test);
    (tmp, data)
}
