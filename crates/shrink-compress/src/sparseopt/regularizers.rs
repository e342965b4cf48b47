//! Sparsity-inducing regularizers on flat `f32` weight slices, for network training
//! (lab part 2 prep). All functions are pure slice operations: penalties return a value,
//! subgradients are *added* into a caller-provided gradient buffer, and proximal updates
//! modify the weights in place. Sums and norms accumulate in `f64`.
//!
//! # Groups
//! Group functions take a `group_size` and split the slice into consecutive groups of
//! that many weights. For row-major tensors this is the natural structured-sparsity unit:
//!
//! | tensor | layout | group | `group_size` |
//! |---|---|---|---|
//! | linear weight | `[out, in]` | one output neuron (a row) | `in` |
//! | conv weight | `[out, in, kh, kw]` | one output filter | `in·kh·kw` |
//!
//! [`group_size_for_shape`] computes it from a shape.
//!
//! # Conventions
//! * `sign(0) = 0`, so the L1 subgradient at 0 is 0 (numpy's `np.sign`, as in the lab).
//! * The group-lasso subgradient at a zero group is 0 (a valid element of the
//!   subdifferential, the unit ball).
//! * The group-lasso penalty is the plain `Σ_g ‖w_g‖₂`, without the `√|g|` weighting;
//!   all groups of one tensor have the same size, so the weighting is a constant factor
//!   that can be folded into `λ`.
//! * "Trimmed" functions exempt the `keep` largest-magnitude weights; ties are broken as in
//!   [`smallest_by_magnitude`] (the lower index counts as smaller, so is penalized first).
//! * Proximal updates take the *per-step* threshold; for a penalty `λ·R(w)` and learning
//!   rate `lr`, pass `lr·λ`.

use super::methods::smallest_by_magnitude;

/// Invalid arguments to a regularizer function.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegularizerError {
    /// `group_size` is 0.
    #[error("group size must be at least 1")]
    ZeroGroupSize,
    /// The slice length is not a multiple of `group_size`.
    #[error("{len} weights do not split into groups of {group_size}")]
    RaggedGroups {
        /// Number of weights.
        len: usize,
        /// Requested group size.
        group_size: usize,
    },
    /// The gradient buffer does not match the weights.
    #[error("gradient has {got} entries but there are {expected} weights")]
    LengthMismatch {
        /// Gradient length.
        got: usize,
        /// Weight count.
        expected: usize,
    },
    /// `keep` exceeds the number of weights.
    #[error("keep = {keep} exceeds the number of weights ({len})")]
    KeepTooLarge {
        /// Requested `keep`.
        keep: usize,
        /// Number of weights.
        len: usize,
    },
    /// A strength or threshold is negative, NaN or infinite.
    #[error("{name} must be finite and >= 0, got {value}")]
    InvalidStrength {
        /// `lambda` or `threshold`.
        name: &'static str,
        /// The value given.
        value: f32,
    },
}

type Result<T> = std::result::Result<T, RegularizerError>;

fn check_strength(name: &'static str, value: f32) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(RegularizerError::InvalidStrength { name, value })
    }
}

fn check_grad(w: &[f32], grad: &[f32]) -> Result<()> {
    if grad.len() == w.len() {
        Ok(())
    } else {
        Err(RegularizerError::LengthMismatch { got: grad.len(), expected: w.len() })
    }
}

fn check_groups(w: &[f32], group_size: usize) -> Result<()> {
    if group_size == 0 {
        Err(RegularizerError::ZeroGroupSize)
    } else if !w.len().is_multiple_of(group_size) {
        Err(RegularizerError::RaggedGroups { len: w.len(), group_size })
    } else {
        Ok(())
    }
}

fn check_keep(w: &[f32], keep: usize) -> Result<()> {
    if keep <= w.len() {
        Ok(())
    } else {
        Err(RegularizerError::KeepTooLarge { keep, len: w.len() })
    }
}

fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else if x == 0.0 {
        0.0
    } else {
        f32::NAN
    }
}

fn soft(x: f32, t: f32) -> f32 {
    sign(x) * (x.abs() - t).max(0.0)
}

fn norm(g: &[f32]) -> f64 {
    g.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt()
}

/// The group size for structured sparsity over the first axis of a row-major tensor of
/// this shape (rows of a linear weight, output filters of a conv weight): the product of
/// all dimensions but the first; 1 for a vector or scalar.
pub fn group_size_for_shape(shape: &[usize]) -> usize {
    shape.iter().skip(1).product()
}

