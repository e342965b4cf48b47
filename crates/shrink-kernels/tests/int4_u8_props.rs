//! Property tests of the int4 × u8 (W4A8) kernel against f64 references, on every ISA this CPU
//! runs: odd K, K not a multiple of the group, all-zero rows and columns, tiles of 1–5 rows.
mod common;

use common::{assert_close, matrix, Rng};
use proptest::prelude::*;
use shrink_kernels::*;

/// f64 reference over the dequantized weights and the u8-quantized activations (what the
/// kernel computes exactly in integers), and the tolerance scale `Σ |x̂·ŵ| + |b|`.
fn reference(
    x: &[f32],
    m: usize,
    w: &PackedI4U8,
    bias: Option<&[f32]>,
    act: Activation,
) -> (Vec<f64>, Vec<f64>) {
    let (n, k) = (w.n(), w.k());
    let wq = w.dequantize();
    let mut y = vec![0f64; m * n];
    let mut s = vec![0f64; m * n];
    for i in 0..m {
        let (q, p) = quantize_row_u8(&x[i * k..(i + 1) * k]);
        let xd: Vec<f64> = q.iter().map(|&c| p.scale as f64 * (c as f64 - p.zero_point as f64)).collect();
        for j in 0..n {
            let b = bias.map_or(0.0, |b| b[j] as f64);
            let (mut acc, mut mag) = (b, b.abs());
            for c in 0..k {
                let t = wq[j * k + c] as f64 * xd[c];
                acc += t;
                mag += t.abs();
            }
            y[i * n + j] = match act {
                Activation::None => acc,
                Activation::Relu => acc.max(0.0),
                Activation::Clip { lo, hi } => acc.max(lo as f64).min(hi as f64),
            };
            s[i * n + j] = mag;
        }
    }
    (y, s)
}

