//! `WeightSweep` (quantized rows streamed from the model's own weights) gives exactly the
//! forward pass of a model whose weights were quantized and written in, and never touches the
//! pristine weights.
use candle_core::{Device, Tensor};
use shrink_compress::quant::{self, Include, QuantConfig, RangeMethod, Scheme, WeightSweep};
use shrink_ir::{zoo, Mode, Model};

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn weights(model: &Model) -> Vec<(String, Vec<f32>)> {
    model
        .params
        .iter()
        .map(|(n, p)| (n.clone(), p.var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

/// Baked reference: a fresh copy of the model with the quantized values written in (no slots).
fn baked(model: &Model, cfg: &QuantConfig) -> Model {
    let mut m = model.clone();
    m.params = model.params.deep_clone().unwrap();
    for src in quant::sources(&m, cfg.include).unwrap() {
        let q = quant::quantize_source(&src, cfg).unwrap();
        let t = Tensor::from_slice(&q.values, q.dims.as_slice(), &Device::Cpu).unwrap();
        m.params.set(&q.name, &t).unwrap();
    }
    m
}

fn check(arch: &str, input: &[usize], masked: Option<&str>) {
    let dev = Device::Cpu;
    let mut model = zoo::build(arch, 7, &dev).unwrap();
    if let Some(name) = masked {
        let dims = model.params.tensor(name).unwrap().dims().to_vec();
        let n: usize = dims.iter().product();
        let keep: Vec<f32> = (0..n).map(|i| if i % 3 == 0 { 0.0 } else { 1.0 }).collect();
        model.params.set_mask(name, Tensor::from_vec(keep, dims.as_slice(), &dev).unwrap()).unwrap();
    }
    let mut shape = vec![5];
    shape.extend_from_slice(input);
    let x = Tensor::randn(0f32, 1.0, shape.as_slice(), &dev).unwrap();
    let pristine = weights(&model);
    for (scheme, range) in [
        (Scheme::Clip, RangeMethod::Fixed(0.05)),
        (Scheme::Symmetric, RangeMethod::Max),
        (Scheme::Asymmetric, RangeMethod::Max),
    ] {
        for bits in [2u32, 4, 8] {
            for per_channel in [false, true] {
                let include = Include { bias: !per_channel, batchnorm: false };
                let cfg = QuantConfig { scheme, bits, range, per_channel, include };
                let want = baked(&model, &cfg).forward(&x, Mode::Eval).unwrap();
                let sweep = WeightSweep::new(&model, include).unwrap();
                assert!(sweep.streamed() > 0);
                // Dense streaming and, for linear layers, CSR built from the streamed rows.
                for density in [-1.0, 1.0] {
                    let prepared = sweep.prepare(&mut model, &cfg, density).unwrap();
                    let got = model.forward_prepared(&x, &prepared).unwrap();
                    let d = max_abs_diff(&want, &got);
                    assert!(
                        d < 1e-5,
                        "{arch} {scheme} {bits} bits per_channel={per_channel} density={density}: {d}"
                    );
                }
                // Streamed weights are read, never written; small tensors are rewritten per cell.
                for ((name, before), (_, after)) in pristine.iter().zip(weights(&model)) {
                    if name.ends_with(".weight") {
                        assert_eq!(before, &after, "{name} changed");
                    }
                }
            }
        }
    }
}

#[test]
fn streamed_quantized_forward_equals_baked_weights_mlp() {
    check("lenet-300-100", &[1, 28, 28], Some("fc2.weight"));
}

#[test]
fn streamed_quantized_forward_equals_baked_weights_conv() {
    check("lenet5", &[1, 28, 28], Some("conv2.weight"));
}

#[test]
fn bad_bits_are_an_error_and_change_nothing() {
    let mut model = zoo::build("lenet-300-100", 1, &Device::Cpu).unwrap();
    let before = weights(&model);
    let sweep = WeightSweep::new(&model, Include { bias: true, batchnorm: false }).unwrap();
    for bits in [0u32, 17] {
        let cfg = QuantConfig {
            scheme: Scheme::Clip,
            bits,
            range: RangeMethod::Fixed(1.0),
            per_channel: false,
            include: Include::default(),
        };
        assert!(sweep.prepare(&mut model, &cfg, 0.15).is_err());
    }
    assert_eq!(before, weights(&model));
}