/// `‖w‖₁ = Σ |w_i|`.
pub fn l1_penalty(w: &[f32]) -> f32 {
    w.iter().map(|&v| f64::from(v.abs())).sum::<f64>() as f32
}

/// `grad += λ·sign(w)` (with `sign(0) = 0`): a subgradient of `λ‖w‖₁`.
pub fn add_l1_subgradient(w: &[f32], lambda: f32, grad: &mut [f32]) -> Result<()> {
    check_strength("lambda", lambda)?;
    check_grad(w, grad)?;
    for (g, &v) in grad.iter_mut().zip(w) {
        *g += lambda * sign(v);
    }
    Ok(())
}

/// Proximal step of `threshold·‖w‖₁`: `w_i ← sign(w_i)·max(|w_i| − threshold, 0)`.
pub fn soft_threshold(w: &mut [f32], threshold: f32) -> Result<()> {
    check_strength("threshold", threshold)?;
    for v in w.iter_mut() {
        *v = soft(*v, threshold);
    }
    Ok(())
}

/// The Euclidean norm of each group.
pub fn group_norms(w: &[f32], group_size: usize) -> Result<Vec<f32>> {
    check_groups(w, group_size)?;
    Ok(w.chunks(group_size).map(|g| norm(g) as f32).collect())
}

/// Group lasso `Σ_g ‖w_g‖₂` over consecutive groups of `group_size` weights.
pub fn group_lasso_penalty(w: &[f32], group_size: usize) -> Result<f32> {
    check_groups(w, group_size)?;
    Ok(w.chunks(group_size).map(norm).sum::<f64>() as f32)
}

/// `grad_g += λ·w_g / ‖w_g‖₂` for every nonzero group (zero groups get nothing): a
/// subgradient of `λ·Σ_g ‖w_g‖₂`.
pub fn add_group_lasso_subgradient(
    w: &[f32],
    group_size: usize,
    lambda: f32,
    grad: &mut [f32],
) -> Result<()> {
    check_strength("lambda", lambda)?;
    check_groups(w, group_size)?;
    check_grad(w, grad)?;
    for (wg, gg) in w.chunks(group_size).zip(grad.chunks_mut(group_size)) {
        let n = norm(wg);
        if n > 0.0 {
            let scale = f64::from(lambda) / n;
            for (g, &v) in gg.iter_mut().zip(wg) {
                *g += (scale * f64::from(v)) as f32;
            }
        }
    }
    Ok(())
}

/// Block soft threshold, the proximal step of `threshold·Σ_g ‖w_g‖₂`:
/// `w_g ← max(0, 1 − threshold/‖w_g‖₂)·w_g`, so a group whose norm is at most
/// `threshold` becomes exactly zero.
pub fn group_soft_threshold(w: &mut [f32], group_size: usize, threshold: f32) -> Result<()> {
    check_strength("threshold", threshold)?;
    check_groups(w, group_size)?;
    for g in w.chunks_mut(group_size) {
        let n = norm(g);
        let scale = if n > f64::from(threshold) { 1.0 - f64::from(threshold) / n } else { 0.0 };
        for v in g.iter_mut() {
            *v = (scale * f64::from(*v)) as f32;
        }
    }
    Ok(())
}

/// [`group_soft_threshold`] where group `g` also owns `bias[g]` (a neuron or filter: its
/// incoming weights and its bias shrink together), so a group driven to zero leaves a unit
/// whose output is exactly zero and can be removed without changing the network.
pub fn group_soft_threshold_with_bias(
    w: &mut [f32],
    bias: &mut [f32],
    group_size: usize,
    threshold: f32,
) -> Result<()> {
    check_strength("threshold", threshold)?;
    check_groups(w, group_size)?;
    if bias.len() * group_size != w.len() {
        return Err(RegularizerError::LengthMismatch { got: bias.len(), expected: w.len() / group_size });
    }
    for (g, b) in w.chunks_mut(group_size).zip(bias.iter_mut()) {
        let n = (norm(g).powi(2) + f64::from(*b).powi(2)).sqrt();
        let scale = if n > f64::from(threshold) { 1.0 - f64::from(threshold) / n } else { 0.0 };
        for v in g.iter_mut() {
            *v = (scale * f64::from(*v)) as f32;
        }
        *b = (scale * f64::from(*b)) as f32;
    }
    Ok(())
}

