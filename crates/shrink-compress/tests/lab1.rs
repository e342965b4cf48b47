//! The linear-model lab: acceptance values, the lab's printed numbers, and a numpy
//! transcription of the lab's code (values computed once with numpy 2.4, float64).

// Reference values are pasted verbatim from numpy's printout.
#![allow(clippy::excessive_precision)]

use shrink_compress::sparseopt::*;

fn lab_run(method: Method) -> Trace {
    run(&Problem::lab(), method, LAB_LEARNING_RATE, LAB_STEPS).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: impl Fn(f64) -> f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol(*w), "{what}: W[{i}] = {g}, want {w} (all: {got:?})");
    }
}

/// Absolute tolerance.
fn abs(t: f64) -> impl Fn(f64) -> f64 {
    move |_| t
}

/// Relative tolerance (for numbers printed in scientific notation).
fn rel(t: f64) -> impl Fn(f64) -> f64 {
    move |w: f64| t * w.abs()
}

#[test]
fn gd_reaches_the_minimum_norm_solution() {
    let t = lab_run(Method::Gd);
    assert_eq!(t.weights_history.len(), 201);
    assert_eq!(t.loss_history.len(), 201);
    assert_eq!(t.weights_history[0], vec![0.0; 5]);
    assert_eq!(t.loss_history[0], 51.0);
    // Acceptance.
    assert_close(t.final_weights(), &[0.7476, -2.3894, 0.1226, -0.0313, 1.5649], abs(1e-4), "gd");
    // The lab's printout (8 decimals).
    let printed = [0.74759615, -2.38942308, 0.12259615, -0.03125, 1.56490385];
    assert_close(t.final_weights(), &printed, abs(5e-9), "gd vs lab");
    // X⁺y = [311, −994, 51, −13, 651]/416.
    let exact = [311.0, -994.0, 51.0, -13.0, 651.0].map(|v| v / 416.0);
    assert_close(t.final_weights(), &exact, abs(1e-12), "gd vs X⁺y");
    assert!(t.final_loss() < 1e-25);
    assert_eq!(t.final_nonzeros(), 5, "GD is not sparse");
}

#[test]
fn iht_reaches_the_sparse_solution() {
    let t = lab_run(Method::Iht { keep: 2 });
    let w = t.final_weights();
    // Acceptance: exactly [0, −3, 0, 0, 1] (zeros are exact, the rest to rounding).
    for i in [0, 2, 3] {
        assert_eq!(w[i], 0.0, "W[{i}]");
    }
    assert_close(w, &[0.0, -3.0, 0.0, 0.0, 1.0], abs(1e-12), "iht");
    assert_eq!(t.final_nonzeros(), 2);
    // Every iterate after the first step has at most 2 nonzeros.
    for wk in &t.weights_history {
        assert!(wk.iter().filter(|v| **v != 0.0).count() <= 2);
    }
    // First step: W = [0.32, −0.6, −0.12, −0.2, 0.24], keep the 2 largest.
    assert_close(&t.weights_history[1], &[0.32, -0.6, 0.0, 0.0, 0.0], abs(1e-15), "iht step 1");
    assert!(t.final_loss() < 1e-25);
}

#[test]
fn l1_matches_the_lab_printout() {
    let t = lab_run(Method::L1 { lambda: 0.2 });
    let printed = [3.73490632e-01, -2.67447522e+00, 3.12622639e-02, 3.51021267e-04, 1.25352897e+00];
    assert_close(t.final_weights(), &printed, rel(1e-8), "l1 0.2");
    let t = lab_run(Method::L1 { lambda: 0.5 });
    let printed = [9.86962942e-03, -2.94696785e+00, -7.87580251e-04, 8.60508674e-04, 9.57922261e-01];
    assert_close(t.final_weights(), &printed, rel(1e-8), "l1 0.5");
    let t = lab_run(Method::L1 { lambda: 1.0 });
    let printed = [-0.00767726, -2.89320225, 0.00957581, 0.00316848, 0.91767585];
    assert_close(t.final_weights(), &printed, abs(5e-9), "l1 1");
    let t = lab_run(Method::L1 { lambda: 2.0 });
    let printed = [-0.00552779, -2.77999112, -0.04210149, -0.00459144, 0.84427393];
    assert_close(t.final_weights(), &printed, abs(5e-9), "l1 2");
    // Contrary to the lab's prose, the subgradient method yields no exact zeros.
    for lambda in LAB_L1_LAMBDAS {
        assert_eq!(lab_run(Method::L1 { lambda }).final_nonzeros(), 5);
    }
}

