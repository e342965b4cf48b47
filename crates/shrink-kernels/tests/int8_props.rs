//! Property tests of the int8 kernels against scalar references, on every ISA this CPU runs.
//! Integer paths (and the fused epilogues, computed from exact sums) must be bit-identical.
mod common;

use common::{matrix, Rng};
use proptest::prelude::*;
use shrink_kernels::*;

/// Exact reference `Σ_k (x − za)·w`.
fn ref_i32(x: &[u8], m: usize, za: u8, w: &[i8], n: usize, k: usize) -> Vec<i32> {
    let mut y = vec![0i32; m * n];
    for i in 0..m {
        for j in 0..n {
            y[i * n + j] = (0..k).map(|c| (x[i * k + c] as i32 - za as i32) * w[j * k + c] as i32).sum();
        }
    }
    y
}

fn act_for(r: &mut Rng) -> Activation {
    match r.below(3) {
        0 => Activation::None,
        1 => Activation::Relu,
        _ => Activation::Clip { lo: -0.5, hi: 2.0 },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn gemm_matches_reference(m in 1usize..24, n in 1usize..70, k in 0usize..200, za in any::<u8>(), seed in any::<u64>()) {
        let mut r = Rng::new(seed);
        let x = matrix(&mut r, m, k, |r| r.u8());
        let w = matrix(&mut r, n, k, |r| r.i8());
        let packed = PackedI8::pack(&w, n, k).unwrap();
        prop_assert_eq!(packed.unpack(), w.clone());
        let want = ref_i32(&x, m, za, &w, n, k);
        let xq = QuantParams { scale: 0.013, zero_point: za };
        let yq = QuantParams { scale: 0.05, zero_point: 100 };
        let sw: Vec<f32> = (0..n).map(|_| r.f32().abs() * 0.01 + 1e-4).collect();
        let bias: Vec<f32> = (0..n).map(|_| r.f32()).collect();
        let ep = Int8Epilogue { weight_scales: &sw, bias: if r.chance(0.5) { Some(&bias) } else { None }, act: act_for(&mut r) };
        let want_f: Vec<f32> = want.iter().enumerate().map(|(i, &a)| ep.apply(a, xq.scale, i % n)).collect();
        let want_q: Vec<u8> = want_f.iter().map(|&v| yq.quantize(v)).collect();
        for isa in Isa::available() {
            let mut y = vec![0i32; m * n];
            gemm_u8i8_i32(isa, &x, m, za, &packed, &mut y).unwrap();
            prop_assert_eq!(&y, &want, "i32 on {}", isa);
            let mut yf = vec![0f32; m * n];
            gemm_u8i8_f32(isa, &x, m, xq, &packed, &ep, &mut yf).unwrap();
            prop_assert_eq!(&yf, &want_f, "f32 epilogue on {}", isa);
            let mut yu = vec![0u8; m * n];
            gemm_u8i8_u8(isa, &x, m, xq, &packed, &ep, yq, &mut yu).unwrap();
            prop_assert_eq!(&yu, &want_q, "u8 requantization on {}", isa);
        }
    }

    /// Shapes large enough to be split across threads (rows and channel blocks).
    #[test]
    fn gemm_parallel_matches_reference(m in prop::sample::select(vec![1usize, 3, 33, 70]), n in 100usize..260, k in 300usize..700, seed in any::<u64>()) {
        let mut r = Rng::new(seed);
        let x = matrix(&mut r, m, k, |r| r.u8());
        let w = matrix(&mut r, n, k, |r| r.i8());
        let packed = PackedI8::pack(&w, n, k).unwrap();
        let want = ref_i32(&x, m, 3, &w, n, k);
        for isa in Isa::available() {
            let mut y = vec![0i32; m * n];
            gemm_u8i8_i32(isa, &x, m, 3, &packed, &mut y).unwrap();
            prop_assert_eq!(&y, &want, "on {}", isa);
        }
    }

    /// The direct stride-1 kernel: odd channel counts (partial quads and channel blocks),
    /// every padding and dilation, residual or not, serial or split over threads.
    #[test]
    fn direct_conv_matches_the_definition(c in 1usize..11, h in 1usize..13, wd in 1usize..36, kh in 1usize..4, kw in 1usize..4,
                                          dh in 1usize..3, dw in 1usize..3, pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3),
                                          oc in 1usize..21, seed in any::<u64>()) {
        let g = DirectGeom { c, h, w: wd, kh, kw, pad: pads, dilation: (dh, dw) };
        let (oh, ow) = g.out_hw();
        let mut r = Rng::new(seed);
        let za = r.u8();
        let x: Vec<u8> = (0..c * h * wd).map(|_| r.u8()).collect();
        let wt: Vec<i8> = (0..oc * c * kh * kw).map(|_| r.i8()).collect();
        let xq = QuantParams { scale: 0.011, zero_point: za };
        let sw: Vec<f32> = (0..oc).map(|_| r.f32().abs() * 0.01 + 1e-4).collect();
        let bias: Vec<f32> = (0..oc).map(|_| r.f32()).collect();
        let ep = Int8Epilogue { weight_scales: &sw, bias: if r.chance(0.5) { Some(&bias) } else { None }, act: act_for(&mut r) };
        let res: Vec<f32> = (0..oc * oh * ow).map(|_| r.f32()).collect();
        let residual = if r.chance(0.5) { Some(res.as_slice()) } else { None };
        let mut want = vec![0f32; oc * oh * ow];
        for o in 0..oc {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = 0i32;
                    for ci in 0..c {
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = (oy + i * dh) as isize - pads.0 as isize;
                                let ix = (ox + j * dw) as isize - pads.1 as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    let xv = x[(ci * h + iy as usize) * wd + ix as usize] as i32 - za as i32;
                                    s += xv * wt[((o * c + ci) * kh + i) * kw + j] as i32;
                                }
                            }
                        }
                    }
                    let k = (o * oh + oy) * ow + ox;
                    let b = ep.bias.map_or(0.0, |b| b[o]);
                    let v = s as f32 * (xq.scale * sw[o]) + b;
                    want[k] = ep.act.apply(residual.map_or(v, |r| v + r[k]));
                }
            }
        }
        let mut xp = vec![0u8; g.input_len()];
        pack_direct_input_u8(&x, &g, za, &mut xp).unwrap();
        let packed = PackedDirectI8::pack(&wt, oc, c, kh, kw).unwrap();
        for isa in Isa::available() {
            for parallel in [false, true] {
                let mut y = vec![f32::NAN; oc * oh * ow];
                conv_direct_u8i8(isa, &xp, &g, xq, &packed, &ep, residual, &mut y, parallel).unwrap();
                prop_assert_eq!(&y, &want, "on {} (parallel {})", isa, parallel);
            }
        }
    }

    #[test]
    fn conv_via_im2col_matches_direct(c in 1usize..5, h in 1usize..12, wd in 1usize..12, kh in 1usize..4, kw in 1usize..4,
                                      sh in 1usize..3, sw in 1usize..3, dh in 1usize..3, dw in 1usize..3,
                                      pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), oc in 1usize..20, seed in any::<u64>()) {
        let g = Conv2dGeom { c, h, w: wd, kh, kw, stride: (sh, sw), pad: pads, dilation: (dh, dw) };
        let Ok((oh, ow)) = g.out_hw() else { return Ok(()) };
        let mut r = Rng::new(seed);
        let za = r.u8();
        let x: Vec<u8> = (0..c * h * wd).map(|_| r.u8()).collect();
        let wt: Vec<i8> = (0..oc * g.k()).map(|_| r.i8()).collect();
        // Direct convolution: padded taps are skipped (they are the zero point).
        let mut want = vec![0i32; oh * ow * oc];
        for o in 0..oc {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = 0i32;
                    for ci in 0..c {
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = (oy * sh + i * dh) as isize - pads.0 as isize;
                                let ix = (ox * sw + j * dw) as isize - pads.1 as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    let xv = x[(ci * h + iy as usize) * wd + ix as usize] as i32 - za as i32;
                                    s += xv * wt[((o * c + ci) * kh + i) * kw + j] as i32;
                                }
                            }
                        }
                    }
                    want[(oy * ow + ox) * oc + o] = s;
                }
            }
        }
        let mut cols = vec![0u8; oh * ow * g.k()];
        im2col_u8(&x, &g, za, &mut cols).unwrap();
        let packed = PackedI8::pack(&wt, oc, g.k()).unwrap();
        for isa in Isa::available() {
            let mut y = vec![0i32; oh * ow * oc];
            gemm_u8i8_i32(isa, &cols, oh * ow, za, &packed, &mut y).unwrap();
            prop_assert_eq!(&y, &want, "on {}", isa);
        }
    }

    #[test]
    fn depthwise_matches_direct(c in 1usize..6, h in 1usize..15, wd in 1usize..20, k in prop::sample::select(vec![1usize, 3, 5]),
                                s in 1usize..3, d in 1usize..3, p in 0usize..3, seed in any::<u64>()) {
        let g = Conv2dGeom { c, h, w: wd, kh: k, kw: k, stride: (s, s), pad: (p, p, p, p), dilation: (d, d) };
        let Ok((oh, ow)) = g.out_hw() else { return Ok(()) };
        let mut r = Rng::new(seed);
        let xq = QuantParams { scale: 0.02, zero_point: r.u8() };
        let yq = QuantParams { scale: 0.1, zero_point: 128 };
        let x: Vec<u8> = (0..c * h * wd).map(|_| r.u8()).collect();
        let wt: Vec<i8> = (0..c * k * k).map(|_| r.i8()).collect();
        let sw: Vec<f32> = (0..c).map(|_| r.f32().abs() * 0.01 + 1e-4).collect();
        let bias: Vec<f32> = (0..c).map(|_| r.f32()).collect();
        let ep = Int8Epilogue { weight_scales: &sw, bias: Some(&bias), act: act_for(&mut r) };
        let mut want = vec![0f32; c * oh * ow];
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0i32;
                    for i in 0..k {
                        for j in 0..k {
                            let iy = (oy * s + i * d) as isize - p as isize;
                            let ix = (ox * s + j * d) as isize - p as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                acc += (x[(ch * h + iy as usize) * wd + ix as usize] as i32 - xq.zero_point as i32)
                                    * wt[(ch * k + i) * k + j] as i32;
                            }
                        }
                    }
                    want[(ch * oh + oy) * ow + ox] = ep.apply(acc, xq.scale, ch);
                }
            }
        }
        let want_q: Vec<u8> = want.iter().map(|&v| yq.quantize(v)).collect();
        for isa in Isa::available() {
            let mut y = vec![0f32; c * oh * ow];
            depthwise_u8i8(isa, &x, &g, xq, &wt, &ep, DwOut::F32(&mut y)).unwrap();
            prop_assert_eq!(&y, &want, "f32 on {}", isa);
            let mut yu = vec![0u8; c * oh * ow];
            depthwise_u8i8(isa, &x, &g, xq, &wt, &ep, DwOut::U8(&mut yu, yq)).unwrap();
            prop_assert_eq!(&yu, &want_q, "u8 on {}", isa);
        }
    }
}

