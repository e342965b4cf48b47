//! Sweeps, sensitivity scans and mixed-precision searches resume: an interrupted run re-run with
//! the same inputs computes only the missing cells and writes files byte-identical to an
//! uninterrupted run's. An output directory belongs to one run (`--force` to replace another's).
mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `shrink args` with the test hook that exits (130) after `n` journal lines.
fn shrink_stopping_after(n: usize, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shrink"))
        .args(args)
        .env("SHRINK_TEST_STOP_AFTER_CELLS", n.to_string())
        .output()
        .unwrap()
}

fn journal_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("journal.jsonl")).unwrap().lines().count()
}

/// `args` followed by `--out-dir dir`.
fn with_dir<'a>(args: &[&'a str], dir: &'a Path) -> Vec<&'a str> {
    [args, &["--out-dir", dir.to_str().unwrap()]].concat()
}

/// Runs `args + --out-dir` uninterrupted into `reference`, then into `resumed` stopped after
/// `stop` journal lines and re-run; checks the resume message, that the resumed run computed
/// only the missing cells (`total` journal lines in all, the first `baseline` of them not grid
/// cells) and that `files` and stdout are byte-identical.
fn check_resume(args: &[&str], dirs: [&Path; 2], stop: usize, total: usize, baseline: usize, files: &[&str]) {
    let [reference, resumed] = dirs;
    let stdout_ref = ok(shrink(&with_dir(args, reference)));
    assert_eq!(journal_lines(reference), total);

    let resumed_args = with_dir(args, resumed);
    let o = shrink_stopping_after(stop, &resumed_args);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert_eq!(journal_lines(resumed), stop);
    for f in files {
        assert!(!resumed.join(f).exists(), "{f} written before the run finished");
    }
    let o = shrink(&resumed_args);
    let err = stderr(&o);
    let stdout = ok(o);
    let want = format!("resuming: {} of {} cells done", stop - baseline, total - baseline);
    assert!(err.contains(&want), "expected {want:?} in {err}");
    assert_eq!(journal_lines(resumed), total, "finished cells were computed again");
    assert_same_files(reference, resumed, files, "the uninterrupted and the resumed run");
    // stdout names the directory (`wrote DIR/plan.json`): the same text otherwise.
    let (r, d) = (reference.to_str().unwrap(), resumed.to_str().unwrap());
    assert_eq!(stdout.replace(d, r), stdout_ref);
}

#[test]
fn an_interrupted_sweep_quant_resumes_byte_identical() {
    let (tmp, data, model) = trained_lenet(512, 256, 2, Some(32));
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let args = [
        "sweep",
        "quant",
        m,
        "--data",
        d,
        "--method",
        "clip,asymmetric",
        "--bits",
        "2,8",
        "--range",
        "max,0.5",
    ];
    let files = [
        "table.md",
        "table.csv",
        "table.json",
        "clip-accuracy-vs-bits.png",
        "clip-accuracy-vs-q.png",
        "asymmetric-accuracy-vs-bits.png",
        "asymmetric-accuracy-vs-q.png",
    ];
    // The first journal line is the fp32 baseline, then 8 cells.
    check_resume(&args, [&tmp.path().join("ref"), &tmp.path().join("run")], 4, 9, 1, &files);
    // The wall times are kept apart, for every cell.
    let t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("run/timings.json")).unwrap()).unwrap();
    assert_eq!(t["cells"].as_array().unwrap().len(), 8);

    // A finished run re-run: every cell read back, the same files.
    let run = tmp.path().join("run");
    let o = shrink(&with_dir(&args, &run));
    assert!(stderr(&o).contains("resuming: 8 of 8 cells done"), "{}", stderr(&o));
    assert_same_files(
        &tmp.path().join("ref"),
        &tmp.path().join("run"),
        &files,
        "the uninterrupted and the resumed run",
    );
}

#[test]
fn an_interrupted_sensitivity_scan_and_mixed_search_resume_byte_identical() {
    let (tmp, data, model) = trained_lenet(512, 256, 2, Some(32));
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let args = ["sensitivity", m, "--data", d, "--sparsities", "0.5,0.9", "--target", "0.5"];
    let files = ["sensitivity.json", "sensitivity.png", "plan.json"];
    // 1 dense + 3 layers x 2 sparsities.
    check_resume(&args, [&tmp.path().join("s-ref"), &tmp.path().join("s-run")], 3, 7, 1, &files);

    let args = [
        "mixed",
        m,
        "--data",
        d,
        "--scheme",
        "symmetric",
        "--avg-bits",
        "3",
        "--candidates",
        "2,4",
        "--calib-samples",
        "128",
    ];
    let files = ["mixed.md", "mixed.json", "sensitivity.csv", "comparison.csv"];
    // 3 tensors x 2 candidate widths (the fp32 baseline is measured again, not journaled).
    check_resume(&args, [&tmp.path().join("m-ref"), &tmp.path().join("m-run")], 2, 6, 0, &files);
}

