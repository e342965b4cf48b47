//! Property tests of the f32-activation kernels (int4 weight-only, CSR f32, CSR i8, block 1×4)
//! against f64 references, on every ISA this CPU runs. Tolerance: see `common::assert_close`.
mod common;

use common::{assert_close, matrix, sparsify, Rng};
use proptest::prelude::*;
use shrink_kernels::*;

/// f64 reference `act(Σ_c w[n,c]·x[m,c] + b[n])` and the tolerance scale `Σ |w·x| + |b|`.
fn reference(
    x: &[f32],
    m: usize,
    w: &[f32],
    n: usize,
    k: usize,
    bias: Option<&[f32]>,
    act: Activation,
) -> (Vec<f64>, Vec<f64>) {
    let mut y = vec![0f64; m * n];
    let mut s = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let b = bias.map_or(0.0, |b| b[j] as f64);
            let mut acc = b;
            let mut mag = b.abs();
            for c in 0..k {
                let t = w[j * k + c] as f64 * x[i * k + c] as f64;
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
    fn int4_matches_reference(m in prop::sample::select(vec![1usize, 2, 5, 17]), n in 1usize..40, k in 0usize..300,
                              group in prop::sample::select(vec![0usize, 32, 64, 128]), seed in any::<u64>()) {
        let mut r = Rng::new(seed);
        let group = if group == 0 { Int4Group::PerChannel } else { Int4Group::Group(group) };
        let wf = matrix(&mut r, n, k, |r| r.f32());
        let packed = PackedI4::quantize(&wf, n, k, group).unwrap();
        let wq = packed.dequantize();
        for (i, &v) in wq.iter().enumerate() {
            // Quantization error at most half a step (scale = max/7 per group).
            prop_assert!((v - wf[i]).abs() <= packed.scale(i / k.max(1), i % k.max(1)) * 0.5 + 1e-6);
        }
        let x = matrix(&mut r, m, k, |r| r.f32());
        let bias: Vec<f32> = (0..n).map(|_| r.f32()).collect();
        let b = if r.chance(0.5) { Some(bias.as_slice()) } else { None };
        let act = act_for(&mut r);
        let (want, scale) = reference(&x, m, &wq, n, k, b, act);
        for isa in Isa::available() {
            let mut y = vec![0f32; m * n];
            linear_i4(isa, &x, m, &packed, b, act, &mut y).unwrap();
            assert_close(&format!("int4 {group:?} on {isa}"), &y, &want, &scale);
        }
    }

    #[test]
    fn int4_codes_round_trip(n in 1usize..9, k in 0usize..100, seed in any::<u64>()) {
        let mut r = Rng::new(seed);
        let q: Vec<i8> = (0..n * k).map(|_| (r.below(16) as i8) - 8).collect();
        let ng = k.div_ceil(32).max(1);
        let s: Vec<f32> = (0..n * ng).map(|_| r.f32()).collect();
        let p = PackedI4::pack(&q, &s, n, k, Int4Group::Group(32)).unwrap();
        for (i, &qi) in q.iter().enumerate() {
            prop_assert_eq!(p.code(i / k, i % k), qi);
        }
    }

    #[test]
    fn sparse_matches_reference(m in prop::sample::select(vec![1usize, 2, 16, 17, 40]), n in 1usize..50, k in 0usize..300,
                                density in prop::sample::select(vec![0.0f64, 0.05, 0.1, 0.5, 1.0]), seed in any::<u64>()) {
        let mut r = Rng::new(seed);
        let mut w = matrix(&mut r, n, k, |r| r.f32());
        sparsify(&mut r, &mut w, density);
        let x = matrix(&mut r, m, k, |r| r.f32());
        let bias: Vec<f32> = (0..n).map(|_| r.f32()).collect();
        let b = if r.chance(0.5) { Some(bias.as_slice()) } else { None };
        let act = act_for(&mut r);
        let (want, scale) = reference(&x, m, &w, n, k, b, act);

        let csr = Csr::from_dense(&w, n, k).unwrap();
        prop_assert_eq!(csr.nnz(), w.iter().filter(|v| **v != 0.0).count());
        let blk = Block14::from_dense(&w, n, k).unwrap();
        let qi8 = CsrI8::quantize(&w, n, k).unwrap();
        // The i8 reference uses the dequantized weights.
        let mut wq = vec![0f32; n * k];
        for (j, row) in wq.chunks_exact_mut(k.max(1)).take(n).enumerate() {
            let amax = w[j * k..(j + 1) * k].iter().fold(0f32, |a, v| a.max(v.abs()));
            let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
            for (c, d) in row.iter_mut().enumerate() {
                *d = (w[j * k + c] / s).round().clamp(-127.0, 127.0) * s;
            }
        }
        let (want_q, scale_q) = reference(&x, m, &wq, n, k, b, act);
        for isa in Isa::available() {
            let mut y = vec![0f32; m * n];
            csr_linear(isa, &x, m, &csr, b, act, &mut y).unwrap();
            assert_close(&format!("CSR f32 on {isa}"), &y, &want, &scale);
            block14_linear(isa, &x, m, &blk, b, act, &mut y).unwrap();
            assert_close(&format!("block 1x4 on {isa}"), &y, &want, &scale);
            csr_i8_linear(isa, &x, m, &qi8, b, act, &mut y).unwrap();
            assert_close(&format!("CSR i8 on {isa}"), &y, &want_q, &scale_q);
        }
    }

    /// Shapes large enough to be split across threads.
    #[test]
    fn large_shapes_match_reference(m in prop::sample::select(vec![1usize, 20]), n in 200usize..300, k in 500usize..800, seed in any::<u64>()) {
        let mut r = Rng::new(seed);
        let mut w = matrix(&mut r, n, k, |r| r.f32());
        let x = matrix(&mut r, m, k, |r| r.f32());
        let p4 = PackedI4::quantize(&w, n, k, Int4Group::Group(64)).unwrap();
        let (want4, scale4) = reference(&x, m, &p4.dequantize(), n, k, None, Activation::None);
        sparsify(&mut r, &mut w, 0.3);
        let (want, scale) = reference(&x, m, &w, n, k, None, Activation::None);
        let csr = Csr::from_dense(&w, n, k).unwrap();
        let blk = Block14::from_dense(&w, n, k).unwrap();
        for isa in Isa::available() {
            let mut y = vec![0f32; m * n];
            linear_i4(isa, &x, m, &p4, None, Activation::None, &mut y).unwrap();
            assert_close(&format!("int4 on {isa}"), &y, &want4, &scale4);
            csr_linear(isa, &x, m, &csr, None, Activation::None, &mut y).unwrap();
            assert_close(&format!("CSR on {isa}"), &y, &want, &scale);
            block14_linear(isa, &x, m, &blk, None, Activation::None, &mut y).unwrap();
            assert_close(&format!("block on {isa}"), &y, &want, &scale);
        }
    }
}

#[test]
fn empty_rows_and_block_padding() {
    // Row 0 empty, row 1 has a block that runs past K = 6.
    let w = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0];
    let csr = Csr::from_dense(&w, 2, 6).unwrap();
    let blk = Block14::from_dense(&w, 2, 6).unwrap();
    assert_eq!((csr.nnz(), blk.nblocks()), (1, 1));
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    for isa in Isa::available() {
        let mut y = [9f32; 2];
        csr_linear(isa, &x, 1, &csr, Some(&[0.5, 0.0]), Activation::None, &mut y).unwrap();
        assert_eq!(y, [0.5, 18.0], "{isa}");
        block14_linear(isa, &x, 1, &blk, None, Activation::None, &mut y).unwrap();
        assert_eq!(y, [0.0, 18.0], "{isa}");
    }
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    assert!(Csr::from_dense(&[0.0; 5], 2, 3).is_err());
    assert!(Csr::from_dense(&[], 0, MAX_SPARSE_K + 1).is_err());
    assert!(CsrI8::from_dense(&[0; 6], &[1.0], 2, 3).is_err());
    assert!(PackedI4::pack(&[9], &[1.0], 1, 1, Int4Group::PerChannel).is_err());
    assert!(PackedI4::pack(&[1], &[1.0], 1, 1, Int4Group::Group(48)).is_err());
    assert!(PackedI4::pack(&[1; 70], &[1.0; 2], 1, 70, Int4Group::Group(32)).is_err());
    let csr = Csr::from_dense(&[1.0; 6], 2, 3).unwrap();
    let e = csr_linear(Isa::Scalar, &[0.0; 2], 1, &csr, None, Activation::None, &mut [0.0; 2]).unwrap_err();
    assert!(e.to_string().contains("sparse activations"), "{e}");
    assert!(
        csr_linear(Isa::Scalar, &[0.0; 3], 1, &csr, Some(&[0.0]), Activation::None, &mut [0.0; 2]).is_err()
    );
    let p = PackedI4::quantize(&[1.0; 6], 2, 3, Int4Group::PerChannel).unwrap();
    assert!(linear_i4(Isa::Scalar, &[0.0; 3], 1, &p, None, Activation::None, &mut [0.0; 3]).is_err());
}
