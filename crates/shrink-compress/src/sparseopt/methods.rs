//! The five update rules of the lab and the driver [`run`].

use std::cmp::Ordering;
use std::fmt;

use serde::Serialize;

use super::problem::Problem;

/// The lab's learning rate.
pub const LAB_LEARNING_RATE: f64 = 0.02;
/// The lab's number of steps.
pub const LAB_STEPS: usize = 200;
/// The lab's sparsity target (`n = 2` nonzeros for IHT, 2 exempt weights for trimmed L1).
pub const LAB_KEEP: usize = 2;
/// The lab's `λ` grid for [`Method::L1`].
pub const LAB_L1_LAMBDAS: [f64; 4] = [0.2, 0.5, 1.0, 2.0];
/// The lab's threshold grid for [`Method::Prox`] (per step, *not* scaled by the learning rate).
pub const LAB_PROX_THRESHOLDS: [f64; 4] = [0.004, 0.01, 0.02, 0.04];
/// The lab's `λ` grid for [`Method::TrimmedL1`].
pub const LAB_TRIMMED_LAMBDAS: [f64; 4] = [1.0, 2.0, 5.0, 10.0];

/// An update rule. Every step starts with the gradient step `W ← W − lr·2Xᵀ(XW − y)`
/// (for [`Method::L1`] the penalty subgradient is added to that gradient first); the
/// variants differ in what happens to `W` afterwards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Plain gradient descent.
    Gd,
    /// Projected GD / iterative hard thresholding: after the gradient step, if more than
    /// `keep` weights are nonzero, zero all but the `keep` largest in magnitude.
    Iht {
        /// Number of weights kept.
        keep: usize,
    },
    /// L1 subgradient descent on `L(W) + λ‖W‖₁`: the step uses `∇L + λ·sign(W)` with
    /// `sign(0) = 0`.
    L1 {
        /// Penalty strength `λ ≥ 0`.
        lambda: f64,
    },
    /// Proximal gradient (ISTA): after the gradient step, soft-threshold every weight,
    /// `w ← sign(w)·max(|w| − threshold, 0)`. As in the lab, `threshold` is used as is,
    /// **not** multiplied by the learning rate (it plays the role of `lr·λ`).
    Prox {
        /// Per-step threshold `≥ 0`.
        threshold: f64,
    },
    /// Trimmed L1 (proximal form): after the gradient step, soft-threshold by `λ·lr`
    /// every weight except the `keep` largest in magnitude, which are exempt.
    TrimmedL1 {
        /// Penalty strength `λ ≥ 0` (the threshold is `λ·lr`).
        lambda: f64,
        /// Number of exempt (largest-magnitude) weights.
        keep: usize,
    },
}

/// A method parameter, for tables and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A count (`keep`).
    Count(usize),
    /// A real number (`lambda`, `threshold`).
    Real(f64),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Count(n) => write!(f, "{n}"),
            ParamValue::Real(x) => write!(f, "{x}"),
        }
    }
}

impl Method {
    /// The command-line name: `gd`, `iht`, `l1`, `prox` or `trimmed-l1`.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Gd => "gd",
            Method::Iht { .. } => "iht",
            Method::L1 { .. } => "l1",
            Method::Prox { .. } => "prox",
            Method::TrimmedL1 { .. } => "trimmed-l1",
        }
    }

    /// The parameters by name, in a fixed order.
    pub fn params(&self) -> Vec<(&'static str, ParamValue)> {
        match *self {
            Method::Gd => vec![],
            Method::Iht { keep } => vec![("keep", ParamValue::Count(keep))],
            Method::L1 { lambda } => vec![("lambda", ParamValue::Real(lambda))],
            Method::Prox { threshold } => vec![("threshold", ParamValue::Real(threshold))],
            Method::TrimmedL1 { lambda, keep } => {
                vec![("lambda", ParamValue::Real(lambda)), ("keep", ParamValue::Count(keep))]
            }
        }
    }

    /// Every configuration the lab ran, in the lab's order: GD, IHT, then the four
    /// values of each of L1, prox and trimmed L1.
    pub fn lab_sweep() -> Vec<Method> {
        let mut all = vec![Method::Gd, Method::Iht { keep: LAB_KEEP }];
        all.extend(LAB_L1_LAMBDAS.iter().map(|&lambda| Method::L1 { lambda }));
        all.extend(LAB_PROX_THRESHOLDS.iter().map(|&threshold| Method::Prox { threshold }));
        all.extend(LAB_TRIMMED_LAMBDAS.iter().map(|&lambda| Method::TrimmedL1 { lambda, keep: LAB_KEEP }));
        all
    }

    /// Checks the parameters against a problem with `dim` weights.
    pub fn validate(&self, dim: usize) -> Result<(), RunError> {
        let strength = |name: &'static str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(RunError::InvalidStrength { name, value })
            }
        };
        let keep = |keep: usize| {
            if keep <= dim {
                Ok(())
            } else {
                Err(RunError::KeepTooLarge { keep, dim })
            }
        };
        match *self {
            Method::Gd => Ok(()),
            Method::Iht { keep: k } => keep(k),
            Method::L1 { lambda } => strength("lambda", lambda),
            Method::Prox { threshold } => strength("threshold", threshold),
            Method::TrimmedL1 { lambda, keep: k } => {
                strength("lambda", lambda)?;
                keep(k)
            }
        }
    }
}