#[test]
fn an_out_dir_belongs_to_one_run_and_force_replaces_it() {
    let (tmp, data, model) = trained_lenet(256, 128, 1, Some(32));
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let out = tmp.path().join("sweep");
    let o = out.to_str().unwrap();
    let sweep = |methods: &str, extra: &[&str]| {
        let args = ["sweep", "quant", m, "--data", d, "--bits", "2,8", "--range", "max,0.5", "--out-dir", o];
        shrink(&[&args[..], &["--method", methods], extra].concat())
    };
    ok(sweep("clip,asymmetric", &[]));
    assert!(out.join("asymmetric-accuracy-vs-bits.png").is_file());

    // Another grid into the same directory: refused before any work, naming the dir and --force.
    let before = std::fs::read(out.join("table.json")).unwrap();
    let e = sweep("clip", &[]);
    assert_one_line_error(&e, "--force");
    assert!(stderr(&e).contains(o), "{}", stderr(&e));
    assert_eq!(std::fs::read(out.join("table.json")).unwrap(), before, "refused run wrote nothing");

    // --force: the previous run's stale figures go, a file shrink did not write stays.
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    let e = sweep("clip,asymmetric", &[]);
    assert_one_line_error(&e, "notes.txt");
    ok(sweep("clip", &["--force"]));
    assert!(!out.join("asymmetric-accuracy-vs-bits.png").exists(), "stale figure left by --force");
    assert!(!out.join("asymmetric-accuracy-vs-q.png").exists(), "stale figure left by --force");
    assert!(out.join("clip-accuracy-vs-bits.png").is_file());
    assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine");
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(!table.contains("asymmetric"), "{table}");
    assert_eq!(journal_lines(&out), 1 + 4, "--force starts a fresh journal");
    // The kept file does not block a resume of the same run.
    ok(sweep("clip", &[]));

    // An --out-dir that is a file: one line, before any work.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let args = ["sweep", "quant", m, "--data", d, "--out-dir", file.to_str().unwrap()];
    assert_one_line_error(&shrink(&args), "--out-dir");
    let args = ["sensitivity", m, "--data", d, "--out-dir", file.to_str().unwrap()];
    assert_one_line_error(&shrink(&args), "is a file");
}

#[test]
fn an_interrupted_sweep_prune_resumes_from_its_journal() {
    let (tmp, data, model) = trained_lenet(256, 128, 1, Some(32));
    let out = tmp.path().join("prune");
    let args = [
        "sweep",
        "prune",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--ratios",
        "0.2,0.5,0.8",
        "--format",
        "svg",
        "--out-dir",
        out.to_str().unwrap(),
    ];
    assert_eq!(shrink_stopping_after(2, &args).status.code(), Some(130));
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    let o = shrink(&args);
    assert!(stderr(&o).contains("resuming: 1 of 3 cells done"), "{}", stderr(&o));
    ok(o);
    let after = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert!(after.starts_with(&journal) && after.lines().count() == 4, "{after}");
    // The dense cell and the 0.2 cell (inference times included) come from the journal.
    let table: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("table.json")).unwrap()).unwrap();
    let first: serde_json::Value = serde_json::from_str(journal.lines().nth(1).unwrap()).unwrap();
    let journaled = first["value"]["inference_s"]["f64"].as_str().unwrap().parse::<f64>().unwrap();
    let got = table[1]["inference_s"].as_f64().unwrap();
    assert!((got - journaled).abs() <= 1e-12 * journaled, "measured again: {got} vs journaled {journaled}");
    for f in ["table.md", "params-vs-accuracy.svg", "ratio-vs-params.svg"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // Mask pruning keeps the shapes: the chart's x axis is the nonzero count, which falls.
    let svg = std::fs::read_to_string(out.join("params-vs-accuracy.svg")).unwrap();
    assert!(svg.contains("nonzero parameters"), "x axis label");
    let nonzero: Vec<u64> = (0..4).map(|i| table[i]["nonzero_params"].as_u64().unwrap()).collect();
    assert!(nonzero.windows(2).all(|w| w[1] < w[0]), "{nonzero:?}");
}
