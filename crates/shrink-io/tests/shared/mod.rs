//! The larger shared inputs (CIFAR-10 JPEG archive, pretrained ResNets) that tests find under
//! `$SHRINK_SHARED`. Tests that need them carry
//! `#[cfg_attr(not(shrink_shared), ignore = "needs SHRINK_SHARED")]` (see build.rs), so a run
//! without the directory lists them as ignored; a directory that lacks files fails naming them.
#![allow(dead_code)] // each test binary uses its own subset
use std::path::PathBuf;

/// Every file the shared-data tests read, relative to `$SHRINK_SHARED`.
pub const FILES: &[&str] = &[
    "data/cifar10-jpeg.tar.gz",
    "models/resnet20-cifar10.onnx",
    "models/resnet32-cifar10.onnx",
    "models/resnet20-cifar10.safetensors",
    "models/resnet32-cifar10.safetensors",
    "models/resnet20-cifar10.pt",
    "models/resnet32-cifar10.pt",
];

/// The shared directory; panics (failing the test) when `SHRINK_SHARED` is unset.
pub fn dir() -> PathBuf {
    match std::env::var_os("SHRINK_SHARED") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => panic!("SHRINK_SHARED is not set (this test needs the shared data directory)"),
    }
}

/// The files of [`FILES`] that `dir` lacks.
pub fn missing(dir: &std::path::Path) -> Vec<&'static str> {
    FILES.iter().copied().filter(|f| !dir.join(f).is_file()).collect()
}

/// `$SHRINK_SHARED/rel`; panics naming every missing shared file when `rel` is absent.
pub fn file(rel: &str) -> PathBuf {
    let dir = dir();
    let path = dir.join(rel);
    if !path.is_file() {
        panic!("SHRINK_SHARED={} lacks {}", dir.display(), missing(&dir).join(", "));
    }
    path
}
