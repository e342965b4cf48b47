//! The custom conv2d / batch-norm ops against candle's reference implementations:
//! forward values and the gradients autograd produces for every input.
use candle_core::{DType, Device, Tensor, Var, D};
use proptest::prelude::*;
use shrink_ir::ops;

const TOL: f64 = 1e-4;

/// candle's own convolution with PyTorch semantics (asymmetric stride / padding included).
fn reference_conv(x: &Tensor, w: &Tensor, stride: [usize; 2], padding: [usize; 2], groups: usize) -> Tensor {
    if stride[0] == stride[1] && padding[0] == padding[1] {
        return x.conv2d(w, padding[0], stride[0], 1, groups).unwrap();
    }
    let x = x
        .pad_with_zeros(2, padding[0], padding[0])
        .unwrap()
        .pad_with_zeros(3, padding[1], padding[1])
        .unwrap();
    let y = x.conv2d(w, 0, 1, 1, groups).unwrap();
    let (_, _, h, wd) = y.dims4().unwrap();
    let rows = Tensor::arange_step(0u32, h as u32, stride[0] as u32, x.device()).unwrap();
    let cols = Tensor::arange_step(0u32, wd as u32, stride[1] as u32, x.device()).unwrap();
    y.index_select(&rows, 2).unwrap().index_select(&cols, 3).unwrap()
}

/// max |a - b| / max |b| (normwise relative error).
fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    let scale = b.iter().fold(1e-12f64, |m, v| m.max(v.abs() as f64));
    let err = a.iter().zip(&b).fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()));
    err / scale
}