impl fmt::Display for Method {
    /// `gd`, `iht(keep=2)`, `l1(lambda=0.5)`, `prox(threshold=0.01)`,
    /// `trimmed-l1(lambda=1, keep=2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        let params = self.params();
        if !params.is_empty() {
            let parts: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, "({})", parts.join(", "))?;
        }
        Ok(())
    }
}

/// Invalid arguments to [`run`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    /// `steps` is 0.
    #[error("steps must be at least 1")]
    ZeroSteps,
    /// The learning rate is not a finite positive number.
    #[error("learning rate must be finite and > 0, got {0}")]
    InvalidLearningRate(f64),
    /// `keep` is larger than the number of weights.
    #[error("keep = {keep} exceeds the number of weights ({dim})")]
    KeepTooLarge {
        /// Requested `keep`.
        keep: usize,
        /// Number of weights of the problem.
        dim: usize,
    },
    /// `lambda` or `threshold` is negative, NaN or infinite.
    #[error("{name} must be finite and >= 0, got {value}")]
    InvalidStrength {
        /// `lambda` or `threshold`.
        name: &'static str,
        /// The value given.
        value: f64,
    },
}

/// The result of [`run`]: `weights_history[k]` is `W_k` and `loss_history[k]` is
/// `L(W_k) = Σ(X W_k − y)²` for `k = 0..=steps`, so both have `steps + 1` entries and
/// start with `W_0 = 0`, `L(W_0) = Σ y²`.
///
/// The loss is always the data loss, without any penalty term.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// `W_0, W_1, …, W_steps`.
    pub weights_history: Vec<Vec<f64>>,
    /// `L(W_0), L(W_1), …, L(W_steps)`.
    pub loss_history: Vec<f64>,
}

impl Trace {
    /// `W_steps`.
    pub fn final_weights(&self) -> &[f64] {
        self.weights_history.last().expect("a trace is never empty")
    }

    /// `L(W_steps)`.
    pub fn final_loss(&self) -> f64 {
        *self.loss_history.last().expect("a trace is never empty")
    }

    /// Number of steps taken.
    pub fn steps(&self) -> usize {
        self.loss_history.len() - 1
    }

    /// Number of exactly-nonzero final weights.
    pub fn final_nonzeros(&self) -> usize {
        self.final_weights().iter().filter(|w| **w != 0.0).count()
    }
}

/// Runs `steps` updates of `method` from `W_0 = 0` with learning rate `lr`.
///
/// Errors if `steps == 0`, `lr` is not finite and positive, `keep > dim`, or a `lambda` /
/// `threshold` is negative or not finite. The computation is in `f64` with the same
/// operation order as the lab's numpy code (see the [module docs](super)).
pub fn run(problem: &Problem, method: Method, lr: f64, steps: usize) -> Result<Trace, RunError> {
    if steps == 0 {
        return Err(RunError::ZeroSteps);
    }
    if !(lr.is_finite() && lr > 0.0) {
        return Err(RunError::InvalidLearningRate(lr));
    }
    let dim = problem.dim();
    method.validate(dim)?;

    let mut w = vec![0.0; dim];
    let mut weights_history = Vec::with_capacity(steps + 1);
    let mut loss_history = Vec::with_capacity(steps + 1);
    weights_history.push(w.clone());
    loss_history.push(problem.loss(&w));
    for _ in 0..steps {
        step(problem, method, lr, &mut w);
        weights_history.push(w.clone());
        loss_history.push(problem.loss(&w));
    }
    Ok(Trace { weights_history, loss_history })
}

