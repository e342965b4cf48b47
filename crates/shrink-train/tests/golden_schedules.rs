//! Per-iteration learning-rate schedules against PyTorch's schedulers (cosine, step per
//! iteration, one-cycle, warmup + cosine) and AGP's target sparsity against Distiller's
//! `compute_target_sparsity`; fixture written by `tools/golden_schedules.py`.
use serde_json::Value;
use shrink_train::prune_schedule::agp_sparsity;
use shrink_train::schedule::{Position, Schedule};

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schedules.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn check(name: &str, schedule: Schedule, warmup_steps: u64) {
    let f = fixture();
    let lr = &f["lr"];
    let steps = lr["steps"].as_u64().unwrap();
    let base = lr["base"].as_f64().unwrap();
    let want = floats(&lr[name]);
    assert_eq!(want.len() as u64, steps);
    assert!(schedule.per_iteration(warmup_steps), "{name} must change every iteration");
    for (t, w) in want.iter().enumerate() {
        let at = Position { epoch: 0, step: t as u64, total_steps: steps, warmup_steps };
        let got = schedule.lr_at(base, at);
        assert!((got - w).abs() <= 1e-12 + 1e-9 * w.abs(), "{name} step {t}: {got} vs torch {w}");
    }
}

#[test]
fn cosine_matches_cosine_annealing_lr() {
    check("cosine", Schedule::Cosine { min_lr: 0.001 }, 0);
}

#[test]
fn step_iter_matches_step_lr_per_batch() {
    check("step_iter", Schedule::StepIter { step_size: 7, gamma: 0.5 }, 0);
}

#[test]
fn one_cycle_matches_one_cycle_lr() {
    check("one_cycle", Schedule::OneCycle { pct_start: 0.3, div_factor: 25.0, final_div_factor: 1e4 }, 0);
}

#[test]
fn warmup_matches_cosine_schedule_with_warmup() {
    check("warmup", Schedule::Cosine { min_lr: 0.0 }, 10);
}

#[test]
fn agp_matches_distiller_at_every_pruning_step() {
    let f = fixture();
    let cases = f["agp"].as_object().unwrap();
    assert!(cases.len() >= 4);
    for (name, c) in cases {
        let get = |k: &str| c[k].as_u64().unwrap();
        let (initial, fin) = (c["initial"].as_f64().unwrap(), c["final"].as_f64().unwrap());
        let steps: Vec<u64> = c["steps"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
        for (t, want) in steps.iter().zip(floats(&c["sparsity"])) {
            let got = agp_sparsity(initial, fin, get("t0"), get("t_end"), get("every"), *t);
            assert!((got - want).abs() < 1e-12, "{name} step {t}: {got} vs Distiller {want}");
            // Held until the next pruning step.
            let next =
                agp_sparsity(initial, fin, get("t0"), get("t_end"), get("every"), t + get("every") - 1);
            assert!((next - want).abs() < 1e-12, "{name}: changed between pruning steps after {t}");
        }
        let last = agp_sparsity(initial, fin, get("t0"), get("t_end"), get("every"), get("t_end") + 5);
        assert!((last - fin).abs() < 1e-12, "{name}: final {last}");
    }
}
