//! End-to-end tests of `shrink prune` and `shrink sweep prune`.
mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

fn init_model(dir: &Path, arch: &str) -> String {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    tiny_mnist(&data, 200, 200);
    init_model_on(dir, arch, &data).to_str().unwrap().to_string()
}

fn eval_json(model: &str, data: &Path) -> Value {
    serde_json::from_str(&ok(shrink(&["eval", model, "--data", data.to_str().unwrap(), "--json"]))).unwrap()
}

#[test]
fn neuron_l2_removes_neurons_and_the_file_evaluates_with_no_flags() {
    let dir = tempfile::tempdir().unwrap();
    let model = init_model(dir.path(), "lenet-300-100");
    let out = dir.path().join("p.safetensors");
    ok(shrink(&["prune", &model, "--method", "neuron-l2", "--sparsity", "0.5", "-o", out.to_str().unwrap()]));
    let r = eval_json(out.to_str().unwrap(), &dir.path().join("data"));
    // fc1 keeps 300 - int(150) + 1 = 151 neurons, fc2 keeps 100 - 50 + 1 = 51.
    let want = 784 * 151 + 151 + 151 * 51 + 51 + 51 * 10 + 10;
    assert_eq!(r["params"].as_u64().unwrap(), want as u64);
    assert_eq!(r["samples"].as_u64().unwrap(), 200);
}

#[test]
fn unstructured_masks_are_kept_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = init_model(dir.path(), "lenet5");
    let out = dir.path().join("m.safetensors");
    ok(shrink(&["prune", &model, "--method", "exact", "--sparsity", "0.75", "-o", out.to_str().unwrap()]));
    let info: Value = serde_json::from_str(&ok(shrink(&["info", out.to_str().unwrap(), "--json"]))).unwrap();
    for layer in info["layers"].as_array().unwrap() {
        if matches!(layer["type"].as_str(), Some("Conv2d") | Some("Linear")) {
            let n = layer["params"].as_u64().unwrap();
            let nz = layer["nonzero_params"].as_u64().unwrap();
            let w: u64 =
                layer["weight_shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).product();
            let bias = n - w;
            // round(0.75·w) weights pruned exactly (biases untouched and nonzero).
            let zeros = (0.75 * w as f64).round_ties_even() as u64;
            assert_eq!(nz - bias, w - zeros, "{}", layer["name"]);
        }
    }
}

#[test]
fn bad_prune_requests_fail_cleanly_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = init_model(dir.path(), "lenet-300-100");
    let out = dir.path().join("never.safetensors");
    let o = out.to_str().unwrap();
    assert_one_line_error(
        &shrink(&["prune", &model, "--method", "neuron-l2", "--sparsity", "1.5", "-o", o]),
        "1.5",
    );
    assert_one_line_error(
        &shrink(&["prune", &model, "--method", "neuron-l2", "--sparsity", "-0.1", "-o", o]),
        "--sparsity",
    );
    assert_one_line_error(
        &shrink(&["prune", &model, "--method", "filter-ln", "--sparsity", "0.5", "--layers", "fc7", "-o", o]),
        "fc7",
    );
    assert_one_line_error(
        &shrink(&["prune", &model, "--method", "magnitude", "--layer-sparsity", "nope=0.5", "-o", o]),
        "nope",
    );
    assert_one_line_error(
        &shrink(&["prune", &model, "--method", "filter-ln", "--sparsity", "1", "-o", o]),
        "every unit",
    );
    assert_one_line_error(
        &shrink(&["prune", &model, "--method", "bogus", "--sparsity", "0.5", "-o", o]),
        "bogus",
    );
    assert!(!out.exists(), "a failed prune must not write its output");
}

#[test]
fn sweep_prune_starts_every_cell_from_the_pristine_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = init_model(dir.path(), "lenet-300-100");
    let out = dir.path().join("sweep");
    ok(shrink(&[
        "sweep",
        "prune",
        &model,
        "--data",
        dir.path().join("data").to_str().unwrap(),
        "--method",
        "neuron-l2",
        "--ratios",
        "0.5,0.2,0.5",
        "--out-dir",
        out.to_str().unwrap(),
    ]));
    let cells: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("table.json")).unwrap()).unwrap();
    let cells = cells.as_array().unwrap();
    assert_eq!(cells.len(), 4, "dense baseline + 3 cells");
    assert_eq!(cells[0]["params"].as_u64().unwrap(), 266_610);
    // Same ratio twice gives the same model: no compounding.
    assert_eq!(cells[1]["params"], cells[3]["params"]);
    assert!(cells[2]["params"].as_u64() > cells[1]["params"].as_u64());
    for f in ["table.md", "table.csv", "params-vs-accuracy.png", "ratio-vs-params.png"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
}