/// One update of `w` in place.
fn step(problem: &Problem, method: Method, lr: f64, w: &mut [f64]) {
    let mut grad = problem.gradient(w);
    if let Method::L1 { lambda } = method {
        // numpy: gradient = 2 Xᵀ(XW − y) + λ·sign(W), with sign(0) = 0.
        for (g, wi) in grad.iter_mut().zip(w.iter()) {
            *g += lambda * sign(*wi);
        }
    }
    for (wi, g) in w.iter_mut().zip(&grad) {
        *wi -= lr * g;
    }
    match method {
        Method::Gd | Method::L1 { .. } => {}
        Method::Iht { keep } => {
            let nonzero = w.iter().filter(|v| **v != 0.0).count();
            if nonzero > keep {
                for i in smallest_by_magnitude(w, w.len() - keep) {
                    w[i] = 0.0;
                }
            }
        }
        Method::Prox { threshold } => {
            for wi in w.iter_mut() {
                *wi = soft_threshold(*wi, threshold);
            }
        }
        Method::TrimmedL1 { lambda, keep } => {
            let t = lambda * lr;
            for i in smallest_by_magnitude(w, w.len() - keep) {
                w[i] = soft_threshold(w[i], t);
            }
        }
    }
}

/// numpy's `sign`: `1`, `-1`, `0` for `±0`, NaN for NaN.
pub(crate) fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else if x == 0.0 {
        0.0
    } else {
        f64::NAN
    }
}

/// numpy's `sign(w) * maximum(abs(w) − t, 0)`; a negative weight shrunk to zero
/// becomes `-0.0`, exactly as in the lab's printout.
pub(crate) fn soft_threshold(w: f64, t: f64) -> f64 {
    sign(w) * (w.abs() - t).max(0.0)
}

