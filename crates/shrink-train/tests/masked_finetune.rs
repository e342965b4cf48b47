//! Masked fine-tuning: for every mask the pruners make (per-layer percentile, global
//! percentile, exact count, global exact count, torch `ln_structured` filters and input
//! channels kept in place, cumulative `global_unstructured`) and every optimizer (SGD with
//! momentum and weight decay, Nesterov, Adam with weight decay), a few training steps leave the
//! pruned weights exactly zero and the momentum / Adam moments of pruned entries exactly zero,
//! while the kept weights and their buffers do move. A mask set in the middle of a run (a
//! pruning schedule) clears the momentum its weights had built up.
use shrink_compress::prune::torch_like::{global_unstructured_l1, prune_ln_structured};
use shrink_compress::prune::unstructured::prunable_weights;
use shrink_compress::prune::{prune_magnitude, MagnitudeRule, WeightImportance};
use shrink_io::data::{load, Dataset, Normalize, Split};
use shrink_ir::candle_core::Device;
use shrink_ir::Model;
use shrink_train::prune_schedule::{PruneHook, PruneSchedule, ScheduleKind, Scope};
use shrink_train::{HookContext, OptimizerConfig, Schedule, StepHook, TrainConfig};
use std::collections::BTreeMap;
use std::path::Path;

fn mnist(n: usize) -> Dataset {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    load(&root, Split::Train).expect("embedded MNIST").subset(&(0..n).collect::<Vec<_>>())
}

fn config(optimizer: OptimizerConfig, epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 64,
        lr: 0.02,
        optimizer,
        schedule: Schedule::Constant,
        seed: 0,
        normalize: Normalize { mean: vec![0.5], std: vec![0.5] },
        augment: None,
        eval_batch_size: 256,
        checkpoint: None,
        resume: None,
        progress: false,
        sparsity: None,
        share_weights: false,
        identity: Default::default(),
        warmup_steps: 0,
    }
}

fn values(t: &shrink_ir::candle_core::Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// After every optimizer step: pruned weights and their optimizer buffers are exactly zero
/// (±0.0 bits), and counts the steps where kept entries' buffers are nonzero.
#[derive(Default)]
struct ZeroCheck {
    steps: usize,
    live_state: usize,
    pruned_seen: usize,
}

impl StepHook for ZeroCheck {
    fn after_step(&mut self, ctx: &mut HookContext) -> shrink_train::Result<()> {
        self.steps += 1;
        for (name, mask) in ctx.model.params.masks() {
            let keep = values(mask);
            let w = values(&ctx.model.params.tensor(name).unwrap());
            let st = ctx.optimizer.state_of(name).expect("a masked weight is trained");
            for (i, k) in keep.iter().enumerate() {
                if *k == 0.0 {
                    self.pruned_seen += 1;
                    assert_eq!(
                        w[i].to_bits() & 0x7fff_ffff,
                        0,
                        "{name}[{i}] = {} after step {}",
                        w[i],
                        self.steps
                    );
                    for buf in [&st.m, &st.v] {
                        if let Some(x) = buf.get(i) {
                            assert_eq!(
                                x.to_bits() & 0x7fff_ffff,
                                0,
                                "{name}[{i}] state {x} after step {}",
                                self.steps
                            );
                        }
                    }
                } else if st.m.get(i).is_some_and(|x| *x != 0.0) {
                    self.live_state += 1;
                }
            }
        }
        Ok(())
    }
}

type Pruner = fn(&mut Model);

fn all_weights(m: &Model) -> Vec<String> {
    prunable_weights(m)
}

fn magnitude(m: &mut Model, rule: MagnitudeRule) {
    let map: BTreeMap<String, f64> = all_weights(m).into_iter().map(|w| (w, 0.6)).collect();
    prune_magnitude(m, &map, rule, WeightImportance::Abs).unwrap();
}

fn pruners() -> Vec<(&'static str, Pruner)> {
    vec![
        ("layer percentile", |m| magnitude(m, MagnitudeRule::LayerPercentile)),
        ("global percentile", |m| magnitude(m, MagnitudeRule::GlobalPercentile)),
        ("exact count", |m| magnitude(m, MagnitudeRule::ExactCount)),
        ("global exact count", |m| magnitude(m, MagnitudeRule::GlobalExactCount)),
        ("ln_structured filters", |m| {
            let map = ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]
                .map(|w| (w.to_string(), 0.5))
                .into();
            prune_ln_structured(m, &map, 2.0, 0).unwrap();
        }),
        ("ln_structured channels", |m| {
            let map = ["conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"]
                .map(|w| (w.to_string(), 0.5))
                .into();
            prune_ln_structured(m, &map, 1.0, 1).unwrap();
        }),
        ("cumulative global_unstructured", |m| {
            let w = all_weights(m);
            global_unstructured_l1(m, &w, 0.4).unwrap();
            global_unstructured_l1(m, &w, 0.4).unwrap();
        }),
    ]
}