/// Trimmed L1: `Σ |w_i|` over all weights except the `keep` largest in magnitude.
pub fn trimmed_l1_penalty(w: &[f32], keep: usize) -> Result<f32> {
    check_keep(w, keep)?;
    Ok(smallest_by_magnitude(w, w.len() - keep).into_iter().map(|i| f64::from(w[i].abs())).sum::<f64>()
        as f32)
}

/// `grad_i += λ·sign(w_i)` for every weight except the `keep` largest in magnitude: a
/// subgradient of `λ·` [`trimmed_l1_penalty`] (with the exempt set held fixed).
pub fn add_trimmed_l1_subgradient(w: &[f32], keep: usize, lambda: f32, grad: &mut [f32]) -> Result<()> {
    check_strength("lambda", lambda)?;
    check_keep(w, keep)?;
    check_grad(w, grad)?;
    for i in smallest_by_magnitude(w, w.len() - keep) {
        grad[i] += lambda * sign(w[i]);
    }
    Ok(())
}

/// The lab's trimmed-L1 proximal step: soft-threshold every weight except the `keep`
/// largest in magnitude, which are left untouched.
pub fn trimmed_soft_threshold(w: &mut [f32], keep: usize, threshold: f32) -> Result<()> {
    check_strength("threshold", threshold)?;
    check_keep(w, keep)?;
    for i in smallest_by_magnitude(w, w.len() - keep) {
        w[i] = soft(w[i], threshold);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: [f32; 6] = [3.0, -4.0, 0.0, 0.0, 1.0, -1.0];

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-6)
    }

    #[test]
    fn l1() {
        assert_eq!(l1_penalty(&W), 9.0);
        assert_eq!(l1_penalty(&[]), 0.0);
        let mut g = [1.0; 6];
        add_l1_subgradient(&W, 0.5, &mut g).unwrap();
        assert_eq!(g, [1.5, 0.5, 1.0, 1.0, 1.5, 0.5]);
        let mut w = W;
        soft_threshold(&mut w, 1.5).unwrap();
        assert_eq!(w, [1.5, -2.5, 0.0, 0.0, 0.0, 0.0]);
        let mut w = W;
        soft_threshold(&mut w, 0.0).unwrap();
        assert_eq!(w, W);
    }

    #[test]
    fn group_lasso_rows() {
        // Groups of 2: [3, −4] (norm 5), [0, 0] (norm 0), [1, −1] (norm √2).
        let s2 = 2f32.sqrt();
        assert!(close(&group_norms(&W, 2).unwrap(), &[5.0, 0.0, s2]));
        assert!((group_lasso_penalty(&W, 2).unwrap() - (5.0 + s2)).abs() < 1e-6);
        assert_eq!(group_lasso_penalty(&W, 1).unwrap(), l1_penalty(&W));
        assert_eq!(group_lasso_penalty(&W, 6).unwrap(), (9.0f32 + 16.0 + 2.0).sqrt());

        let mut g = [0.0; 6];
        add_group_lasso_subgradient(&W, 2, 2.0, &mut g).unwrap();
        // λ·w_g/‖w_g‖: 2·[3, −4]/5, zero group untouched, 2·[1, −1]/√2.
        assert!(close(&g, &[1.2, -1.6, 0.0, 0.0, s2, -s2]));

        let mut w = W;
        group_soft_threshold(&mut w, 2, 1.0).unwrap();
        // Scales: 1 − 1/5 = 0.8; zero group stays 0; 1 − 1/√2 ≈ 0.29289.
        let k = 1.0 - 1.0 / s2;
        assert!(close(&w, &[2.4, -3.2, 0.0, 0.0, k, -k]));
        let mut w = W;
        group_soft_threshold(&mut w, 2, 2.0).unwrap();
        assert_eq!(w, [1.8, -2.4, 0.0, 0.0, 0.0, 0.0]);
        // A group whose norm equals the threshold is zeroed.
        let mut w = W;
        group_soft_threshold(&mut w, 2, 5.0).unwrap();
        assert_eq!(w, [0.0; 6]);
    }

    #[test]
    fn group_lasso_conv_filters() {
        // A conv weight [out=2, in=1, kh=1, kw=2]: one group per output filter.
        let shape = [2, 1, 1, 2];
        assert_eq!(group_size_for_shape(&shape), 2);
        assert_eq!(group_size_for_shape(&[7]), 1);
        let w = [0.6f32, 0.8, 0.0, -2.0];
        assert!(close(&group_norms(&w, 2).unwrap(), &[1.0, 2.0]));
        let mut v = w;
        group_soft_threshold(&mut v, group_size_for_shape(&shape), 1.0).unwrap();
        assert!(close(&v, &[0.0, 0.0, 0.0, -1.0]));
    }

    #[test]
    fn trimmed_l1() {
        // The two largest (|−4|, |3|) are exempt.
        assert_eq!(trimmed_l1_penalty(&W, 2).unwrap(), 2.0);
        assert_eq!(trimmed_l1_penalty(&W, 0).unwrap(), 9.0);
        assert_eq!(trimmed_l1_penalty(&W, 6).unwrap(), 0.0);
        let mut g = [0.0; 6];
        add_trimmed_l1_subgradient(&W, 2, 1.0, &mut g).unwrap();
        assert_eq!(g, [0.0, 0.0, 0.0, 0.0, 1.0, -1.0]);
        let mut w = W;
        trimmed_soft_threshold(&mut w, 2, 0.5).unwrap();
        assert_eq!(w, [3.0, -4.0, 0.0, 0.0, 0.5, -0.5]);
        // Tie between |1| at index 4 and |−1| at index 5: keep = 3 exempts the higher index.
        let mut w = W;
        trimmed_soft_threshold(&mut w, 3, 0.5).unwrap();
        assert_eq!(w, [3.0, -4.0, 0.0, 0.0, 0.5, -1.0]);
        assert_eq!(trimmed_l1_penalty(&W, 3).unwrap(), 1.0);
    }

    #[test]
    fn trimmed_soft_threshold_matches_the_lab_step() {
        // The lab's first trimmed-L1 step (λ = 1, lr = 0.02): after the gradient step
        // W = [0.32, −0.6, −0.12, −0.2, 0.24]; the 3 smallest are shrunk by 0.02.
        let mut w = [0.32f32, -0.6, -0.12, -0.2, 0.24];
        trimmed_soft_threshold(&mut w, 2, 0.02).unwrap();
        assert!(close(&w, &[0.32, -0.6, -0.1, -0.18, 0.22]));
    }

    #[test]
    fn errors() {
        let mut g = [0.0; 5];
        assert_eq!(
            add_l1_subgradient(&W, 1.0, &mut g),
            Err(RegularizerError::LengthMismatch { got: 5, expected: 6 })
        );
        assert_eq!(group_lasso_penalty(&W, 0), Err(RegularizerError::ZeroGroupSize));
        assert_eq!(group_lasso_penalty(&W, 4), Err(RegularizerError::RaggedGroups { len: 6, group_size: 4 }));
        assert_eq!(trimmed_l1_penalty(&W, 7), Err(RegularizerError::KeepTooLarge { keep: 7, len: 6 }));
        let mut w = W;
        assert!(matches!(
            soft_threshold(&mut w, -1.0),
            Err(RegularizerError::InvalidStrength { name: "threshold", .. })
        ));
        assert!(soft_threshold(&mut w, f32::NAN).is_err());
        assert_eq!(w, W, "a rejected update leaves the weights alone");
        assert_eq!(
            RegularizerError::RaggedGroups { len: 6, group_size: 4 }.to_string(),
            "6 weights do not split into groups of 4"
        );
    }

    #[test]
    fn group_shrink_with_bias_zeroes_small_units_and_scales_the_rest() {
        // Unit 0: norm sqrt(9+16+0) = 5 > 1 -> scaled by 0.8; unit 1: norm sqrt(0.25+0.25+0.25) < 1 -> zero.
        let mut w = vec![3.0, 4.0, 0.5, -0.5];
        let mut b = vec![0.0, 0.5];
        group_soft_threshold_with_bias(&mut w, &mut b, 2, 1.0).unwrap();
        assert_eq!(b, vec![0.0, 0.0]);
        assert!((w[0] - 2.4).abs() < 1e-6 && (w[1] - 3.2).abs() < 1e-6);
        assert_eq!(&w[2..], &[0.0, 0.0]);
        assert!(group_soft_threshold_with_bias(&mut w, &mut [0.0; 3], 2, 1.0).is_err());
    }
}
