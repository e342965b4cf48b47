//! Sparse optimization of a linear model — the "linear-model lab".
//!
//! The problem ([`Problem::lab`]) is
//!
//! ```text
//!     X = [[ 1, -2, -1, -1,  1],        y = [7, 1, 1]ᵀ
//!          [ 2, -1,  2,  0, -2],
//!          [-1,  0,  2,  2,  1]]
//!     L(W) = Σ_i (X_i W − y_i)²          (a sum, not a mean)
//!     ∇L(W) = 2 Xᵀ (X W − y)
//! ```
//!
//! started from `W₀ = 0` with learning rate 0.02 for 200 steps ([`LAB_LEARNING_RATE`],
//! [`LAB_STEPS`]). `y = X·[0, −3, 0, 0, 1]ᵀ` exactly, so a 2-sparse exact solution exists,
//! while plain gradient descent from 0 converges to the minimum-norm solution
//! `X⁺y = [311, −994, 51, −13, 651]/416`.
//!
//! [`run`] applies one [`Method`] and returns a [`Trace`] of `W_k` and `L(W_k)` for
//! `k = 0..=steps`. Every step first takes `W ← W − lr·g` and then:
//!
//! | method | `g` | after the gradient step |
//! |---|---|---|
//! | [`Method::Gd`] | `∇L` | — |
//! | [`Method::Iht`] `{keep}` | `∇L` | if more than `keep` weights are nonzero, zero all but the `keep` largest `\|w\|` |
//! | [`Method::L1`] `{lambda}` | `∇L + λ·sign(W)`, `sign(0) = 0` | — |
//! | [`Method::Prox`] `{threshold}` | `∇L` | `w ← sign(w)·max(\|w\| − threshold, 0)` on all weights (threshold **not** scaled by `lr`) |
//! | [`Method::TrimmedL1`] `{lambda, keep}` | `∇L` | the same soft threshold with `λ·lr`, on all but the `keep` largest `\|w\|` |
//!
//! All arithmetic is `f64` in the same operation order as the lab's numpy code (the lab
//! itself ran in float64, so float32 plays no role). Checked against a numpy transcription
//! of the lab's code: every `W_k` of all 14 runs agrees to within 2.3e-15, including the
//! sign of every zero (`-0.0` after soft-thresholding a negative weight).
//!
//! # Results (lr = 0.02, 200 steps) next to the lab's printout
//!
//! | run | final `W` (this crate) | the lab printed | final loss |
//! |---|---|---|---|
//! | gd | `[0.74759615, −2.38942308, 0.12259615, −0.03125, 1.56490385]` | same, to all 8 printed digits | 4e-30 |
//! | iht, keep 2 | `[0, −3, 0, 0, 1]` (exact zeros; `−3 + 9e-16`, `1 − 2e-16`) | `[0, −3, 0, 0, 1]` | 3e-30 |
//! | l1, λ 0.2 | `[3.73490632e-1, −2.67447522, 3.12622639e-2, 3.51021267e-4, 1.25352897]` | same, to all 9 printed digits | 6.8e-3 |
//! | l1, λ 0.5 | `[9.86962942e-3, −2.94696785, −7.87580251e-4, 8.60508674e-4, 9.57922261e-1]` | same | 2.4e-2 |
//! | l1, λ 1 | `[−0.00767726, −2.89320225, 0.00957581, 0.00316848, 0.91767585]` | same | 0.106 |
//! | l1, λ 2 | `[−0.00552779, −2.77999112, −0.04210149, −0.00459144, 0.84427393]` | same | 0.367 |
//! | prox, t 0.004 | `[0.37069944, −2.67566717, 0.03266546, 0, 1.25273694]` | (no numbers printed, plots only) | 6.7e-3 |
//! | prox, t 0.01 | `[0, −2.94999707, −0, −0, 0.95833361]` | (plots only) | 2.3e-2 |
//! | prox, t 0.02 | `[0, −2.9, −0, −0, 0.91666667]` | (plots only) | 9.2e-2 |
//! | prox, t 0.04 | `[0, −2.8, −0, −0, 0.83333333]` | (plots only) | 0.367 |
//! | trimmed-l1, λ 1 | `[0, −3, 0, −0, 1]` (`−3 + 3e-14`) | `[ 0. -3.  0. -0.  1.]` | 5e-27 |
//! | trimmed-l1, λ 2 | `[0, −3, 0, −0, 1]` | `[ 0. -3.  0. -0.  1.]` | 5e-30 |
//! | trimmed-l1, λ 5 | `[0, −3, 0, −0, 1]` | `[ 0. -3.  0. -0.  1.]` | 5e-30 |
//! | trimmed-l1, λ 10 | `[0, −3, −0, −0, 1]` | `[ 0. -3. -0. -0.  1.]` | 3e-30 |
//!
//! There are no numeric differences: every printed number is reproduced to the printed
//! precision, and even the `-0.` entries of the trimmed-L1 printout are the same
//! negative zeros. The prox thresholds are `lr·λ` for the L1 grid (`0.02 × {0.2, 0.5, 1,
//! 2}`), and prox converges to the exact lasso solution for that `λ` (`∇L = −λ·sign(W)`
//! on the support, `|∇L| ≤ λ` off it), e.g. `[0, −2.8, 0, 0, 5/6]` for `λ = 2`; the L1
//! subgradient runs only circle around those points. For `t = 0.004` (`λ = 0.2`) 200 steps
//! are not enough: the early, GD-like steps build up a null-space component of `X` that a
//! shrink of 0.004 per step removes slowly; by step 1000 it reaches `[0, −2.98, 0, 0,
//! 59/60]` (the L1 subgradient run, by contrast, never produces exact zeros).
//!
//! # Quirks of the lab's code, and what this crate does
//!
//! 1. **Loss history offset.** The lab's GD, IHT, L1 and trimmed-L1 loops record the loss
//!    *after* each update (`L(W_1)…L(W_200)`, 200 values) but plot it against
//!    `range(200)`, i.e. shifted one step left; the prox loop records it *before* each
//!    update (`L(W_0)…L(W_199)`). [`Trace::loss_history`] always holds
//!    `L(W_0)…L(W_steps)` (201 values), aligned with `weights_history`; the lab's lists are
//!    `loss_history[1..]` and, for prox, `loss_history[..steps]`.
//! 2. **Data loss only.** The L1 and trimmed-L1 loops log `Σ(XW − y)²` without the
//!    penalty; so does [`Trace`].
//! 3. **Prox threshold is per step.** `proximal_lasso(threshold)` soft-thresholds by
//!    `threshold` itself (the unused `regularization_strength = 2` is dead code), whereas
//!    trimmed L1 thresholds by `λ·lr`. [`Method::Prox`] and [`Method::TrimmedL1`] keep
//!    both conventions.
//! 4. **Hard-coded 3.** IHT zeroes `indices[:3]` and trimmed L1 shrinks `mask[:3]`, which
//!    is `dim − n` only for `dim = 5, n = 2`; here it is `dim − keep`. The trimmed-L1
//!    parameter called `threshold=2` is really this `keep`.
//! 5. **Stale trimmed-L1 mask.** The lab recomputes the mask only when more than 2
//!    weights are nonzero and otherwise reuses the previous step's mask (and would raise
//!    `NameError` if that happened on the first step). This crate recomputes it every
//!    step. The two agree whenever more than `keep` weights are nonzero, and otherwise
//!    the fresh mask selects only zeros, so the shrink is a no-op, whereas a stale mask
//!    could shrink a weight that has become one of the `keep` largest. In the lab's 4
//!    runs the stale branch is never taken (checked in numpy), so results are identical.
//! 6. **Ties.** `np.argsort` on 5 entries sorts stably (insertion sort), so among equal
//!    magnitudes the lower index is pruned/shrunk first; [`smallest_by_magnitude`] uses the
//!    same rule for any length (numpy's own order is not stable for longer vectors).
//!    `np.sign(0) = 0`, so the L1 subgradient is 0 at 0 (Rust's `f64::signum(0.0)` is 1;
//!    not used).
//! 7. **Prose vs numbers.** The lab's text says three weights become "precisely zero"
//!    for L1 with `λ ≥ 0.5`; its own printout shows they only oscillate around zero
//!    (`|w|` between 8e-4 and 4e-2): the subgradient step never lands on 0. Exact zeros come only
//!    from IHT, prox and trimmed L1.
//! 8. The `(d)` listing has no `print` for the weights shown below it; the numbers match
//!    the listed update rule anyway.
//!
//! [`regularizers`] has the `f32` slice versions of these penalties and proximal steps
//! (plus group lasso) for network training.

mod methods;
mod problem;
pub mod regularizers;

pub use methods::{
    run, smallest_by_magnitude, Method, ParamValue, RunError, Trace, LAB_KEEP, LAB_L1_LAMBDAS,
    LAB_LEARNING_RATE, LAB_PROX_THRESHOLDS, LAB_STEPS, LAB_TRIMMED_LAMBDAS,
};
pub use problem::{Problem, ProblemError};