fn optimizers() -> Vec<(&'static str, OptimizerConfig)> {
    vec![
        ("sgd momentum + wd", OptimizerConfig::sgd(0.9, 5e-4)),
        ("sgd nesterov + wd", OptimizerConfig::Sgd { momentum: 0.9, nesterov: true, weight_decay: 1e-3 }),
        ("adam + wd", OptimizerConfig::adam(1e-3)),
    ]
}

#[test]
fn every_mask_kind_stays_exactly_zero_under_every_optimizer() {
    let data = mnist(192);
    let base = shrink_ir::zoo::build("lenet5", 0, &Device::Cpu).unwrap();
    for (mask_kind, prune) in pruners() {
        for (opt_name, opt) in optimizers() {
            let mut model = base.clone();
            model.params = base.params.deep_clone().unwrap();
            prune(&mut model);
            assert!(!model.params.masks().is_empty(), "{mask_kind}: no mask set");
            let before: BTreeMap<String, Vec<f32>> = model
                .params
                .masks()
                .keys()
                .map(|n| (n.clone(), values(&model.params.tensor(n).unwrap())))
                .collect();
            let mut check = ZeroCheck::default();
            shrink_train::train_with_hooks(&mut model, &data, None, &config(opt, 1), &mut [&mut check])
                .unwrap();
            assert_eq!(check.steps, 3, "{mask_kind} / {opt_name}");
            assert!(check.pruned_seen > 0, "{mask_kind} / {opt_name}: nothing pruned");
            assert!(check.live_state > 0, "{mask_kind} / {opt_name}: kept weights have no momentum");
            for (name, old) in &before {
                let new = values(&model.params.tensor(name).unwrap());
                let moved = old.iter().zip(&new).filter(|(a, b)| a != b).count();
                assert!(moved > 0, "{mask_kind} / {opt_name}: `{name}` did not train");
            }
        }
    }
}

/// Pruning in the middle of a run keeps the optimizer (the same momentum for kept weights)
/// but clears the buffers of the weights it removes, which then stay zero.
#[test]
fn a_mask_set_mid_run_clears_the_momentum_of_pruned_weights() {
    let data = mnist(256);
    for (opt_name, opt) in optimizers() {
        let mut model = shrink_ir::zoo::build("lenet5", 0, &Device::Cpu).unwrap();
        let schedule = PruneSchedule {
            kind: ScheduleKind::Linear,
            sparsity: 0.5,
            start_epoch: 1,
            prune_epochs: 2,
            scope: Scope::Local,
            weights: all_weights(&model),
        };
        let mut prune = PruneHook::new(schedule).unwrap();
        let mut check = ZeroCheck::default();
        shrink_train::train_with_hooks(
            &mut model,
            &data,
            None,
            &config(opt, 3),
            &mut [&mut prune, &mut check],
        )
        .unwrap();
        assert_eq!(prune.applied, vec![(4, 0.25), (8, 0.5)], "{opt_name}");
        assert!(check.pruned_seen > 0 && check.live_state > 0, "{opt_name}");
        for w in all_weights(&model) {
            let v = values(&model.params.tensor(&w).unwrap());
            let zeros = v.iter().filter(|x| **x == 0.0).count();
            let want = (v.len() as f64 * 0.5).round_ties_even() as usize;
            assert_eq!(zeros, want, "{opt_name}: `{w}` has {zeros} zeros of {}", v.len());
        }
    }
}
