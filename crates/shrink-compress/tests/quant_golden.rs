//! The labs' quantizers against PyTorch (fixtures/golden/quant.safetensors, written by
//! tools/golden_quant.py with torch): every value must be equal (`==`, so -0.0 == 0.0), including
//! exact .5 ties (half-to-even) and pruned zeros. Also checks that a model quantized through
//! [`quantize_model`] evaluates (fake quant) to the same values within 2 ulp.
use shrink_compress::quant::{
    self, asymmetric, clip, quantize_source, symmetric, Include, QuantConfig, RangeMethod, Scheme, Source,
};
use std::collections::BTreeMap;

/// Minimal safetensors reader for f32 tensors: name -> (shape, values).
fn read_fixture() -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/golden/quant.safetensors");
    let bytes = std::fs::read(path).expect("fixture (run tools/golden_quant.py)");
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut out = BTreeMap::new();
    for (name, v) in header.as_object().unwrap() {
        if name == "__metadata__" {
            continue;
        }
        assert_eq!(v["dtype"], "F32", "{name}");
        let shape: Vec<usize> =
            v["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        let off: Vec<usize> =
            v["data_offsets"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        let values =
            data[off[0]..off[1]].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        out.insert(name.clone(), (shape, values));
    }
    out
}

fn assert_same(key: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{key}");
    let bad: Vec<(usize, f32, f32)> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (g, w))| g != w)
        .map(|(i, (g, w))| (i, *g, *w))
        .take(5)
        .collect();
    assert!(bad.is_empty(), "{key}: (index, shrink, torch) {bad:?}");
}

fn per_channel(scheme: Scheme, name: &str, shape: &[usize], w: &[f32], bits: u32) -> Vec<f32> {
    let src = Source {
        name: name.into(),
        dims: shape.to_vec(),
        values: w.to_vec(),
        // The lab masks `w == 0`; in a model that is the weight's pruning mask.
        keep: w.contains(&0.0).then(|| w.iter().map(|&x| x != 0.0).collect()),
    };
    let cfg =
        QuantConfig { scheme, bits, range: RangeMethod::Max, per_channel: true, include: Include::default() };
    quantize_source(&src, &cfg).unwrap().values
}

#[test]
fn quantizers_match_pytorch_bit_for_bit() {
    let fx = read_fixture();
    let mut checked = 0;
    let mut ties = 0;
    for (key, (_, want)) in &fx {
        let parts: Vec<&str> = key.split('/').collect();
        if parts[0] == "input" {
            continue;
        }
        let (shape, w) = &fx[&format!("input/{}", parts[1])];
        let bits: u32 = parts[2].strip_prefix('b').unwrap().parse().unwrap();
        let pc = parts.get(3) == Some(&"pc");
        let got = match (parts[0], pc) {
            ("clip", _) => {
                let q: f64 = parts[3].strip_prefix('q').unwrap().parse().unwrap();
                let delta = (2.0 * q / (1u64 << bits) as f64) as f32;
                ties += w.iter().filter(|&&x| ((x / delta) - (x / delta).trunc()).abs() == 0.5).count();
                clip(w, bits, q).unwrap()
            }
            ("symmetric", false) => symmetric(w, bits).unwrap(),
            ("asymmetric", false) => asymmetric(w, bits).unwrap(),
            ("symmetric", true) => per_channel(Scheme::Symmetric, key, shape, w, bits),
            ("asymmetric", true) => per_channel(Scheme::Asymmetric, key, shape, w, bits),
            _ => panic!("unknown key {key}"),
        };
        assert_same(key, &got, want);
        checked += 1;
    }
    assert!(checked >= 200, "only {checked} cases");
    assert!(ties > 100, "fixture should contain exact ties, found {ties}");
}

/// The model path (baked values + QuantSlot, evaluated by the IR's fake-quant) gives the
/// golden values within 2 ulp of the tensor's range, with the exact same codes.
#[test]
fn quantized_model_fake_quant_reproduces_golden() {
    use shrink_ir::candle_core::{Device, Tensor};
    use shrink_ir::{Graph, Model, ModelMeta, ParamKind, ParamStore};
    let fx = read_fixture();
    let (shape, w) = &fx["input/pruned"];
    for (scheme, bits, key) in [
        (Scheme::Asymmetric, 4, "asymmetric/pruned/b4/pc"),
        (Scheme::Symmetric, 3, "symmetric/pruned/b3/pc"),
        (Scheme::Asymmetric, 8, "asymmetric/pruned/b8/pc"),
    ] {
        let mut store = ParamStore::new();
        store
            .insert(
                "fc.weight",
                Tensor::from_slice(w, shape.as_slice(), &Device::Cpu).unwrap(),
                ParamKind::Weight,
            )
            .unwrap();
        // The lab's pruned weights (w == 0) carry a mask, as `shrink prune` leaves them.
        let mask: Vec<f32> = w.iter().map(|&x| (x != 0.0) as u8 as f32).collect();
        store.set_mask("fc.weight", Tensor::from_vec(mask, shape.as_slice(), &Device::Cpu).unwrap()).unwrap();
        let cfg = QuantConfig {
            scheme,
            bits,
            range: RangeMethod::Max,
            per_channel: true,
            include: Include::default(),
        };
        // A one-tensor model: effective_param needs no graph.
        let meta: ModelMeta = shrink_ir::zoo::meta("lenet-300-100").unwrap();
        let mut model = Model { graph: Graph::new(), params: store, meta, act_quant: Default::default() };
        let q = quant::quantize_model(&mut model, &cfg).unwrap();
        let eff =
            model.effective_param("fc.weight").unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want = &fx[key].1;
        let amax = w.iter().fold(0f32, |m, x| m.max(x.abs()));
        for (i, (&e, &t)) in eff.iter().zip(want).enumerate() {
            assert!((e - t).abs() <= 2.0 * f32::EPSILON * amax, "{key}[{i}]: fake quant {e} vs torch {t}");
            if w[i] == 0.0 {
                assert_eq!(e, 0.0, "{key}[{i}]: pruned weight must stay zero");
            }
        }
        assert_same(key, &q[0].values, want);
    }
}

#[test]
fn quantize_into_writes_exactly_the_quantized_values() {
    let fx = read_fixture();
    let mut checked = 0;
    for (key, (shape, w)) in fx.iter().filter(|(k, _)| k.starts_with("input/")) {
        let keep: Vec<bool> = w.iter().map(|&x| x != 0.0).collect();
        let src = Source { name: key.clone(), dims: shape.clone(), values: w.clone(), keep: Some(keep) };
        for scheme in Scheme::ALL {
            for (bits, range, pc) in [
                (4, RangeMethod::Max, false),
                (3, RangeMethod::Mse, true),
                (8, RangeMethod::Percentile(99.0), true),
            ] {
                let cfg = QuantConfig {
                    scheme,
                    bits,
                    range,
                    per_channel: pc && shape.len() >= 2,
                    include: Include::default(),
                };
                let want = quantize_source(&src, &cfg).unwrap().values;
                let mut got = vec![f32::NAN; w.len()];
                quant::quantize_source_into(&src, &cfg, &mut got).unwrap();
                assert_same(&format!("{key} {scheme} b{bits}"), &got, &want);
                checked += 1;
            }
        }
    }
    assert!(checked > 0);
}