#[test]
fn sensitivity_scans_each_layer_and_writes_a_plan_for_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let model = init_model(dir.path(), "lenet-300-100");
    let out = dir.path().join("sens");
    let data = dir.path().join("data");
    let stdout = ok(shrink(&[
        "sensitivity",
        &model,
        "--data",
        data.to_str().unwrap(),
        "--sparsities",
        "0.5,0.9",
        "--target",
        "0.3",
        "--out-dir",
        out.to_str().unwrap(),
    ]));
    assert!(stdout.contains("fc1") && stdout.contains("fc3"), "{stdout}");
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    let kept = 235_200.0 * (1.0 - plan["fc1"].as_f64().unwrap())
        + 30_000.0 * (1.0 - plan["fc2"].as_f64().unwrap())
        + 1_000.0 * (1.0 - plan["fc3"].as_f64().unwrap());
    assert!(kept <= 0.3 * 266_200.0, "plan keeps {kept} weights");
    assert!(out.join("sensitivity.png").exists());
    // The plan feeds `shrink prune --sparsity-file`.
    let pruned = dir.path().join("p.safetensors");
    ok(shrink(&[
        "prune",
        &model,
        "--method",
        "exact",
        "--sparsity-file",
        out.join("plan.json").to_str().unwrap(),
        "-o",
        pruned.to_str().unwrap(),
    ]));
    let bad = shrink(&["sensitivity", &model, "--data", data.to_str().unwrap(), "--sparsities", "0.5,2"]);
    assert_one_line_error(&bad, "--sparsities");
}

#[test]
fn sweep_prune_finetunes_each_cell_and_reports_both_accuracies() {
    let dir = tempfile::tempdir().unwrap();
    let model = init_model(dir.path(), "lenet-300-100");
    let out = dir.path().join("sweep-ft");
    ok(shrink(&[
        "sweep",
        "prune",
        &model,
        "--data",
        dir.path().join("data").to_str().unwrap(),
        "--method",
        "neuron-l2",
        "--ratios",
        "0.5",
        "--batch-size",
        "32",
        "--finetune-epochs",
        "5",
        "--finetune-lr",
        "0.003",
        "--out-dir",
        out.to_str().unwrap(),
    ]));
    let cells: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("table.json")).unwrap()).unwrap();
    let cell = &cells.as_array().unwrap()[1];
    let (before, after) = (cell["accuracy"].as_f64().unwrap(), cell["accuracy_finetuned"].as_f64().unwrap());
    // The untrained model guesses; fine-tuning the pruned one on 180 images must learn something.
    assert!(after > before + 0.2, "fine-tuning did not help: {before} -> {after}");
    assert!(cells[0].get("accuracy_finetuned").is_none(), "the dense baseline is not fine-tuned");
    assert!(std::fs::read_to_string(out.join("table.md")).unwrap().contains("fine-tuned"));
}

#[test]
fn compare_reports_the_reduction_ratios_of_a_pruned_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = init_model(dir.path(), "lenet5");
    let pruned = dir.path().join("f50.safetensors");
    let p = pruned.to_str().unwrap();
    ok(shrink(&["prune", &model, "--method", "filter-ln", "--sparsity", "0.5", "-o", p]));
    let data = dir.path().join("data");
    let stdout = ok(shrink(&[
        "compare",
        &model,
        p,
        "--data",
        data.to_str().unwrap(),
        "--rounds",
        "3",
        "--steps",
        "2",
        "--json",
    ]));
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let params = |side: &str| v[side]["params"].as_f64().unwrap();
    assert!((v["params_ratio"].as_f64().unwrap() - params("original") / params("compressed")).abs() < 1e-9);
    assert!(v["macs_ratio"].as_f64().unwrap() > 1.5, "{v}");
    assert!(v["compressed"]["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(v["original"]["accuracy"].as_f64().is_some());
    let table = ok(shrink(&["compare", &model, p, "--rounds", "1", "--steps", "1"]));
    assert!(table.contains("Reduction ratio") && table.contains("MACs (M)"), "{table}");
    assert_one_line_error(&shrink(&["compare", &model, p, "--rounds", "0"]), "--rounds");
}
