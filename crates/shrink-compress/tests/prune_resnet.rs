//! Structured pruning of residual networks: coupled channels are removed together, the pruned
//! network runs and computes what the masked original computes on the kept channels.
use candle_core::{Device, Tensor};
use shrink_compress::prune::{self, structured::prunable_layers, Importance, KeepRule, StructuredPlan};
use shrink_ir::{stats::model_stats, zoo, Mode};

fn plan(model: &shrink_ir::Model, ratio: f64) -> StructuredPlan {
    let ratios = prunable_layers(model).unwrap().into_iter().map(|l| (l, ratio)).collect();
    StructuredPlan { importance: Importance::OutputNorm { p: 2.0 }, rule: KeepRule::TopK, ratios }
}

#[test]
fn thirty_percent_of_resnet20_channels_halves_the_macs() {
    let model = zoo::build("resnet20", 0, &Device::Cpu).unwrap();
    let (pruned, changes) = prune::prune_structured(&model, &plan(&model, 0.3)).unwrap();
    // Every conv loses round(0.3·n) filters: 16 → 11, 32 → 22, 64 → 45.
    for c in &changes {
        let want = c.units_before - (0.3 * c.units_before as f64).round() as usize;
        assert_eq!(c.units_after, want, "{}", c.layer);
    }
    assert_eq!(changes.len(), 19, "conv1 + 18 block convs");
    let (a, b) = (model_stats(&model).unwrap(), model_stats(&pruned).unwrap());
    let ratio = a.macs as f64 / b.macs as f64;
    assert!((1.8..2.3).contains(&ratio), "MACs ratio {ratio}");
    // The option-A shortcuts stay consistent: the pruned graph runs on a batch.
    let x = Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &Device::Cpu).unwrap();
    let y = pruned.forward(&x, Mode::Eval).unwrap();
    assert_eq!(y.dims(), &[2, 10]);
}

#[test]
fn removing_zero_filters_of_a_bias_free_mlp_is_exact() {
    // Zero some neurons of lenet-300-100 (weights and biases) and check removal is exact.
    let model = zoo::build("lenet-300-100", 1, &Device::Cpu).unwrap();
    for (name, rows) in [("fc1", 300usize), ("fc2", 100)] {
        let w = model.params.tensor(&format!("{name}.weight")).unwrap();
        let b = model.params.tensor(&format!("{name}.bias")).unwrap();
        let keep: Vec<f32> = (0..rows).map(|r| if r % 3 == 0 { 0.0 } else { 1.0 }).collect();
        let k = Tensor::from_vec(keep, (rows, 1), &Device::Cpu).unwrap();
        model.params.set(&format!("{name}.weight"), &w.broadcast_mul(&k).unwrap()).unwrap();
        model.params.set(&format!("{name}.bias"), &b.mul(&k.flatten_all().unwrap()).unwrap()).unwrap();
    }
    let (pruned, changes) = prune::remove_zero_groups(&model, 0.0).unwrap();
    assert_eq!(changes[0].units_after, 200);
    assert_eq!(changes[1].units_after, 66);
    let x = Tensor::randn(0f32, 1.0, (4, 1, 28, 28), &Device::Cpu).unwrap();
    let (y0, y1) = (model.forward(&x, Mode::Eval).unwrap(), pruned.forward(&x, Mode::Eval).unwrap());
    let d =
        (y0 - y1).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    assert!(d < 1e-5, "outputs differ by {d}");
}
