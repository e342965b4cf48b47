//! Download with SHA-256 verification, on local `file://` URLs (no network).

use std::fs;
use std::process::Command;

use shrink_io::data::fetch::{fetch, sha256_file, CIFAR10_BINARY_SHA256};
use tempfile::TempDir;

const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

fn have_curl() -> bool {
    let ok = Command::new("curl").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("note: curl is not installed; skipping the download test");
    }
    ok
}

#[test]
fn sha256_of_a_file() {
    let tmp = TempDir::new().unwrap();
    let f = tmp.path().join("abc");
    fs::write(&f, b"abc").unwrap();
    assert_eq!(sha256_file(&f).unwrap(), ABC_SHA256);
    assert_eq!(CIFAR10_BINARY_SHA256.len(), 64);
    let err = sha256_file(&tmp.path().join("none")).unwrap_err().to_string();
    assert!(err.contains("none"), "{err}");
}

#[test]
fn fetch_verifies_and_keeps_a_good_copy() {
    if !have_curl() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src.bin");
    fs::write(&src, b"abc").unwrap();
    let url = format!("file://{}", src.display());
    let dest = tmp.path().join("out/dest.bin");

    // Wrong hash: nothing is left behind.
    let wrong = "00".repeat(32);
    let err = fetch(&url, &dest, &wrong).unwrap_err().to_string();
    assert!(err.contains("SHA-256 mismatch") && !err.contains('\n'), "{err}");
    assert!(!dest.exists());
    assert_eq!(fs::read_dir(tmp.path().join("out")).unwrap().count(), 0);

    fetch(&url, &dest, &ABC_SHA256.to_uppercase()).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), b"abc");
    // Already there with the right hash: the source is not needed.
    fs::remove_file(&src).unwrap();
    fetch(&url, &dest, ABC_SHA256).unwrap();
    // A failed download is an error.
    let other = tmp.path().join("other.bin");
    assert!(fetch(&url, &other, ABC_SHA256).is_err());
    assert!(fetch(&url, &other, "not-a-hash").unwrap_err().to_string().contains("not a SHA-256"));
}
