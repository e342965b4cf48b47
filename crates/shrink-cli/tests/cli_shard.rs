//! `--shard I/N` and `shrink merge`: a sweep run as 3 shards and merged writes the same files as
//! the sweep run whole, cell for cell; bad shard specs and shards that do not make one finished
//! run are one-line errors.
mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// `args` followed by `--out-dir dir` and `extra`.
fn with_dir<'a>(args: &[&'a str], dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    [args, &["--out-dir", dir.to_str().unwrap()], extra].concat()
}

/// Runs `args` as shards 0..n of `n` into `root/shard-I`; returns the shard directories.
fn run_shards(args: &[&str], root: &Path, n: usize) -> Vec<std::path::PathBuf> {
    (0..n)
        .map(|i| {
            let dir = root.join(format!("shard-{i}"));
            let spec = format!("{i}/{n}");
            let o = shrink(&with_dir(args, &dir, &["--shard", &spec]));
            assert!(stderr(&o).contains(&format!("shard {spec}:")), "{}", stderr(&o));
            ok(o);
            dir
        })
        .collect()
}

fn merge(dirs: &[std::path::PathBuf], out: &Path) -> std::process::Output {
    let mut args = vec!["merge".to_string()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out-dir".to_string(), out.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    shrink(&args)
}

fn journal_keys(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["cell"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sweep_quant_as_three_shards_merges_byte_identical_to_the_whole_run() {
    let (tmp, data, model) = trained_lenet(256, 128, 0, Some(32));
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
        "2,4,8",
        "--range",
        "max,0.5,1",
    ];
    let whole = tmp.path().join("whole");
    let stdout_whole = ok(shrink(&with_dir(&args, &whole, &[])));
    let shards = run_shards(&args, tmp.path(), 3);
    // A shard journals the baseline and its own cells (cell k to shard k mod 3), no tables.
    let all: Vec<String> = journal_keys(&whole).into_iter().filter(|k| k != "fp32").collect();
    assert_eq!(all.len(), 18);
    for (i, dir) in shards.iter().enumerate() {
        let mine: Vec<String> =
            all.iter().enumerate().filter(|(k, _)| k % 3 == i).map(|(_, c)| c.clone()).collect();
        assert_eq!(journal_keys(dir), [vec!["fp32".to_string()], mine].concat(), "shard {i}");
        assert!(!dir.join("table.md").exists(), "a shard writes no tables");
    }
    let out = tmp.path().join("merged");
    let o = merge(&shards, &out);
    let stdout_merged = ok(o);
    assert_eq!(stdout_merged, stdout_whole, "the merge prints the whole run's table");
    let files = [
        "table.md",
        "table.csv",
        "table.json",
        "clip-accuracy-vs-bits.png",
        "clip-accuracy-vs-q.png",
        "asymmetric-accuracy-vs-bits.png",
        "asymmetric-accuracy-vs-q.png",
        // The self-contained report (tables, embedded charts) too.
        "report.html",
        // The merged directory is the whole run's: the same fingerprint and file list.
        "run.json",
    ];
    assert_same_files(&whole, &out, &files, "the whole run and the merged shards");
    let t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("timings.json")).unwrap()).unwrap();
    assert_eq!(t["cells"].as_array().unwrap().len(), 18, "every cell's wall time, from its shard");
    // An ordinary finished run: the whole command there computes nothing.
    let o = shrink(&with_dir(&args, &out, &[]));
    assert!(stderr(&o).contains("resuming: 18 of 18 cells done"), "{}", stderr(&o));
    ok(o);
    assert_same_files(&whole, &out, &files, "the whole run and the merged shards");
    // Merging again into the same directory: the same files, no cell journaled twice.
    ok(merge(&shards, &out));
    assert_same_files(&whole, &out, &files, "the whole run and the merged shards");
    assert_eq!(journal_keys(&out).len(), 19);

    // Shard sets that are not one finished run: one line naming what is wrong, nothing written.
    let bad = tmp.path().join("bad");
    let e = merge(&[shards[0].clone(), shards[2].clone()], &bad);
    assert_one_line_error(&e, "missing shard 1/3");
    let e = merge(&[shards[0].clone(), shards[1].clone(), shards[1].clone(), shards[2].clone()], &bad);
    assert_one_line_error(&e, "shard 1/3 is given twice");
    let e = merge(std::slice::from_ref(&whole), &bad);
    assert_one_line_error(&e, "not a shard");
    // Shard 1 of another grid (other bit widths).
    let other_args = [
        "sweep",
        "quant",
        m,
        "--data",
        d,
        "--method",
        "clip,asymmetric",
        "--bits",
        "2,4",
        "--range",
        "max,0.5,1",
    ];
    let other = tmp.path().join("other-1");
    ok(shrink(&with_dir(&other_args, &other, &["--shard", "1/3"])));
    let e = merge(&[shards[0].clone(), other.clone(), shards[2].clone()], &bad);
    assert_one_line_error(&e, "shards of different runs (flags --bits)");
    // The same grid split 2 ways is another split, not a shard of this one.
    let two = tmp.path().join("two-1");
    ok(shrink(&with_dir(&args, &two, &["--shard", "1/2"])));
    let e = merge(&[shards[0].clone(), two, shards[2].clone()], &bad);
    assert_one_line_error(&e, "different runs");
    // An interrupted shard: the merge names it and its missing cells.
    let cut = tmp.path().join("cut-1");
    let o = Command::new(env!("CARGO_BIN_EXE_shrink"))
        .args(with_dir(&args, &cut, &["--shard", "1/3"]))
        .env("SHRINK_TEST_STOP_AFTER_CELLS", "3")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(130));
    let e = merge(&[shards[0].clone(), cut.clone(), shards[2].clone()], &bad);
    assert_one_line_error(&e, "unfinished shards: shard 1/3");
    assert!(
        stderr(&e).contains(cut.to_str().unwrap()) && stderr(&e).contains("lacks 4 cells"),
        "{}",
        stderr(&e)
    );
    assert!(!bad.exists(), "a refused merge writes nothing");
    // The merge output may not be a shard directory.
    let e = merge(&shards, &shards[0]);
    assert_one_line_error(&e, "is one of the shard directories");
}

