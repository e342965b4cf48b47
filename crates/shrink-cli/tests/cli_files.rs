//! Model files from the command line: outputs validated before any work (prune, quantize,
//! export), formats recognised by content (a training checkpoint says what it is), the real
//! file size beside the dense one (eval, info), and quantizing at about the model's size in
//! memory.
mod common;
use common::{assert_one_line_error, ok, shrink, stderr};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A freshly initialized `arch` model in `dir`.
fn init_model(dir: &Path, arch: &str) -> PathBuf {
    common::init_model_on(dir, arch, &common::mnist_dir())
}

/// The argument lists of prune, quantize and export writing `model` to `out`.
fn writers<'a>(model: &'a str, out: &'a str) -> Vec<Vec<&'a str>> {
    vec![
        vec!["prune", model, "--method", "magnitude", "--sparsity", "0.5", "-o", out],
        vec!["quantize", model, "--scheme", "asymmetric", "--bits", "4", "-o", out],
        vec!["export", model, "--format", "safetensors", "-o", out],
    ]
}

#[test]
fn outputs_are_validated_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let model = init_model(dir.path(), "lenet-300-100");
    let m = model.to_str().unwrap();
    let before = std::fs::read(&model).unwrap();
    // A file that is no model: were it loaded first, the error would be about it.
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a model").unwrap();
    let j = junk.to_str().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let as_dir = format!("{}/", sub.display());
    for args in writers(m, m) {
        let o = shrink(&args);
        assert_one_line_error(&o, "--force");
        assert!(stderr(&o).contains("is also an input"), "{}: {}", args[0], stderr(&o));
    }
    assert_eq!(std::fs::read(&model).unwrap(), before, "a refused run leaves the input alone");
    for args in writers(j, &as_dir) {
        let o = shrink(&args);
        assert_one_line_error(&o, "is a directory");
    }
    for args in writers(j, "/nonexistent-shrink-dir/x.safetensors") {
        let o = shrink(&args);
        assert_one_line_error(&o, "does not exist");
    }
    // Calibration data is checked before the model is read too.
    let fresh = dir.path().join("fresh.safetensors");
    let f = fresh.to_str().unwrap();
    let args =
        ["--scheme", "symmetric", "--bits", "8", "--activations", "8", "--data", "/nonexistent-shrink-data"];
    let o = shrink(&[&["quantize", j][..], &args[..], &["-o", f][..]].concat());
    assert_one_line_error(&o, "--data `/nonexistent-shrink-data` does not exist");
    assert!(!fresh.exists());
    // So are prune's flags and its sparsity file.
    assert_one_line_error(
        &shrink(&["prune", j, "--method", "bogus", "--sparsity", "0.5", "-o", f]),
        "--method",
    );
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, "[1, 2]").unwrap();
    let p = plan.to_str().unwrap();
    assert_one_line_error(
        &shrink(&["prune", j, "--method", "exact", "--sparsity-file", p, "-o", f]),
        "plan.json",
    );
    assert!(!fresh.exists());
    // With --force, output = input is allowed (and written atomically).
    let mut args = writers(m, m).remove(0);
    args.push("--force");
    ok(shrink(&args));
    assert_ne!(std::fs::read(&model).unwrap(), before);
}

#[test]
fn formats_are_recognised_by_content_and_checkpoints_say_what_they_are() {
    let (dir, data, model) = common::trained_lenet(256, 64, 0, None);
    let (d, m) = (data.to_str().unwrap(), model.to_str().unwrap());
    // A safetensors model named .onnx / .pt evaluates like the original.
    let want: Value = serde_json::from_str(&ok(shrink(&["eval", m, "--data", d, "--json"]))).unwrap();
    for name in ["model.onnx", "model.pt"] {
        let renamed = dir.path().join(name);
        std::fs::copy(&model, &renamed).unwrap();
        let got: Value =
            serde_json::from_str(&ok(shrink(&["eval", renamed.to_str().unwrap(), "--data", d, "--json"])))
                .unwrap();
        assert_eq!(got["accuracy"], want["accuracy"], "{name}");
        assert_eq!(got["loss"], want["loss"], "{name}");
    }
    // A real training checkpoint, kept after one epoch.
    let out = dir.path().join("trained.safetensors");
    let o = out.to_str().unwrap();
    ok(shrink(&[
        "train",
        "--arch",
        "lenet-300-100",
        "--data",
        d,
        "--epochs",
        "1",
        "--val-size",
        "64",
        "--keep-checkpoint",
        "-o",
        o,
    ]));
    let ckpt = format!("{o}.ckpt");
    assert!(Path::new(&ckpt).exists());
    let out2 = dir.path().join("x.safetensors");
    let x = out2.to_str().unwrap();
    for args in [
        vec!["info", ckpt.as_str()],
        vec!["eval", ckpt.as_str(), "--data", d],
        vec!["prune", ckpt.as_str(), "--method", "magnitude", "--sparsity", "0.5", "-o", x],
        vec!["quantize", ckpt.as_str(), "--scheme", "clip", "--bits", "4", "-o", x],
        vec!["export", ckpt.as_str(), "--format", "onnx", "-o", x],
        vec!["train", "--init", ckpt.as_str(), "--data", d, "--epochs", "1", "-o", x],
    ] {
        let o = shrink(&args);
        assert_one_line_error(&o, &format!("`{ckpt}` is a training checkpoint"));
        assert!(stderr(&o).contains(&format!("--resume {ckpt}")), "{}: {}", args[0], stderr(&o));
    }
    assert!(!out2.exists());
    // Bytes that are no model: one line naming the file and the formats read.
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, vec![0x5au8; 1000]).unwrap();
    assert_one_line_error(&shrink(&["info", junk.to_str().unwrap()]), "junk.onnx");
    assert_one_line_error(&shrink(&["info", junk.to_str().unwrap()]), "safetensors, PyTorch");
}

