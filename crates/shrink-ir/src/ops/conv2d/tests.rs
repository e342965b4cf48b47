//! Kernel-level tests: every data path and kernel backend against a naive f64 convolution.
use super::cpu::{self, DxMode, Path};
use super::geom::Geom;
use super::kernels;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// Naive forward / input-gradient / weight-gradient in f64.
fn naive(x: &[f32], w: &[f32], dy: &[f32], g: &Geom) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (cg, og) = (g.cg(), g.og());
    let mut y = vec![0f64; g.y_len()];
    let mut dx = vec![0f64; g.x_len()];
    let mut dw = vec![0f64; g.w_len()];
    for n in 0..g.n {
        for o in 0..g.o {
            let gi = o / og;
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let yi = ((n * g.o + o) * g.oh + oy) * g.ow + ox;
                    let mut acc = 0f64;
                    for c in 0..cg {
                        let ci = gi * cg + c;
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                                let ix = (ox * g.sw + kx) as isize - g.pw as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let xi = ((n * g.c + ci) * g.h + iy as usize) * g.w + ix as usize;
                                let wi = ((o * cg + c) * g.kh + ky) * g.kw + kx;
                                acc += x[xi] as f64 * w[wi] as f64;
                                dx[xi] += dy[yi] as f64 * w[wi] as f64;
                                dw[wi] += dy[yi] as f64 * x[xi] as f64;
                            }
                        }
                    }
                    y[yi] = acc;
                }
            }
        }
    }
    (y, dx, dw)
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
    let err = got.iter().zip(want).fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
    assert!(err <= 1e-5 * scale, "{what}: max error {err:e} vs scale {scale:e}");
}

/// (n, c, h, w, o, kh, kw, stride, padding, groups)
type Case = (usize, usize, usize, usize, usize, usize, usize, [usize; 2], [usize; 2], usize);

const CASES: &[Case] = &[
    (2, 16, 32, 32, 16, 3, 3, [1, 1], [1, 1], 1),
    (3, 16, 16, 16, 32, 3, 3, [2, 2], [1, 1], 1),
    (3, 32, 8, 8, 64, 3, 3, [1, 1], [1, 1], 1),
    (1, 3, 7, 10, 5, 3, 3, [1, 1], [0, 0], 1),
    (3, 4, 9, 6, 6, 5, 5, [1, 1], [2, 2], 2),
    (1, 6, 11, 9, 6, 3, 3, [2, 1], [0, 1], 6),
    (3, 6, 11, 9, 12, 3, 5, [1, 2], [2, 1], 3),
    (2, 8, 5, 5, 10, 1, 1, [1, 1], [0, 0], 1),
    (2, 8, 9, 9, 10, 1, 1, [2, 2], [0, 0], 2),
    (1, 2, 4, 4, 3, 3, 3, [1, 1], [2, 2], 1),
    (1, 4, 13, 3, 9, 3, 1, [3, 1], [1, 0], 1),
    (5, 3, 32, 32, 16, 3, 3, [1, 1], [1, 1], 1),
    (2, 64, 8, 8, 64, 3, 3, [1, 1], [1, 1], 1),
    (3, 8, 4, 8, 12, 1, 1, [1, 1], [0, 0], 2),
    (2, 16, 8, 4, 32, 1, 1, [1, 1], [0, 0], 1),
    (2, 32, 16, 16, 64, 3, 3, [2, 2], [1, 1], 1),
    (1, 32, 7, 5, 32, 3, 3, [1, 1], [1, 1], 1),
    (2, 6, 9, 7, 64, 3, 2, [1, 1], [1, 0], 2),
    (1, 16, 6, 6, 48, 5, 5, [2, 1], [2, 2], 1),
];

fn run_case(case: &Case, seed: u64) {
    let &(n, c, h, w, o, kh, kw, stride, padding, groups) = case;
    let g = Geom::new([n, c, h, w], [o, c / groups, kh, kw], stride, padding, groups).unwrap();
    let mut rng = Lcg(seed);
    let x = rng.vec(g.x_len());
    let wt = rng.vec(g.w_len());
    let dy = rng.vec(g.y_len());
    let (y_ref, dx_ref, dw_ref) = naive(&x, &wt, &dy, &g);
    let paths: &[Path] = if cpu::cvec_ok(&g) {
        &[Path::Direct, Path::Cvec, Path::Im2col]
    } else if cpu::direct_ok(&g) {
        &[Path::Direct, Path::Im2col]
    } else {
        &[Path::Im2col]
    };
    for &path in paths {
        let tag = format!("{case:?} {path:?}");
        assert_close(&cpu::forward_with(&x, &wt, &g, path), &y_ref, &format!("fwd {tag}"));
        assert_close(&cpu::backward_filter_with(&x, &dy, &g, path), &dw_ref, &format!("dw {tag}"));
        // the transposed forward has C output channels
        let gt_cvec_ok = g.cg() % 16 == 0;
        if g.sh == 1 && g.sw == 1 && g.ph < g.kh && g.pw < g.kw && (path != Path::Cvec || gt_cvec_ok) {
            let dx = cpu::backward_data_with(&dy, &wt, &g, DxMode::AsForward(path));
            assert_close(&dx, &dx_ref, &format!("dx-as-fwd {tag}"));
        }
    }
    if cpu::direct_ok(&g) {
        let dx = cpu::backward_data_with(&dy, &wt, &g, DxMode::Phase);
        assert_close(&dx, &dx_ref, &format!("dx-phase {case:?}"));
    }
    assert_close(
        &cpu::backward_data_with(&dy, &wt, &g, DxMode::Col2im),
        &dx_ref,
        &format!("dx-col2im {case:?}"),
    );
    assert_close(&cpu::forward(&x, &wt, &g), &y_ref, &format!("fwd auto {case:?}"));
    assert_close(&cpu::backward_data(&dy, &wt, &g), &dx_ref, &format!("dx auto {case:?}"));
    assert_close(&cpu::backward_filter(&x, &dy, &g), &dw_ref, &format!("dw auto {case:?}"));
}

#[test]
fn all_paths_match_naive() {
    for (i, case) in CASES.iter().enumerate() {
        run_case(case, 17 + i as u64);
    }
}

#[test]
fn portable_kernels_match_naive() {
    kernels::force_generic(true);
    let r = std::panic::catch_unwind(|| {
        for (i, case) in CASES.iter().enumerate() {
            run_case(case, 101 + i as u64);
        }
    });
    kernels::force_generic(false);
    r.unwrap();
}

#[test]
fn random_shapes_match_naive() {
    let mut rng = Lcg(4242);
    let mut pick = |n: usize| ((rng.next() * 0.5 + 0.5) * n as f32) as usize % n;
    for i in 0..60 {
        let groups = 1 + pick(3);
        let (cg, og) = (1 + pick(4), 1 + pick(6));
        let (kh, kw) = ([1, 2, 3, 5][pick(4)], [1, 3, 4][pick(3)]);
        let (sh, sw) = (1 + pick(3), 1 + pick(3));
        let (ph, pw) = (pick(3), pick(3));
        let (h, w) = (1 + pick(13), 1 + pick(13));
        if h + 2 * ph < kh || w + 2 * pw < kw {
            continue;
        }
        let case: Case = (1 + pick(3), cg * groups, h, w, og * groups, kh, kw, [sh, sw], [ph, pw], groups);
        run_case(&case, 900 + i);
    }
}