fn act_for(r: &mut Rng) -> Activation {
    match r.below(3) {
        0 => Activation::None,
        1 => Activation::Relu,
        _ => Activation::Clip { lo: -0.25, hi: 0.5 },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn int4_u8_matches_reference(m in prop::sample::select(vec![1usize, 2, 3, 4, 5, 9]), n in 1usize..40,
                                 k in 0usize..420, group in prop::sample::select(vec![0usize, 128, 256]),
                                 relu_input in any::<bool>(), seed in any::<u64>()) {
        let mut r = Rng::new(seed);
        let group = if group == 0 { Int4Group::PerChannel } else { Int4Group::Group(group) };
        let wf = matrix(&mut r, n, k, |r| r.f32());
        let packed = PackedI4U8::quantize(&wf, n, k, group).unwrap();
        // The same codes and scales as the f32-activation int4 format.
        if let Int4Group::PerChannel = group {
            prop_assert_eq!(packed.dequantize(), PackedI4::quantize(&wf, n, k, group).unwrap().dequantize());
        }
        let mut x = matrix(&mut r, m, k, |r| r.f32());
        if relu_input {
            x.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        let bias: Vec<f32> = (0..n).map(|_| r.f32()).collect();
        let b = if r.chance(0.5) { Some(bias.as_slice()) } else { None };
        let act = act_for(&mut r);
        let (want, scale) = reference(&x, m, &packed, b, act);
        for isa in Isa::available() {
            let mut y = vec![f32::NAN; m * n];
            linear_i4u8(isa, &x, m, &packed, b, act, &mut y).unwrap();
            assert_close(&format!("int4 x u8 {group:?} on {isa}"), &y, &want, &scale);
        }
    }

    /// Against the f32-activation int4 kernel: the only difference is the activations'
    /// rounding, at most half a step (`scale / 2`) per element.
    #[test]
    fn int4_u8_error_is_the_activation_rounding(m in 1usize..4, n in 1usize..20, k in 1usize..300, seed in any::<u64>()) {
        let mut r = Rng::new(seed);
        let wf = matrix(&mut r, n, k, |r| r.f32());
        let a = PackedI4U8::quantize(&wf, n, k, Int4Group::PerChannel).unwrap();
        let f = PackedI4::quantize(&wf, n, k, Int4Group::PerChannel).unwrap();
        let x = matrix(&mut r, m, k, |r| r.f32());
        let (mut ya, mut yf) = (vec![0f32; m * n], vec![0f32; m * n]);
        linear_i4u8(Isa::detect(), &x, m, &a, None, Activation::None, &mut ya).unwrap();
        linear_i4(Isa::detect(), &x, m, &f, None, Activation::None, &mut yf).unwrap();
        let wq = f.dequantize();
        for i in 0..m {
            let p = row_params(&x[i * k..(i + 1) * k]);
            for j in 0..n {
                let l1: f32 = wq[j * k..(j + 1) * k].iter().map(|v| v.abs()).sum();
                let tol = 0.5 * p.scale * l1 * 1.001 + 1e-4;
                let d = (ya[i * n + j] - yf[i * n + j]).abs();
                prop_assert!(d <= tol, "row {i} out {j}: {} vs {} (tol {tol})", ya[i * n + j], yf[i * n + j]);
            }
        }
    }

    #[test]
    fn int4_u8_codes_round_trip(n in 1usize..9, k in 0usize..300, seed in any::<u64>()) {
        let mut r = Rng::new(seed);
        let q: Vec<i8> = (0..n * k).map(|_| (r.below(16) as i8) - 8).collect();
        let ng = k.div_ceil(128).max(1);
        let s: Vec<f32> = (0..n * ng).map(|_| r.f32()).collect();
        let p = PackedI4U8::pack(&q, &s, n, k, Int4Group::Group(128)).unwrap();
        for (i, &qi) in q.iter().enumerate() {
            prop_assert_eq!(p.code(i / k, i % k), qi);
        }
    }

    /// Every ISA computes the same exact integer sums and combines them in the same f32 order:
    /// the same bits as the portable path (odd N across the 8-channel tiles, 1–9 rows, groups).
    #[test]
    fn int4_u8_every_isa_gives_the_scalar_bits(m in prop::sample::select(vec![1usize, 2, 3, 4, 5, 7, 9]),
                                                n in 1usize..45, k in 0usize..700,
                                                group in prop::sample::select(vec![0usize, 128, 384]),
                                                seed in any::<u64>()) {
        let mut r = Rng::new(seed);
        let group = if group == 0 { Int4Group::PerChannel } else { Int4Group::Group(group) };
        let wf = matrix(&mut r, n, k, |r| r.f32());
        let packed = PackedI4U8::quantize(&wf, n, k, group).unwrap();
        let x = matrix(&mut r, m, k, |r| r.f32() * 3.0);
        let bias: Vec<f32> = (0..n).map(|_| r.f32()).collect();
        let mut want = vec![f32::NAN; m * n];
        linear_i4u8(Isa::Scalar, &x, m, &packed, Some(&bias), Activation::None, &mut want).unwrap();
        for isa in Isa::available() {
            let mut y = vec![f32::NAN; m * n];
            linear_i4u8(isa, &x, m, &packed, Some(&bias), Activation::None, &mut y).unwrap();
            let (yb, wb): (Vec<u32>, Vec<u32>) =
                (y.iter().map(|v| v.to_bits()).collect(), want.iter().map(|v| v.to_bits()).collect());
            prop_assert_eq!(yb, wb, "{} {}x{}x{} {:?}", isa, m, n, k, group);
        }
    }

    /// Shapes large enough to be split across threads.
    #[test]
    fn int4_u8_large_shapes(m in prop::sample::select(vec![1usize, 6]), n in 200usize..300, k in 500usize..900, seed in any::<u64>()) {
        let mut r = Rng::new(seed);
        let wf = matrix(&mut r, n, k, |r| r.f32());
        let x = matrix(&mut r, m, k, |r| r.f32());
        let p = PackedI4U8::quantize(&wf, n, k, Int4Group::Group(256)).unwrap();
        let (want, scale) = reference(&x, m, &p, None, Activation::Relu);
        for isa in Isa::available() {
            let mut y = vec![0f32; m * n];
            linear_i4u8(isa, &x, m, &p, None, Activation::Relu, &mut y).unwrap();
            assert_close(&format!("int4 x u8 large on {isa}"), &y, &want, &scale);
        }
    }
}

#[test]
fn bad_groups_codes_and_lengths_are_errors() {
    assert!(PackedI4U8::pack(&[0; 4], &[1.0; 2], 2, 2, Int4Group::Group(64)).is_err());
    assert!(PackedI4U8::pack(&[9, 0, 0, 0], &[1.0; 2], 2, 2, Int4Group::PerChannel).is_err());
    let w = PackedI4U8::pack(&[1, 2, 3, 4], &[1.0; 2], 2, 2, Int4Group::PerChannel).unwrap();
    let mut y = [0f32; 2];
    assert!(linear_i4u8(Isa::Scalar, &[1.0; 3], 1, &w, None, Activation::None, &mut y).is_err());
    assert!(linear_i4u8(Isa::Scalar, &[1.0; 2], 1, &w, Some(&[0.0]), Activation::None, &mut y).is_err());
}