#[test]
fn eval_and_info_report_the_real_file_size() {
    let (dir, data, model) = common::trained_lenet(256, 64, 0, None);
    let (d, m) = (data.to_str().unwrap(), model.to_str().unwrap());
    let packed = dir.path().join("q.shrink");
    let pruned = dir.path().join("p.safetensors");
    ok(shrink(&[
        "quantize",
        m,
        "--scheme",
        "clip",
        "--bits",
        "4",
        "--packed",
        "-o",
        packed.to_str().unwrap(),
    ]));
    ok(shrink(&["prune", m, "--method", "magnitude", "--sparsity", "0.5", "-o", pruned.to_str().unwrap()]));
    let dense = std::fs::metadata(&model).unwrap().len();
    // The pruned file is the dense one's size (masks implied by the zeros), not twice it.
    let pruned_len = std::fs::metadata(&pruned).unwrap().len();
    assert!(pruned_len <= dense + 128, "pruned {pruned_len} bytes, dense {dense}");
    for path in [&model, &packed, &pruned] {
        let p = path.to_str().unwrap();
        let len = std::fs::metadata(path).unwrap().len();
        let e: Value = serde_json::from_str(&ok(shrink(&["eval", p, "--data", d, "--json"]))).unwrap();
        assert_eq!(e["file_bytes"].as_u64(), Some(len), "{p}");
        assert_eq!(e["size_bytes"].as_u64(), Some(4 * e["params"].as_u64().unwrap()), "{p}");
        let i: Value = serde_json::from_str(&ok(shrink(&["info", p, "--json"]))).unwrap();
        assert_eq!(i["file_bytes"].as_u64(), Some(len), "{p}");
        let text = ok(shrink(&["eval", p, "--data", d]));
        let want = format!(
            "file {:.2} MB (dense fp32 {:.2} MB)",
            len as f64 / 1e6,
            e["size_bytes"].as_f64().unwrap() / 1e6
        );
        assert!(text.contains(&want), "{text}");
        assert!(ok(shrink(&["info", p])).contains(&want), "{p}");
    }
    let packed_len = std::fs::metadata(&packed).unwrap().len();
    assert!(packed_len * 6 < dense, "4-bit packed {packed_len} bytes, dense {dense}");
}

/// Runs `shrink args` and returns (exit status, stderr, peak resident set size in bytes), the
/// peak read from the kernel's rusage of this very child (wait4).
#[cfg(target_os = "linux")]
#[allow(clippy::zombie_processes)] // reaped by wait4, which std's wait() cannot replace here
fn peak_rss(args: &[&str]) -> (i32, String, u64) {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shrink"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 reaps our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    (libc::WEXITSTATUS(status), err, usage.ru_maxrss as u64 * 1024)
}

#[cfg(target_os = "linux")]
#[test]
fn quantizing_peaks_at_most_twice_the_model_size() {
    let dir = tempfile::tempdir().unwrap();
    // simple-dnn: 104 MB of fp32 weights, its largest tensor 79 MB.
    let model = init_model(dir.path(), "simple-dnn");
    let m = model.to_str().unwrap();
    let size = std::fs::metadata(&model).unwrap().len();
    // The binary's own footprint: `info` on a tiny model.
    let tiny = init_model(dir.path(), "lenet5");
    let (code, err, base) = peak_rss(&["info", tiny.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for extra in [&[][..], &["--packed"][..], &["--per-channel"][..]] {
        let out = dir.path().join("q.out");
        let mut args =
            vec!["quantize", m, "--scheme", "asymmetric", "--bits", "4", "-o", out.to_str().unwrap()];
        args.extend(extra);
        let (code, err, peak) = peak_rss(&args);
        assert_eq!(code, 0, "{err}");
        eprintln!(
            "quantize {extra:?}: peak {:.1} MB for a {:.1} MB model (binary alone {:.1} MB)",
            peak as f64 / 1e6,
            size as f64 / 1e6,
            base as f64 / 1e6
        );
        assert!(peak <= 2 * size + base, "peak {peak} bytes > 2 x {size} + {base}");
        std::fs::remove_file(&out).unwrap();
    }
}
