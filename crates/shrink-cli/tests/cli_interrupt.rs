//! Interrupts leave nothing behind: SIGTERM during a write removes the temp file in flight and
//! exits with 143; a temp file a killed process left is swept by the next write to that path.
#![cfg(unix)]
mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Hidden temp files (`.NAME.PID.tmp`, `.NAME.PID.N.tmp.EXT`) in `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.contains(".tmp"))
        .collect()
}

#[test]
fn sigterm_during_a_write_removes_the_temp_file_and_exits_143() {
    let (tmp, data) = tiny_mnist_dir(512, 64);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let model = out.join("m.safetensors");
    // Every atomic write waits 20 s between its temp file and the rename: the first per-epoch
    // checkpoint is then a write in flight for certain when the signal comes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_shrink"))
        .args(["train", "--arch", "lenet-300-100", "--data", data.to_str().unwrap(), "--epochs", "3"])
        .args(["--val-size", "64", "-o", model.to_str().unwrap()])
        .env("SHRINK_TEST_WRITE_DELAY_MS", "20000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    // The checkpoint's temp file (not the writability probe train makes first).
    while !temp_files(&out).iter().any(|f| f.starts_with(".m.safetensors.ckpt.")) {
        assert!(start.elapsed() < Duration::from_secs(120), "no temp file appeared");
        assert!(child.try_wait().unwrap().is_none(), "train ended before writing");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signals our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert_eq!(temp_files(&out), Vec::<String>::new(), "temp file left after SIGTERM");
    assert!(!model.exists(), "no output was due yet");
}

#[test]
fn a_dead_writers_temp_file_is_swept_by_the_next_write() {
    let (tmp, data, model) = trained_lenet(256, 64, 1, Some(32));
    let out = tmp.path().join("o");
    std::fs::create_dir(&out).unwrap();
    // What a SIGKILLed `shrink prune -o o/p.safetensors` (PID 999999999) would leave, and a
    // live process's (PID 1) which must stay.
    let dead = out.join(".p.safetensors.999999999.tmp");
    let live = out.join(".p.safetensors.1.tmp");
    std::fs::write(&dead, vec![0u8; 4096]).unwrap();
    std::fs::write(&live, b"busy").unwrap();
    let p = out.join("p.safetensors");
    ok(shrink(&[
        "prune",
        model.to_str().unwrap(),
        "--method",
        "neuron-l2",
        "--sparsity",
        "0.5",
        "-o",
        p.to_str().unwrap(),
    ]));
    assert!(!dead.exists(), "the dead writer's temp file is swept");
    assert!(live.exists(), "a live writer's temp file is kept");
    // Charts sweep too: a dead writer's chart temp file in a sweep directory.
    let sweep = tmp.path().join("sweep");
    std::fs::create_dir(&sweep).unwrap();
    let chart = sweep.join(".clip-accuracy-vs-bits.png.999999999.3.tmp.png");
    std::fs::write(&chart, b"partial").unwrap();
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    ok(shrink(&[
        "sweep",
        "quant",
        m,
        "--data",
        d,
        "--bits",
        "8",
        "--range",
        "max",
        "--out-dir",
        sweep.to_str().unwrap(),
    ]));
    assert!(!chart.exists());
    assert_eq!(temp_files(&sweep), Vec::<String>::new());
}