#[test]
fn requantization_rounds_half_to_even_and_saturates() {
    let q = QuantParams { scale: 1.0, zero_point: 10 };
    assert_eq!(q.quantize(0.5), 10);
    assert_eq!(q.quantize(1.5), 12);
    assert_eq!(q.quantize(2.5), 12);
    assert_eq!(q.quantize(-0.5), 10);
    assert_eq!(q.quantize(-11.0), 0);
    assert_eq!(q.quantize(1e9), 255);
    assert_eq!(q.quantize(f32::NAN), 0);
}

#[test]
fn extreme_values_are_exact() {
    // K at the limit of the widest tile with every product at its extreme (255 · −128).
    let (m, n, k) = (5, 33, 1001);
    let x = vec![255u8; m * k];
    let w = vec![-128i8; n * k];
    let packed = PackedI8::pack(&w, n, k).unwrap();
    for isa in Isa::available() {
        let mut y = vec![0i32; m * n];
        gemm_u8i8_i32(isa, &x, m, 0, &packed, &mut y).unwrap();
        assert!(y.iter().all(|&v| v == -255 * 128 * k as i32), "on {isa}");
        gemm_u8i8_i32(isa, &x, m, 255, &packed, &mut y).unwrap();
        assert!(y.iter().all(|&v| v == 0), "on {isa}");
    }
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    assert!(PackedI8::pack(&[0; 5], 2, 3).is_err());
    assert!(PackedI8::pack(&[], 1, MAX_K + 1).is_err());
    let p = PackedI8::pack(&[1; 6], 2, 3).unwrap();
    let mut y = [0i32; 2];
    let e = gemm_u8i8_i32(Isa::Scalar, &[0; 4], 1, 0, &p, &mut y).unwrap_err();
    assert!(e.to_string().contains("int8 activations"), "{e}");
    assert!(gemm_u8i8_i32(Isa::Scalar, &[0; 3], 1, 0, &p, &mut [0i32; 3]).is_err());
    let ep = Int8Epilogue { weight_scales: &[1.0], bias: None, act: Activation::None };
    let xq = QuantParams { scale: 1.0, zero_point: 0 };
    assert!(gemm_u8i8_f32(Isa::Scalar, &[0; 3], 1, xq, &p, &ep, &mut [0f32; 2]).is_err());
    let ep2 = Int8Epilogue { weight_scales: &[1.0, 1.0], bias: None, act: Activation::None };
    let bad = QuantParams { scale: 0.0, zero_point: 0 };
    assert!(gemm_u8i8_u8(Isa::Scalar, &[0; 3], 1, xq, &p, &ep2, bad, &mut [0u8; 2]).is_err());
    let g = Conv2dGeom::square(1, 2, 2, 5, 1, 0);
    assert!(g.out_hw().is_err());
    assert!(im2col_u8(&[0; 4], &g, 0, &mut []).is_err());
    let g = Conv2dGeom { stride: (0, 1), ..Conv2dGeom::square(1, 4, 4, 3, 1, 0) };
    assert!(g.out_hw().is_err());
}
