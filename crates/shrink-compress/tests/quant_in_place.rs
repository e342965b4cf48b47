//! `quantize_model_in_place` (what `shrink quantize` runs, holding the model once) gives the
//! same weights, bit for bit, and the same quantizer slots as `quantize_model`, and leaves the
//! model untouched when it fails.
use candle_core::{Device, Tensor};
use shrink_compress::quant::{
    quantize_model, quantize_model_in_place, Include, QuantConfig, RangeMethod, Scheme,
};
use shrink_ir::Model;

fn bits_of(m: &Model) -> Vec<(String, Vec<u32>)> {
    m.params
        .iter()
        .map(|(n, p)| {
            let v = p.var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (n.clone(), v.iter().map(|x| x.to_bits()).collect())
        })
        .collect()
}

/// lenet5 (conv + linear) with a pruning mask on one weight.
fn model() -> Model {
    let mut m = shrink_ir::zoo::build("lenet5", 5, &Device::Cpu).unwrap();
    let dims = m.params.tensor("fc1.weight").unwrap().dims().to_vec();
    let n: usize = dims.iter().product();
    let keep: Vec<f32> = (0..n).map(|i| (i % 3 != 0) as u8 as f32).collect();
    m.params.set_mask("fc1.weight", Tensor::from_vec(keep, dims.as_slice(), &Device::Cpu).unwrap()).unwrap();
    m
}

fn copy(m: &Model) -> Model {
    let mut c = m.clone();
    c.params = m.params.deep_clone().unwrap();
    c
}

#[test]
fn in_place_equals_quantize_model() {
    let base = model();
    let mut cases = 0;
    for scheme in Scheme::ALL {
        for bits in [2, 4, 8] {
            for range in ["max", "mse", "p99", "0.1"] {
                for (per_channel, bias) in [(false, false), (false, true), (true, false), (true, true)] {
                    let cfg = QuantConfig {
                        scheme,
                        bits,
                        range: RangeMethod::parse(range).unwrap(),
                        per_channel,
                        include: Include { bias, batchnorm: false },
                    };
                    if per_channel && cfg.include.bias {
                        // Biases have no channels: both refuse, and neither changes the model.
                        let (mut a, mut b) = (copy(&base), copy(&base));
                        assert!(quantize_model(&mut a, &cfg).is_err());
                        assert!(quantize_model_in_place(&mut b, &cfg).is_err());
                        assert_eq!(bits_of(&b), bits_of(&base));
                        assert!(b.params.quants().is_empty());
                        continue;
                    }
                    let (mut a, mut b) = (copy(&base), copy(&base));
                    let qa = quantize_model(&mut a, &cfg).unwrap();
                    let qb = quantize_model_in_place(&mut b, &cfg).unwrap();
                    let what = format!("{scheme} {bits} bits {range} per_channel={per_channel} bias={bias}");
                    assert_eq!(bits_of(&a), bits_of(&b), "{what}");
                    assert_ne!(bits_of(&b), bits_of(&base), "{what}: nothing quantized");
                    assert_eq!(a.params.quants(), b.params.quants(), "{what}");
                    assert_eq!(qa.len(), qb.len());
                    for (x, y) in qa.iter().zip(&qb) {
                        assert_eq!(
                            (&x.name, &x.dims, &x.slot, x.values.len()),
                            (&y.name, &y.dims, &y.slot, y.len())
                        );
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 3 * 3 * 4 * 3);
}
