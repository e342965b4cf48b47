//! `shrink recipe`: every shipped recipe validates; a misspelt key, a bad value, a missing file
//! or an impossible order fails in under a second with one line naming FILE:LINE; the MNIST
//! recipes (and, with `$SHRINK_SHARED`, the CIFAR-10 ones) run in their quick form and write a
//! self-contained report; an interrupted run leaves no report and the re-run resumes after the
//! last finished step.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn recipes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes")
}

/// A stand-in for `$SHRINK_SHARED`: empty files where the recipes name shared data and models
/// (validation checks that they exist, it does not read them).
fn fake_shared() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["data/cifar10-jpeg.tar.gz", "models/resnet20-cifar10.safetensors"] {
        let p = tmp.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
    }
    tmp
}

fn recipe_cmd(args: &[&str], shared: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shrink"))
        .arg("recipe")
        .args(args)
        .env("SHRINK_SHARED", shared)
        .output()
        .unwrap()
}

#[test]
fn every_shipped_recipe_validates() {
    let shared = fake_shared();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(recipes_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        for quick in [false, true] {
            let mut args = vec![path.to_str().unwrap(), "--check"];
            if quick {
                args.push("--quick");
            }
            let t = Instant::now();
            let o = recipe_cmd(&args, shared.path());
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "{}: validation took {:?}",
                path.display(),
                t.elapsed()
            );
            let steps = ok(o);
            assert!(steps.lines().count() >= 3, "{}: {steps}", path.display());
        }
        names.push(path.file_stem().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    assert_eq!(names, ["cinic-pruning", "lenet5-pruning", "mnist-study", "resnet20-pruning", "vgg-pruning"]);
}

/// A small valid recipe on the bundled MNIST (relative to `dir`), with `extra` appended.
fn write_recipe(dir: &Path, body: &str) -> PathBuf {
    let mnist = mnist_dir();
    let text = format!(
        "[recipe]\nname = \"t\"\n\n[model]\narch = \"lenet-300-100\"\n\n[data]\npath = \"{}\"\n\n{body}",
        mnist.display()
    );
    let path = dir.join("r.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_recipes_fail_fast_with_one_line_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = fake_shared();
    // (recipe body after the header's 9 lines, expected line, expected words)
    let cases: [(&str, usize, &str); 9] = [
        ("[[step]]\nkind = \"train\"\nepoch = 3\n", 12, "unknown key `epoch` for a train step"),
        ("[[step]]\nkind = \"train\"\n\n[[step]]\nkind = \"prune\"\nsparsity = \"lots\"\n", 13, "lots"),
        ("[[step]]\nkind = \"trian\"\n", 11, "unknown step kind `trian`"),
        ("[[step]]\nkind = \"prune\"\nsparsity = 0.5\n\n[[step]]\nkind = \"train\"\n", 10, "needs a model"),
        ("[[step]]\nkind = \"train\"\n\n[[step]]\nkind = \"export\"\nfrom = \"later\"\n\n[[step]]\nkind = \"prune\"\nname = \"later\"\nsparsity = 0.5\n", 15, "names no earlier step"),
        ("[[step]]\nkind = \"train\"\n\n[[step]]\nkind = \"qat\"\nbitz = 4\n", 15, "unknown key `bitz` for a qat step"),
        ("[[step]]\nkind = \"train\"\noutput = \"x\"\n", 12, "`output` is set by the recipe"),
        ("[[step]]\nkind = \"train\"\n\n[[step]]\nkind = \"export\"\n\n[[step]]\nkind = \"prune\"\nfrom = \"export\"\n", 18, "writes no model"),
        ("[[step]]\nkind = \"train\"\nquick = { epochs = \"one\" }\n", 12, "one"),
    ];
    for (body, line, words) in cases {
        let path = write_recipe(tmp.path(), body);
        let t = Instant::now();
        let o = recipe_cmd(
            &[path.to_str().unwrap(), "-o", tmp.path().join("out").to_str().unwrap()],
            shared.path(),
        );
        assert!(t.elapsed() < Duration::from_secs(1), "took {:?}", t.elapsed());
        assert_one_line_error(&o, &format!("{}:{line}:", path.display()));
        assert_one_line_error(&o, words);
        assert!(!tmp.path().join("out").exists(), "nothing runs before the recipe is valid");
    }
    // Misspelt table key, missing model file, missing data: the line of the key.
    let mnist = mnist_dir();
    for (text, line, words) in [
        (
            format!(
                "[recipe]\nnmae = \"t\"\n[model]\narch = \"lenet5\"\n[data]\npath = \"{}\"\n",
                mnist.display()
            ),
            2,
            "unknown field `nmae`",
        ),
        (
            "[recipe]\nname = \"t\"\n[model]\nfile = \"nope.safetensors\"\n[data]\npath = \"x\"\n"
                .to_string(),
            4,
            "does not exist",
        ),
        (
            "[recipe]\nname = \"t\"\n[model]\narch = \"lenet5\"\n[data]\npath = \"no-data\"\n".to_string(),
            6,
            "no-data",
        ),
        (
            "[recipe]\nname = \"t\"\n[model]\narch = \"lenet6\"\n[data]\npath = \"x\"\n".to_string(),
            4,
            "unknown architecture",
        ),
    ] {
        let path = tmp.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let o = recipe_cmd(&[path.to_str().unwrap(), "--check"], shared.path());
        assert_one_line_error(&o, &format!("{}:{line}:", path.display()));
        assert_one_line_error(&o, words);
    }
}

fn step_dirs(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out.join("steps"))
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The quick LeNet-5 recipe, interrupted after its first step, resumes there and writes a
/// report with every step's tables and charts embedded.
#[test]
#[cfg(unix)]
fn lenet5_quick_recipe_is_interrupted_resumes_and_writes_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let recipe = recipes_dir().join("lenet5-pruning.toml");
    let args = ["recipe", recipe.to_str().unwrap(), "--quick", "-o", out.to_str().unwrap()];
    let mut child = Command::new(env!("CARGO_BIN_EXE_shrink"))
        .args(args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !step_dirs(&out).iter().any(|d| d.starts_with("01-train-")) {
        assert!(start.elapsed() < Duration::from_secs(300), "the first step did not finish");
        assert!(child.try_wait().unwrap().is_none(), "the recipe ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signals our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(!out.join("report.html").exists(), "no report from an interrupted run");
    let finished: Vec<String> = step_dirs(&out).into_iter().filter(|d| !d.starts_with('.')).collect();
    assert_eq!(finished.len(), 1, "{finished:?}");

    let o = shrink(&args);
    let err = stderr(&o);
    // The report's path is the last line of stdout (the steps print their tables before it).
    let report = PathBuf::from(ok(o).trim().lines().last().unwrap());
    assert!(err.contains("[1/11] train: done before"), "{err}");
    assert!(err.contains("[2/11] sensitivity: sensitivity"), "{err}");
    assert_eq!(report, out.join("report.html"));
    let html = std::fs::read_to_string(&report).unwrap();
    for needle in [
        "<table>",
        "<svg",
        "data:image/png;base64,",
        "fine-grained",
        "accuracy (%)",
        "original vs compressed",
    ] {
        assert!(html.contains(needle), "report lacks {needle}");
    }
    assert!(!html.contains("<script") && !html.contains("<link"), "no external resources");
    // Every chart of a sweep as SVG and PNG; every table as CSV and JSON.
    let sweep = out
        .join("steps")
        .join(step_dirs(&out).into_iter().find(|d| d.starts_with("03-fine-grained-")).unwrap());
    for f in ["ratio-vs-accuracy.svg", "ratio-vs-accuracy.png", "table.csv", "table.json"] {
        assert!(sweep.join(f).is_file(), "{f}");
    }
    assert!(out.join("tables/pipeline.csv").is_file() && out.join("tables/pipeline.json").is_file());
    // A third run computes nothing.
    let o = shrink(&args);
    let err = stderr(&o);
    ok(o);
    assert_eq!(err.matches("done before").count(), 11, "{err}");
}

/// The default job's quick form runs end to end on the bundled MNIST.
#[test]
fn mnist_study_quick_form_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let recipe = recipes_dir().join("mnist-study.toml");
    let t = Instant::now();
    let stdout = ok(shrink(&["recipe", recipe.to_str().unwrap(), "--quick", "-o", out.to_str().unwrap()]));
    let report = PathBuf::from(stdout.trim().lines().last().unwrap());
    eprintln!("mnist-study --quick: {:.1}s", t.elapsed().as_secs_f64());
    let html = std::fs::read_to_string(report).unwrap();
    for needle in ["quantization-grid", "neuron-pruning", "histogram", "export", "<svg"] {
        assert!(html.contains(needle), "report lacks {needle}");
    }
    let export = step_dirs(&out).into_iter().find(|d| d.starts_with("07-export-")).unwrap();
    assert!(out.join("steps").join(export).join("model.shrink").is_file());
}

/// The CIFAR-10 recipes' quick forms run end to end on the shared JPEG CIFAR-10, and their quick
/// data is class balanced: the JPEG archive stores the images class by class, so a plain head
/// would be one class.
#[test]
#[cfg_attr(not(shrink_shared), ignore = "needs SHRINK_SHARED (CIFAR-10 JPEG archive, ResNet-20)")]
fn cifar_recipes_quick_forms_run() {
    let shared = PathBuf::from(std::env::var_os("SHRINK_SHARED").expect("SHRINK_SHARED"));
    let needed = ["data/cifar10-jpeg.tar.gz", "models/resnet20-cifar10.safetensors"];
    let missing: Vec<_> = needed.iter().filter(|f| !shared.join(f).is_file()).collect();
    assert!(missing.is_empty(), "SHRINK_SHARED={} lacks {missing:?}", shared.display());
    for name in ["resnet20-pruning", "vgg-pruning", "cinic-pruning"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("run");
        let recipe = recipes_dir().join(format!("{name}.toml"));
        let t = Instant::now();
        let o = recipe_cmd(&[recipe.to_str().unwrap(), "--quick", "-o", out.to_str().unwrap()], &shared);
        let stdout = ok(o);
        eprintln!("{name} --quick: {:.1}s", t.elapsed().as_secs_f64());
        let html = std::fs::read_to_string(stdout.trim().lines().last().unwrap()).unwrap();
        assert!(html.contains("<svg") && html.contains("<table"), "{name}: report lacks charts or tables");
        let quick = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("quick-data-"))
            .expect("quick data directory");
        let test = std::fs::read(quick.join("test_batch.bin")).unwrap();
        let mut per_class = [0usize; 10];
        for record in test.chunks(3073) {
            per_class[record[0] as usize] += 1;
        }
        assert!(per_class.iter().all(|&n| n == per_class[0] && n > 0), "{name}: {per_class:?}");
    }
}