/// Indices (in increasing index order) of the `count` entries of smallest magnitude.
///
/// Ties are broken like numpy's (stable, for short vectors) ascending `argsort` of `|w|`:
/// among equal magnitudes the lower index counts as smaller. NaN counts as the largest
/// magnitude. `count` is clamped to `w.len()`. O(n) on average.
pub fn smallest_by_magnitude<T: Copy + Into<f64>>(w: &[T], count: usize) -> Vec<usize> {
    let count = count.min(w.len());
    if count == 0 {
        return Vec::new();
    }
    let mag = |i: usize| Into::<f64>::into(w[i]).abs();
    let cmp = |a: &usize, b: &usize| -> Ordering { mag(*a).total_cmp(&mag(*b)).then(a.cmp(b)) };
    let mut idx: Vec<usize> = (0..w.len()).collect();
    if count < idx.len() {
        idx.select_nth_unstable_by(count - 1, cmp);
        idx.truncate(count);
    }
    idx.sort_unstable();
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_soft_threshold_follow_numpy() {
        assert_eq!(sign(2.0), 1.0);
        assert_eq!(sign(-0.5), -1.0);
        assert!(sign(0.0) == 0.0 && sign(0.0).is_sign_positive());
        assert!(sign(-0.0) == 0.0 && sign(-0.0).is_sign_positive());
        assert!(sign(f64::NAN).is_nan());
        assert_eq!(soft_threshold(0.5, 0.2), 0.3);
        assert_eq!(soft_threshold(-0.5, 0.25), -0.25);
        let z = soft_threshold(-0.1, 0.2);
        assert!(z == 0.0 && z.is_sign_negative());
        let z = soft_threshold(0.1, 0.2);
        assert!(z == 0.0 && z.is_sign_positive());
    }

    #[test]
    fn smallest_by_magnitude_breaks_ties_by_index() {
        let w = [3.0, -1.0, 0.0, 1.0, -3.0, 2.0];
        assert_eq!(smallest_by_magnitude(&w, 0), Vec::<usize>::new());
        assert_eq!(smallest_by_magnitude(&w, 1), vec![2]);
        assert_eq!(smallest_by_magnitude(&w, 2), vec![1, 2]);
        assert_eq!(smallest_by_magnitude(&w, 3), vec![1, 2, 3]);
        assert_eq!(smallest_by_magnitude(&w, 5), vec![0, 1, 2, 3, 5]);
        assert_eq!(smallest_by_magnitude(&w, 9), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(smallest_by_magnitude(&[1.0f32, f32::NAN, 0.5], 2), vec![0, 2]);
    }

    #[test]
    fn validation_errors_are_typed() {
        let p = Problem::lab();
        let e = |m, lr, steps| run(&p, m, lr, steps).unwrap_err();
        assert_eq!(e(Method::Gd, 0.02, 0), RunError::ZeroSteps);
        assert_eq!(e(Method::Gd, 0.0, 1), RunError::InvalidLearningRate(0.0));
        assert!(matches!(e(Method::Gd, f64::NAN, 1), RunError::InvalidLearningRate(_)));
        assert_eq!(e(Method::Gd, f64::INFINITY, 1), RunError::InvalidLearningRate(f64::INFINITY));
        assert_eq!(e(Method::Iht { keep: 6 }, 0.02, 1), RunError::KeepTooLarge { keep: 6, dim: 5 });
        assert_eq!(
            e(Method::L1 { lambda: -1.0 }, 0.02, 1),
            RunError::InvalidStrength { name: "lambda", value: -1.0 }
        );
        assert!(matches!(
            e(Method::Prox { threshold: f64::NAN }, 0.02, 1),
            RunError::InvalidStrength { name: "threshold", .. }
        ));
        assert_eq!(
            e(Method::TrimmedL1 { lambda: 1.0, keep: 7 }, 0.02, 1),
            RunError::KeepTooLarge { keep: 7, dim: 5 }
        );
        assert_eq!(
            RunError::KeepTooLarge { keep: 6, dim: 5 }.to_string(),
            "keep = 6 exceeds the number of weights (5)"
        );
        assert!(run(&p, Method::Iht { keep: 5 }, 0.02, 1).is_ok());
        assert!(run(&p, Method::Iht { keep: 0 }, 0.02, 1).is_ok());
    }

    #[test]
    fn names_params_and_display() {
        let m = Method::TrimmedL1 { lambda: 1.0, keep: 2 };
        assert_eq!(m.to_string(), "trimmed-l1(lambda=1, keep=2)");
        assert_eq!(Method::Gd.to_string(), "gd");
        assert_eq!(Method::Prox { threshold: 0.004 }.to_string(), "prox(threshold=0.004)");
        assert_eq!(
            serde_json::to_string(&m.params().into_iter().collect::<std::collections::BTreeMap<_, _>>())
                .unwrap(),
            r#"{"keep":2,"lambda":1.0}"#
        );
        assert_eq!(Method::lab_sweep().len(), 14);
    }

    #[test]
    fn first_gd_step_by_hand() {
        // W_1 = 0 − 0.02·(−2Xᵀy) = 0.04·Xᵀy = 0.04·[8, −15, −3, −5, 6].
        let t = run(&Problem::lab(), Method::Gd, 0.02, 1).unwrap();
        let want = [0.32, -0.6, -0.12, -0.2, 0.24];
        for (a, b) in t.weights_history[1].iter().zip(want) {
            assert!((a - b).abs() < 1e-15);
        }
        assert_eq!(t.loss_history[0], 51.0);
        assert_eq!(t.steps(), 1);
    }

    #[test]
    fn keep_extremes() {
        let p = Problem::lab();
        let gd = run(&p, Method::Gd, 0.02, 50).unwrap();
        let all = run(&p, Method::Iht { keep: 5 }, 0.02, 50).unwrap();
        assert_eq!(gd, all);
        let none = run(&p, Method::Iht { keep: 0 }, 0.02, 50).unwrap();
        assert!(none.final_weights().iter().all(|w| *w == 0.0));
        let trimmed_all = run(&p, Method::TrimmedL1 { lambda: 5.0, keep: 5 }, 0.02, 50).unwrap();
        assert_eq!(gd, trimmed_all);
        let zero = run(&p, Method::L1 { lambda: 0.0 }, 0.02, 50).unwrap();
        assert_eq!(gd, zero);
    }
}