#[test]
fn trimmed_l1_matches_the_lab_printout_including_negative_zeros() {
    // Printed: λ = 1, 2, 5: [ 0. -3.  0. -0.  1.]; λ = 10: [ 0. -3. -0. -0.  1.]
    // (`-0.` is a negative zero: numpy would print a tiny nonzero in scientific notation).
    for (lambda, negative_zero) in [
        (1.0, [false, false, true]),
        (2.0, [false, false, true]),
        (5.0, [false, false, true]),
        (10.0, [false, true, true]),
    ] {
        let t = lab_run(Method::TrimmedL1 { lambda, keep: 2 });
        let w = t.final_weights();
        assert_close(w, &[0.0, -3.0, 0.0, 0.0, 1.0], abs(1e-12), "trimmed-l1");
        for (i, neg) in [0, 2, 3].into_iter().zip(negative_zero) {
            assert_eq!(w[i], 0.0);
            assert_eq!(w[i].is_sign_negative(), neg, "λ = {lambda}: sign of W[{i}] = {}", w[i]);
        }
    }
}

#[test]
fn prox_matches_numpy_and_satisfies_the_lasso_conditions() {
    // No printed numbers in the lab (plots only): numpy transcription of proximal_lasso.
    let numpy = [
        (0.004, [0.37069943733576943, -2.6756671707791577, 0.03266545804153037, 0.0, 1.25273694230534]),
        (0.01, [0.0, -2.9499970679612586, 0.0, 0.0, 0.9583336118961215]),
        (0.02, [0.0, -2.899999999999816, 0.0, 0.0, 0.916666666666667]),
        (0.04, [0.0, -2.799999999999999, 0.0, 0.0, 0.8333333333333334]),
    ];
    let p = Problem::lab();
    for (threshold, want) in numpy {
        let t = lab_run(Method::Prox { threshold });
        assert_close(t.final_weights(), &want, abs(1e-12), "prox vs numpy");
        if threshold < 0.01 {
            // λ = 0.2 still has 4 active weights after 200 steps (3 equations): the
            // per-step shrink of 0.004 only slowly removes the null-space component that
            // the early, GD-like steps built up. It reaches the lasso optimum
            // [0, −2.98, 0, 0, 59/60] by step 1000.
            let t = run(&p, Method::Prox { threshold }, LAB_LEARNING_RATE, 1000).unwrap();
            let want = [0.0, -2.98, 0.0, 0.0, 59.0 / 60.0];
            assert_close(t.final_weights(), &want, abs(1e-9), "prox 0.004, 1000 steps");
            continue;
        }
        // Lasso optimality for λ = threshold/lr: ∇L = −λ·sign(W) on the support and
        // |∇L| ≤ λ off it (up to convergence after 200 steps).
        let lambda = threshold / LAB_LEARNING_RATE;
        let g = p.gradient(t.final_weights());
        for (wi, gi) in t.final_weights().iter().zip(&g) {
            if *wi != 0.0 {
                assert!((gi + lambda * wi.signum()).abs() < 1e-3, "t={threshold}: {g:?}");
            } else {
                assert!(gi.abs() <= lambda + 1e-9, "t={threshold}: {g:?}");
            }
        }
    }
    // λ = 2 converged to the closed form [0, −14/5, 0, 0, 5/6].
    let t = lab_run(Method::Prox { threshold: 0.04 });
    assert_close(t.final_weights(), &[0.0, -2.8, 0.0, 0.0, 5.0 / 6.0], abs(1e-12), "prox 0.04");
}

