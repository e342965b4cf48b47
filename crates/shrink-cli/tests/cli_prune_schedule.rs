//! `shrink prune --schedule`: pruning inside one training run reaches exactly the target
//! sparsity (local and global), refuses bad requests in one line, refuses a resume with other
//! settings; the torch-semantics options (`--keep-shape`, `--cumulative`, `--order naive`).
mod common;
use common::*;
use shrink_ir::Model;
use std::path::Path;

fn zeros(model: &Path, weights: &[&str]) -> (usize, usize) {
    let m: Model = shrink_io::load_model(model, None).unwrap();
    let (mut z, mut n) = (0, 0);
    for w in weights {
        let v: Vec<f32> = m.effective_param(w).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        z += v.iter().filter(|x| **x == 0.0).count();
        n += v.len();
    }
    (z, n)
}

const FC: [&str; 3] = ["fc1.weight", "fc2.weight", "fc3.weight"];

#[test]
fn scheduled_pruning_reaches_the_target_exactly() {
    let (tmp, data, model) = trained_lenet(512, 128, 1, Some(64));
    let (d, m) = (data.to_str().unwrap(), model.to_str().unwrap());
    for (schedule, extra) in
        [("agp", vec!["--every", "3"]), ("linear", vec!["--global"]), ("oneshot", vec![])]
    {
        let out = tmp.path().join(format!("{schedule}.safetensors"));
        let mut args = vec![
            "prune",
            m,
            "--method",
            "magnitude",
            "--schedule",
            schedule,
            "--sparsity",
            "0.7",
            "--epochs",
            "2",
            "--ft-epochs",
            "1",
            "--data",
            d,
            "--val-size",
            "64",
            "--batch-size",
            "64",
            "--json",
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend(extra.iter());
        let json: serde_json::Value = serde_json::from_str(ok(shrink(&args)).trim()).unwrap();
        let s = json["sparsity"].as_f64().unwrap();
        assert!((s - 0.7).abs() < 1e-3, "{schedule}: reported sparsity {s}");
        assert_eq!(json["epochs"].as_array().unwrap().len(), 3, "{schedule}");
        let best = json["best_epoch"].as_u64().unwrap();
        assert!(schedule == "oneshot" || best >= 2, "{schedule}: best epoch {best} before the target");
        let (z, n) = zeros(&out, &FC);
        assert!((z as f64 / n as f64 - 0.7).abs() < 1e-3, "{schedule}: file sparsity {z}/{n}");
        assert!(!Path::new(&format!("{}.ckpt", out.display())).exists(), "checkpoint left behind");
    }
}

#[test]
fn scheduled_pruning_refuses_bad_requests_in_one_line() {
    let (tmp, data, model) = trained_lenet(256, 64, 1, Some(64));
    let (d, m) = (data.to_str().unwrap(), model.to_str().unwrap());
    let out = tmp.path().join("o.safetensors");
    let o = out.to_str().unwrap();
    let base = ["prune", m, "--schedule", "agp", "--sparsity", "0.7", "--epochs", "1", "-o", o];
    let run = |extra: &[&str]| shrink(&[&base[..], extra].concat());
    assert_one_line_error(&run(&["--method", "magnitude"]), "--data");
    assert_one_line_error(&run(&["--method", "filter-ln", "--data", d]), "--method");
    assert_one_line_error(&run(&["--method", "magnitude", "--data", d, "--every", "0"]), "--every");
    assert_one_line_error(
        &shrink(&["prune", m, "--schedule", "cubic", "--sparsity", "0.5", "-o", o, "--method", "magnitude"]),
        "--schedule",
    );
    assert!(!out.exists(), "an output was written");
    // A resume with another target is refused, naming the flag.
    let ok_args =
        ["--method", "magnitude", "--data", d, "--val-size", "32", "--batch-size", "64", "--keep-checkpoint"];
    ok(run(&ok_args));
    let ckpt = format!("{o}.ckpt");
    let o2 = tmp.path().join("o2.safetensors");
    let err = shrink(&[
        "prune",
        m,
        "--schedule",
        "agp",
        "--sparsity",
        "0.6",
        "--epochs",
        "1",
        "-o",
        o2.to_str().unwrap(),
        "--method",
        "magnitude",
        "--data",
        d,
        "--val-size",
        "32",
        "--batch-size",
        "64",
        "--resume",
        &ckpt,
    ]);
    assert_one_line_error(&err, "--sparsity");
}

#[test]
fn torch_semantics_options() {
    let (tmp, _data, model) = trained_lenet(256, 64, 1, Some(64));
    let m = model.to_str().unwrap();
    // --keep-shape: whole rows of fc1/fc2 zeroed in place, shapes unchanged.
    let ks = tmp.path().join("ks.safetensors");
    ok(shrink(&[
        "prune",
        m,
        "--method",
        "filter-ln",
        "--keep-shape",
        "--sparsity",
        "0.5",
        "-o",
        ks.to_str().unwrap(),
    ]));
    let pruned: Model = shrink_io::load_model(&ks, None).unwrap();
    let w = pruned.effective_param("fc1.weight").unwrap();
    assert_eq!(w.dims(), &[300, 784]);
    let rows: Vec<Vec<f32>> = w.to_vec2().unwrap();
    assert_eq!(rows.iter().filter(|r| r.iter().all(|x| *x == 0.0)).count(), 150);
    assert_eq!(zeros(&ks, &["fc3.weight"]).0, 0, "the classifier keeps its rows");
    // --cumulative: two calls at 0.5 leave 75 % of the weights pruned.
    let c1 = tmp.path().join("c1.safetensors");
    let c2 = tmp.path().join("c2.safetensors");
    for (input, out) in [(m, &c1), (c1.to_str().unwrap(), &c2)] {
        ok(shrink(&[
            "prune",
            input,
            "--method",
            "global-magnitude",
            "--cumulative",
            "--sparsity",
            "0.5",
            "-o",
            out.to_str().unwrap(),
        ]));
    }
    let (z, n) = zeros(&c2, &FC);
    let first = (n as f64 * 0.5).round_ties_even() as usize;
    let second = ((n - first) as f64 * 0.5).round_ties_even() as usize;
    assert_eq!(z, first + second, "{z}/{n}");
    assert!((z as f64 / n as f64 - 0.75).abs() < 1e-4);
    assert_one_line_error(
        &shrink(&[
            "prune",
            m,
            "--method",
            "magnitude",
            "--cumulative",
            "--sparsity",
            "0.5",
            "-o",
            "x.safetensors",
        ]),
        "--cumulative",
    );
    // --order naive keeps the first neurons.
    let nv = tmp.path().join("nv.safetensors");
    ok(shrink(&[
        "prune",
        m,
        "--method",
        "channel",
        "--order",
        "naive",
        "--layers",
        "fc1",
        "--sparsity",
        "0.5",
        "-o",
        nv.to_str().unwrap(),
    ]));
    let small: Model = shrink_io::load_model(&nv, None).unwrap();
    let full: Model = shrink_io::load_model(&model, None).unwrap();
    let a: Vec<Vec<f32>> = small.params.tensor("fc1.weight").unwrap().to_vec2().unwrap();
    let b: Vec<Vec<f32>> = full.params.tensor("fc1.weight").unwrap().to_vec2().unwrap();
    assert_eq!(a.len(), 150);
    assert_eq!(a, b[..150].to_vec());
}