#[test]
fn sensitivity_and_sweep_prune_as_three_shards_merge_to_the_whole_run() {
    let (tmp, data, model) = trained_lenet(256, 128, 0, Some(32));
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let args = ["sensitivity", m, "--data", d, "--sparsities", "0.3,0.6,0.9", "--target", "0.5"];
    let whole = tmp.path().join("s-whole");
    ok(shrink(&with_dir(&args, &whole, &[])));
    let shards = run_shards(&args, &tmp.path().join("s"), 3);
    let out = tmp.path().join("s-merged");
    let stdout = ok(merge(&shards, &out));
    assert!(stdout.contains("accuracy not measured when merging shards"), "{stdout}");
    assert_same_files(
        &whole,
        &out,
        &["sensitivity.json", "sensitivity.png", "plan.json", "run.json"],
        "the whole run and the merged shards",
    );

    // sweep prune: every column but the measured inference times (and speed-ups) is the same.
    let args = ["sweep", "prune", m, "--data", d, "--ratios", "0.2,0.4,0.6,0.8", "--format", "svg"];
    let whole = tmp.path().join("p-whole");
    ok(shrink(&with_dir(&args, &whole, &[])));
    let shards = run_shards(&args, &tmp.path().join("p"), 3);
    let out = tmp.path().join("p-merged");
    ok(merge(&shards, &out));
    let untimed = |dir: &Path| -> serde_json::Value {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("table.json")).unwrap()).unwrap();
        for c in v.as_array_mut().unwrap() {
            let c = c.as_object_mut().unwrap();
            assert!(c.remove("inference_s").is_some() && c.remove("speedup").is_some());
        }
        v
    };
    assert_eq!(untimed(&out), untimed(&whole));
    assert_eq!(untimed(&out).as_array().unwrap().len(), 5, "the dense model and 4 ratios");
    assert_same_files(
        &whole,
        &out,
        &["params-vs-accuracy.svg", "ratio-vs-accuracy.svg", "ratio-vs-params.svg", "run.json"],
        "the whole run and the merged shards",
    );
}

#[test]
fn a_mixed_search_as_three_shards_allocates_at_the_merge_like_the_whole_run() {
    let (tmp, data, model) = trained_lenet(256, 128, 0, Some(32));
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
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
    let whole = tmp.path().join("whole");
    let stdout_whole = ok(shrink(&with_dir(&args, &whole, &[])));
    let shards = run_shards(&args, tmp.path(), 3);
    for dir in &shards {
        assert!(!dir.join("mixed.md").exists(), "a shard stops before the allocation");
        assert_eq!(journal_keys(dir).len(), 1 + 2, "the tensor list and 2 of the 3 x 2 candidates");
    }
    let out = tmp.path().join("merged");
    let stdout_merged = ok(merge(&shards, &out));
    assert_eq!(stdout_merged.replace("merged", "whole"), stdout_whole);
    let files = ["mixed.md", "mixed.json", "sensitivity.csv", "comparison.csv", "run.json"];
    assert_same_files(&whole, &out, &files, "the whole run and the merged shards");
    // A shard writes no model.
    let o = shrink(&with_dir(&args, &tmp.path().join("x"), &["--shard", "0/3", "-o", "m.safetensors"]));
    assert_one_line_error(&o, "--shard");
}

#[test]
fn bad_shard_specs_are_one_line_errors_naming_the_flag() {
    let (tmp, data, model) = trained_lenet(64, 32, 0, Some(32));
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let out = tmp.path().join("out");
    let commands: [&[&str]; 3] = [
        &["sweep", "quant", m, "--data", d],
        &["sweep", "prune", m, "--data", d],
        &["sensitivity", m, "--data", d],
    ];
    for args in commands {
        for bad in ["3/3", "1/0", "-1/3", "x", "2"] {
            let o = shrink(&with_dir(args, &out, &["--shard", bad]));
            assert_one_line_error(&o, "--shard must be I/N");
            assert!(stderr(&o).contains(&format!("`{bad}`")), "{}", stderr(&o));
        }
    }
    assert!(!out.exists(), "a bad --shard is refused before anything is written");
}