#[test]
fn everything_matches_the_numpy_transcription() {
    // Final weights of the numpy transcription at full precision (repr of float64).
    let numpy: [(Method, [f64; 5]); 6] = [
        (
            Method::Gd,
            [
                0.7475961538461537,
                -2.3894230769230766,
                0.1225961538461535,
                -0.03124999999999963,
                1.5649038461538456,
            ],
        ),
        (Method::Iht { keep: 2 }, [0.0, -2.999999999999999, 0.0, 0.0, 0.9999999999999998]),
        (
            Method::L1 { lambda: 0.2 },
            [
                3.7349063209206840e-01,
                -2.6744752217893488e+00,
                3.1262263870298963e-02,
                3.5102126674897661e-04,
                1.2535289683955033e+00,
            ],
        ),
        (
            Method::L1 { lambda: 0.5 },
            [
                9.869629418203190e-03,
                -2.946967846257349e+00,
                -7.875802509117423e-04,
                8.605086738809609e-04,
                9.579222613015411e-01,
            ],
        ),
        (
            Method::L1 { lambda: 1.0 },
            [
                -0.00767726290642486,
                -2.8932022481815833,
                0.00957580884785223,
                0.00316847832268476,
                0.9176758458254242,
            ],
        ),
        (
            Method::L1 { lambda: 2.0 },
            [
                -0.00552778874636412,
                -2.7799911166340436,
                -0.04210148804008584,
                -0.00459144300378162,
                0.8442739278985611,
            ],
        ),
    ];
    for (m, want) in numpy {
        assert_close(lab_run(m).final_weights(), &want, abs(1e-12), &m.to_string());
    }
    let trimmed = [
        (1.0, [0.0, -2.9999999999999676, 0.0, 0.0, 1.0000000000000002]),
        (2.0, [0.0, -2.999999999999999, 0.0, 0.0, 1.0000000000000002]),
        (5.0, [0.0, -2.999999999999999, 0.0, 0.0, 1.0000000000000002]),
        (10.0, [0.0, -2.999999999999999, 0.0, 0.0, 0.9999999999999998]),
    ];
    for (lambda, want) in trimmed {
        let m = Method::TrimmedL1 { lambda, keep: 2 };
        assert_close(lab_run(m).final_weights(), &want, abs(1e-12), &m.to_string());
    }
}

#[test]
fn loss_histories_line_up_with_the_labs_lists() {
    // The lab's GD list is L(W_1)…L(W_200) = loss_history[1..]: its first entry is
    // L([0.32, −0.6, −0.12, −0.2, 0.24]) = 27.3952.
    let t = lab_run(Method::Gd);
    assert!((t.loss_history[1] - 27.3952).abs() < 1e-12);
    // The lab's prox list is L(W_0)…L(W_199) = loss_history[..200]: it starts at Σy² = 51.
    let t = lab_run(Method::Prox { threshold: 0.01 });
    assert_eq!(t.loss_history[0], 51.0);
    // The loss is the data loss only (no penalty), recomputed from the weights.
    let p = Problem::lab();
    let t = lab_run(Method::L1 { lambda: 2.0 });
    for (w, l) in t.weights_history.iter().zip(&t.loss_history) {
        assert_eq!(p.loss(w), *l);
    }
    // Sparse methods end with a lower loss than their penalized siblings' λ grows.
    let losses: Vec<f64> =
        LAB_L1_LAMBDAS.iter().map(|&lambda| lab_run(Method::L1 { lambda }).final_loss()).collect();
    assert!(losses.windows(2).all(|w| w[0] < w[1]), "{losses:?}");
}

#[test]
fn every_lab_run_is_finite_and_has_full_history() {
    for m in Method::lab_sweep() {
        let t = lab_run(m);
        assert_eq!(t.steps(), LAB_STEPS, "{m}");
        assert!(t.weights_history.iter().flatten().all(|v| v.is_finite()), "{m}");
        assert!(t.loss_history.iter().all(|v| v.is_finite() && *v >= 0.0), "{m}");
    }
}
