//! Pruning schedules inside one run: the final sparsity is exactly the target (per layer or
//! global), the best epoch is one at the final sparsity, and a run interrupted after an epoch
//! and resumed from its checkpoint ends bit-identical to the uninterrupted run (weights, masks,
//! history).
use shrink_compress::prune::unstructured::prunable_weights;
use shrink_io::data::{load, Dataset, Normalize, Split};
use shrink_ir::candle_core::Device;
use shrink_ir::Model;
use shrink_train::prune_schedule::{overall_sparsity, PruneHook, PruneSchedule, ScheduleKind, Scope};
use shrink_train::{HookContext, OptimizerConfig, Schedule, StepHook, TrainConfig, TrainError};
use std::path::{Path, PathBuf};

fn mnist(range: std::ops::Range<usize>) -> Dataset {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    load(&root, Split::Train).expect("embedded MNIST").subset(&range.collect::<Vec<_>>())
}

fn config(epochs: usize, checkpoint: Option<PathBuf>, resume: Option<PathBuf>) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 64,
        lr: 0.05,
        optimizer: OptimizerConfig::sgd(0.9, 5e-4),
        schedule: Schedule::Cosine { min_lr: 0.0 },
        seed: 3,
        normalize: Normalize { mean: vec![0.5], std: vec![0.5] },
        augment: None,
        eval_batch_size: 256,
        checkpoint,
        resume,
        progress: false,
        sparsity: None,
        share_weights: false,
        identity: Default::default(),
        warmup_steps: 0,
    }
}

fn schedule(model: &Model, kind: ScheduleKind, scope: Scope) -> PruneSchedule {
    PruneSchedule {
        kind,
        sparsity: 0.7,
        start_epoch: 0,
        prune_epochs: 3,
        scope,
        weights: prunable_weights(model),
    }
}

/// Fails the run at a given iteration, as a kill would (after the previous epoch's checkpoint).
struct Interrupt(u64);

impl StepHook for Interrupt {
    fn before_step(&mut self, ctx: &mut HookContext) -> shrink_train::Result<()> {
        if ctx.global_step == self.0 {
            return Err(TrainError::Config("interrupted".into()));
        }
        Ok(())
    }
}

fn all_values(m: &Model) -> Vec<(String, Vec<u32>)> {
    let mut out: Vec<(String, Vec<u32>)> = m
        .params
        .iter()
        .map(|(n, p)| (n.clone(), p.var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .map(|(n, v)| (n, v.iter().map(|x| x.to_bits()).collect()))
        .collect();
    for (n, mask) in m.params.masks() {
        let v = mask.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        out.push((format!("{n}_mask"), v.iter().map(|x| x.to_bits()).collect()));
    }
    out
}

#[test]
fn final_sparsity_is_exactly_the_target_local_and_global() {
    let (train, val) = (mnist(0..320), mnist(320..448));
    for kind in [ScheduleKind::OneShot, ScheduleKind::Linear, ScheduleKind::Agp { every: 2, initial: 0.0 }] {
        for scope in [Scope::Local, Scope::Global] {
            let mut model = shrink_ir::zoo::build("lenet-300-100", 0, &Device::Cpu).unwrap();
            let weights = prunable_weights(&model);
            let mut hook = PruneHook::new(schedule(&model, kind, scope)).unwrap();
            let report = shrink_train::train_with_hooks(
                &mut model,
                &train,
                Some(&val),
                &config(4, None, None),
                &mut [&mut hook],
            )
            .unwrap();
            let s = overall_sparsity(&model, &weights).unwrap();
            assert!((s - 0.7).abs() < 1e-3, "{kind:?} {scope:?}: sparsity {s}");
            if scope == Scope::Local {
                for w in &weights {
                    let s = overall_sparsity(&model, std::slice::from_ref(w)).unwrap();
                    assert!((s - 0.7).abs() < 1e-3, "{kind:?}: `{w}` at {s}");
                }
            }
            let first_final = match kind {
                ScheduleKind::OneShot => 1,
                _ => 3,
            };
            let best = report
                .best_epoch
                .unwrap_or_else(|| panic!("{kind:?} {scope:?}: no best epoch: {:?}", report.epochs));
            assert!(best >= first_final, "{kind:?} {scope:?}: best epoch {best} before the final sparsity");
            assert!(hook.applied.last().is_some_and(|(_, s)| (*s - 0.7).abs() < 1e-12), "{:?}", hook.applied);
        }
    }
}

#[test]
fn an_interrupted_and_resumed_schedule_equals_the_uninterrupted_run() {
    let (train, val) = (mnist(0..320), mnist(320..448));
    let tmp = tempfile::tempdir().unwrap();
    // 5 steps per epoch; AGP every 3 steps, so pruning steps straddle the epoch boundary.
    let kind = ScheduleKind::Agp { every: 3, initial: 0.0 };
    let base = shrink_ir::zoo::build("lenet-300-100", 0, &Device::Cpu).unwrap();
    let run = |ckpt: &Path, interrupt: Option<u64>, resume: bool| -> (Model, shrink_train::Result<usize>) {
        let mut model = base.clone();
        model.params = base.params.deep_clone().unwrap();
        let mut hook = PruneHook::new(schedule(&model, kind, Scope::Global)).unwrap();
        let mut stop = Interrupt(interrupt.unwrap_or(u64::MAX));
        let cfg = config(4, Some(ckpt.to_path_buf()), resume.then(|| ckpt.to_path_buf()));
        let r =
            shrink_train::train_with_hooks(&mut model, &train, Some(&val), &cfg, &mut [&mut hook, &mut stop]);
        (model, r.map(|r| r.best_epoch.unwrap()))
    };
    let (whole, best_whole) = run(&tmp.path().join("a.ckpt"), None, false);
    let ckpt = tmp.path().join("b.ckpt");
    let (_, r) = run(&ckpt, Some(12), false); // dies in epoch 3, after 2 checkpointed epochs
    assert!(r.unwrap_err().to_string().contains("interrupted"));
    let (resumed, best_resumed) = run(&ckpt, None, true);
    assert_eq!(best_whole.unwrap(), best_resumed.unwrap());
    assert!(all_values(&whole) == all_values(&resumed), "the resumed run ended with other weights or masks");
    let s = overall_sparsity(&resumed, &prunable_weights(&resumed)).unwrap();
    assert!((s - 0.7).abs() < 1e-3, "sparsity {s}");
}