fn randn(shape: &[usize], seed: u64) -> Tensor {
    // candle's randn is not seedable; use a small LCG for reproducible cases.
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

#[derive(Debug, Clone, Copy)]
struct ConvCase {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    groups: usize,
}

/// Naive f64 input / weight gradients of `sum(conv(x, w) * r)`.
fn naive_grads(x: &Tensor, w: &Tensor, r: &Tensor, cc: &ConvCase) -> (Tensor, Tensor) {
    let xv: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
    let wv: Vec<f32> = w.flatten_all().unwrap().to_vec1().unwrap();
    let rv: Vec<f32> = r.flatten_all().unwrap().to_vec1().unwrap();
    let (_, _, oh, ow) = r.dims4().unwrap();
    let (cg, og) = (cc.c / cc.groups, cc.o / cc.groups);
    let (kh, kw) = (cc.k[0], cc.k[1]);
    let mut dx = vec![0f64; xv.len()];
    let mut dw = vec![0f64; wv.len()];
    for n in 0..cc.n {
        for o in 0..cc.o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = rv[((n * cc.o + o) * oh + oy) * ow + ox] as f64;
                    for c in 0..cg {
                        let ci = (o / og) * cg + c;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * cc.stride[0] + ky) as isize - cc.padding[0] as isize;
                                let ix = (ox * cc.stride[1] + kx) as isize - cc.padding[1] as isize;
                                if iy < 0 || ix < 0 || iy >= cc.h as isize || ix >= cc.w as isize {
                                    continue;
                                }
                                let xi = ((n * cc.c + ci) * cc.h + iy as usize) * cc.w + ix as usize;
                                let wi = ((o * cg + c) * kh + ky) * kw + kx;
                                dx[xi] += g * wv[wi] as f64;
                                dw[wi] += g * xv[xi] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    let t = |v: Vec<f64>, like: &Tensor| {
        Tensor::from_vec(v.into_iter().map(|a| a as f32).collect::<Vec<_>>(), like.shape(), &Device::Cpu)
            .unwrap()
    };
    (t(dx, x), t(dw, w))
}

/// Forward against candle's conv; gradients against naive loops and, where candle's own
/// conv backward works for the shape, against candle's autograd too (candle 0.11 derives the
/// input-gradient output padding from the height only, so some asymmetric shapes fail there).
fn check_conv(cc: ConvCase, seed: u64) {
    let x = Var::from_tensor(&randn(&[cc.n, cc.c, cc.h, cc.w], seed)).unwrap();
    let w = Var::from_tensor(&randn(&[cc.o, cc.c / cc.groups, cc.k[0], cc.k[1]], seed + 1)).unwrap();
    let ours = ops::conv2d(x.as_tensor(), w.as_tensor(), cc.stride, cc.padding, cc.groups).unwrap();
    let refy = reference_conv(x.as_tensor(), w.as_tensor(), cc.stride, cc.padding, cc.groups);
    let e = rel_err(&ours, &refy);
    assert!(e < TOL, "{cc:?}: forward rel err {e:e}");
    let r = randn(ours.dims(), seed + 2);
    let g_ours = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let (ndx, ndw) = naive_grads(x.as_tensor(), w.as_tensor(), &r, &cc);
    let g_ref = (&refy * &r).unwrap().sum_all().unwrap().backward().ok();
    for (name, v, naive) in [("dx", &x, &ndx), ("dw", &w, &ndw)] {
        let a = g_ours.get(v.as_tensor()).unwrap_or_else(|| panic!("{cc:?}: no {name}"));
        let e = rel_err(a, naive);
        assert!(e < TOL, "{cc:?}: {name} rel err vs naive {e:e}");
        if let Some(b) = g_ref.as_ref().and_then(|g| g.get(v.as_tensor())) {
            let e = rel_err(a, b);
            assert!(e < TOL, "{cc:?}: {name} rel err vs candle autograd {e:e}");
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn case(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    groups: usize,
) -> ConvCase {
    ConvCase { n, c, h, w, o, k, stride, padding, groups }
}

#[test]
fn conv2d_matches_candle_fixed_cases() {
    let cases = [
        // ResNet-20 shapes
        case(3, 16, 32, 32, 16, [3, 3], [1, 1], [1, 1], 1),
        case(3, 16, 32, 32, 32, [3, 3], [2, 2], [1, 1], 1),
        case(3, 32, 16, 16, 64, [3, 3], [2, 2], [1, 1], 1),
        case(3, 64, 8, 8, 64, [3, 3], [1, 1], [1, 1], 1),
        case(1, 3, 32, 32, 16, [3, 3], [1, 1], [1, 1], 1),
        // padding 0 / 2, kernels 1 / 5, non-square
        case(1, 5, 9, 13, 7, [3, 3], [1, 1], [0, 0], 1),
        case(3, 4, 11, 7, 6, [5, 5], [1, 1], [2, 2], 1),
        case(3, 4, 11, 7, 6, [5, 5], [2, 2], [2, 2], 2),
        case(1, 8, 6, 10, 12, [1, 1], [1, 1], [0, 0], 1),
        case(3, 8, 7, 9, 12, [1, 1], [2, 2], [0, 0], 4),
        // groups 2, depthwise (multiplier 1 and 2)
        case(3, 6, 10, 8, 8, [3, 3], [1, 1], [1, 1], 2),
        case(3, 8, 10, 8, 8, [3, 3], [1, 1], [1, 1], 8),
        case(1, 8, 10, 8, 16, [3, 3], [2, 2], [1, 1], 8),
        case(3, 4, 12, 12, 4, [5, 5], [1, 1], [2, 2], 4),
        // asymmetric stride / padding / kernel
        case(3, 3, 9, 12, 5, [3, 3], [2, 1], [1, 0], 1),
        case(1, 4, 9, 12, 6, [3, 5], [1, 2], [0, 2], 2),
        case(3, 2, 5, 17, 3, [1, 3], [1, 3], [0, 1], 1),
        // padding >= kernel (the input gradient cannot run as a forward conv)
        case(1, 2, 5, 5, 3, [1, 1], [1, 1], [1, 1], 1),
        case(1, 2, 4, 6, 3, [3, 3], [1, 1], [3, 2], 1),
        // 1x1 kernel, stride 1, horizontal padding wider than the kernel: the last row's right
        // padding runs past the plane's rows (found by the property test below).
        case(1, 1, 1, 11, 1, [1, 1], [1, 1], [0, 2], 1),
    ];
    for (i, cc) in cases.into_iter().enumerate() {
        check_conv(cc, 1000 + i as u64);
    }
}

proptest! {
    // A fixed seed: the same 64 shapes every run. With random seeds some runs drew strides larger
    // than the kernel where candle's own conv-transpose (the reference gradient) overflows its
    // allocation (n=1 kh=2 kw=1 sh=3 sw=3 ph=1 pw=1 h=3 w=1).
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0),
        .. ProptestConfig::default()
    })]
    #[test]
    fn conv2d_matches_candle_random(
        n in 1usize..4,
        cg in 1usize..5,
        og in 1usize..7,
        groups in 1usize..4,
        kh in prop::sample::select(vec![1usize, 2, 3, 5]),
        kw in prop::sample::select(vec![1usize, 3, 5]),
        sh in 1usize..4,
        sw in 1usize..4,
        ph in 0usize..3,
        pw in 0usize..3,
        h in 1usize..14,
        w in 1usize..14,
        seed in 0u64..1000,
    ) {
        prop_assume!(h + 2 * ph >= kh && w + 2 * pw >= kw);
        let cc = case(n, cg * groups, h, w, og * groups, [kh, kw], [sh, sw], [ph, pw], groups);
        check_conv(cc, seed);
    }
}

#[test]
fn conv2d_without_input_grad() {
    // The first layer's input is data: only the weight gets a gradient.
    let x = randn(&[2, 3, 8, 8], 7);
    let w = Var::from_tensor(&randn(&[4, 3, 3, 3], 8)).unwrap();
    let y = ops::conv2d(&x, w.as_tensor(), [1, 1], [1, 1], 1).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    assert!(g.get(&x).is_none());
    let refg = reference_conv(&x, w.as_tensor(), [1, 1], [1, 1], 1).sum_all().unwrap().backward().unwrap();
    assert!(rel_err(g.get(w.as_tensor()).unwrap(), refg.get(w.as_tensor()).unwrap()) < TOL);
}

#[test]
fn conv2d_non_contiguous_input() {
    let x = randn(&[3, 2, 9, 7], 9).transpose(2, 3).unwrap(); // [3, 2, 7, 9] strided
    let w = randn(&[4, 2, 3, 3], 10);
    let ours = ops::conv2d(&x, &w, [1, 1], [1, 1], 1).unwrap();
    let refy = reference_conv(&x.contiguous().unwrap(), &w, [1, 1], [1, 1], 1);
    assert!(rel_err(&ours, &refy) < TOL);
}

// ---------------------------------------------------------------------------------------------
// Batch norm

/// Straightforward batch norm from candle ops (the previous implementation).
fn naive_bn(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> (Tensor, Tensor, Tensor) {
    let mut cs = vec![1; x.rank()];
    cs[1] = x.dim(1).unwrap();
    let xc = if x.rank() == 2 { x.t().unwrap() } else { x.transpose(0, 1).unwrap().flatten_from(1).unwrap() };
    let mean = xc.mean_keepdim(D::Minus1).unwrap();
    let var = xc.broadcast_sub(&mean).unwrap().sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
    let xhat = x
        .broadcast_sub(&mean.reshape(cs.as_slice()).unwrap())
        .unwrap()
        .broadcast_div(&(var.reshape(cs.as_slice()).unwrap() + eps).unwrap().sqrt().unwrap())
        .unwrap();
    let y = xhat
        .broadcast_mul(&gamma.reshape(cs.as_slice()).unwrap())
        .unwrap()
        .broadcast_add(&beta.reshape(cs.as_slice()).unwrap())
        .unwrap();
    (y, mean.flatten_all().unwrap(), var.flatten_all().unwrap())
}

fn check_bn(shape: &[usize], offset: f32, seed: u64) {
    let c = shape[1];
    let x =
        Var::from_tensor(&(randn(shape, seed) * 3.0).unwrap().affine(1.0, offset as f64).unwrap()).unwrap();
    let gamma = Var::from_tensor(&randn(&[c], seed + 1)).unwrap();
    let beta = Var::from_tensor(&randn(&[c], seed + 2)).unwrap();
    let (y, stats) = ops::batch_norm_train(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 1e-5).unwrap();
    let (ry, rmean, rvar) = naive_bn(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 1e-5);
    assert!(rel_err(&y, &ry) < TOL, "{shape:?}: y");
    assert!(rel_err(&stats.mean, &rmean) < TOL, "{shape:?}: mean");
    assert!(rel_err(&stats.var, &rvar) < TOL, "{shape:?}: var");
    assert_eq!(stats.count, shape[0] * shape[2..].iter().product::<usize>());
    assert!(!stats.mean.track_op() && !stats.var.track_op());
    let r = randn(shape, seed + 3);
    let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let rg = (&ry * &r).unwrap().sum_all().unwrap().backward().unwrap();
    for (name, v) in [("dx", &x), ("dgamma", &gamma), ("dbeta", &beta)] {
        let e = rel_err(g.get(v.as_tensor()).unwrap(), rg.get(v.as_tensor()).unwrap());
        assert!(e < TOL, "{shape:?}: {name} rel err {e:e}");
    }
}

#[test]
fn batch_norm_train_matches_naive() {
    check_bn(&[8, 16, 32, 32], 0.0, 1);
    check_bn(&[3, 5, 7, 9], 0.5, 2);
    check_bn(&[1, 4, 3, 3], -2.0, 3);
    check_bn(&[16, 10], 1.0, 4);
    check_bn(&[4, 6, 1, 1], 0.0, 5);
    // large offset relative to spread: the variance must not cancel
    check_bn(&[4, 3, 8, 8], 1000.0, 6);
}

#[test]
fn batch_norm_eval_matches_naive() {
    let x = Var::from_tensor(&randn(&[3, 4, 5, 6], 11)).unwrap();
    let gamma = Var::from_tensor(&randn(&[4], 12)).unwrap();
    let beta = Var::from_tensor(&randn(&[4], 13)).unwrap();
    let mean = randn(&[4], 14);
    let var = (randn(&[4], 15).abs().unwrap() + 0.5).unwrap();
    let y =
        ops::batch_norm_eval(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), &mean, &var, 1e-5).unwrap();
    let cs = [1, 4, 1, 1];
    let ry = x
        .as_tensor()
        .broadcast_sub(&mean.reshape(&cs).unwrap())
        .unwrap()
        .broadcast_div(&(var.reshape(&cs).unwrap() + 1e-5).unwrap().sqrt().unwrap())
        .unwrap()
        .broadcast_mul(&gamma.as_tensor().reshape(&cs).unwrap())
        .unwrap()
        .broadcast_add(&beta.as_tensor().reshape(&cs).unwrap())
        .unwrap();
    assert!(rel_err(&y, &ry) < TOL);
    let r = randn(&[3, 4, 5, 6], 16);
    let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let rg = (&ry * &r).unwrap().sum_all().unwrap().backward().unwrap();
    for v in [&x, &gamma, &beta] {
        assert!(rel_err(g.get(v.as_tensor()).unwrap(), rg.get(v.as_tensor()).unwrap()) < TOL);
    }
}

#[test]
fn resnet20_train_step_has_finite_gradients() {
    let dev = Device::Cpu;
    let model = shrink_ir::zoo::build("resnet20", 0, &dev).unwrap();
    let x = randn(&[4, 3, 32, 32], 21);
    let labels = Tensor::new(&[1u32, 5, 9, 0], &dev).unwrap();
    let logits = model.forward(&x, shrink_ir::Mode::Train { seed: 0 }).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
    assert!(loss.to_scalar::<f32>().unwrap().is_finite());
    let grads = shrink_ir::backward(&loss).unwrap();
    let mut n = 0;
    for (name, p) in model.params.iter() {
        if let Some(g) = grads.get(p.var.as_tensor()) {
            let s =
                g.sqr().unwrap().sum_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
            assert!(s.is_finite(), "{name}");
            n += 1;
        }
    }
    assert!(n >= 40, "only {n} parameters got gradients");
}
