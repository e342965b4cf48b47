//! The labs' weight quantizers as pure functions on one slice of weights, evaluated with the
//! same float32 operations, in the same order, as the labs' PyTorch code (so results match
//! `torch` bit for bit), plus the equivalent affine form stored in a [`shrink_ir::QuantSlot`].
//!
//! Rounding is half-to-even, like `torch.round`.
use super::{QuantError, Result, Scheme};

/// The range parameter of one slice (a whole tensor or one output channel).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    /// Half-range `q` of the clip quantizer (a Python float in the lab, hence f64).
    Clip { q: f64 },
    /// `alpha` (largest magnitude) of the symmetric quantizer.
    Symmetric { alpha: f32 },
    /// `alpha` (width `max - min`) and `beta` (lower end `min`) of the asymmetric quantizer.
    Asymmetric { alpha: f32, beta: f32 },
}

impl Range {
    /// The scheme this range belongs to.
    pub fn scheme(&self) -> Scheme {
        match self {
            Range::Clip { .. } => Scheme::Clip,
            Range::Symmetric { .. } => Scheme::Symmetric,
            Range::Asymmetric { .. } => Scheme::Asymmetric,
        }
    }
}

/// `wq = clamp(round_half_even((w - offset) / scale), qmin, qmax) * scale + offset`, the
/// affine form of a quantizer (what the IR's fake-quant op evaluates). `scale == 0` means the
/// slice is constant and passes through unchanged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub scale: f32,
    pub offset: f32,
    pub qmin: f32,
    pub qmax: f32,
}

/// Checks the bit width: 1..=16 for `clip` and `asymmetric`, 2..=16 for `symmetric` (at one
/// bit its `2^(b-1) - 1` levels are zero and the lab formula divides by zero).
pub fn check_bits(scheme: Scheme, bits: u32) -> Result<()> {
    let min = if scheme == Scheme::Symmetric { 2 } else { 1 };
    if bits < min || bits > 16 {
        return Err(QuantError::Bits { scheme, bits, min });
    }
    Ok(())
}

/// Levels of a scheme at `bits`: `N = 2^l` (clip), `s = 2^(b-1) - 1` (symmetric),
/// `2^b - 1` (asymmetric).
pub fn levels(scheme: Scheme, bits: u32) -> f32 {
    match scheme {
        Scheme::Clip => (1u32 << bits) as f32,
        Scheme::Symmetric => ((1u32 << (bits - 1)) - 1) as f32,
        Scheme::Asymmetric => ((1u32 << bits) - 1) as f32,
    }
}

/// The affine form of `range` at `bits`:
/// clip: `scale = delta = 2q/N`, codes `-N/2 ..= N/2 - 1`;
/// symmetric: `scale = alpha/s`, codes `-s ..= s`;
/// asymmetric: `scale = alpha/(2^b - 1)`, `offset = beta`, codes `0 ..= 2^b - 1`.
pub fn affine(range: Range, bits: u32) -> Affine {
    let n = levels(range.scheme(), bits);
    match range {
        Range::Clip { q } => {
            let delta = (2.0 * q / n as f64) as f32;
            Affine { scale: delta, offset: 0.0, qmin: -n / 2.0, qmax: n / 2.0 - 1.0 }
        }
        Range::Symmetric { alpha } => Affine { scale: alpha / n, offset: 0.0, qmin: -n, qmax: n },
        Range::Asymmetric { alpha, beta } => Affine { scale: alpha / n, offset: beta, qmin: 0.0, qmax: n },
    }
}

/// The values of [`quantize_slice`] written into `out` (same length as `w`), without codes or
/// temporaries: the same float32 operations in the same order, so the same bits, in a loop the
/// compiler vectorizes (sweeps run it over every weight of every cell).
pub fn quantize_slice_into(w: &[f32], keep: Option<&[bool]>, range: Range, bits: u32, out: &mut [f32]) {
    assert_eq!(w.len(), out.len(), "quantize_slice_into: output length");
    let a = affine(range, bits);
    if a.scale == 0.0 || !a.scale.is_finite() {
        out.copy_from_slice(w);
    } else {
        let n = levels(range.scheme(), bits);
        match range {
            Range::Clip { q } => {
                let delta = a.scale;
                let (lo, hi) = (-(q as f32), (q - 2.0 * q / n as f64) as f32);
                for (o, &x) in out.iter_mut().zip(w) {
                    *o = (delta * round_ties_even(x / delta)).clamp(lo, hi);
                }
            }
            Range::Symmetric { alpha } => {
                for (o, &x) in out.iter_mut().zip(w) {
                    *o = round_ties_even((x / alpha) * n).clamp(a.qmin, a.qmax) / n * alpha + 0.0;
                }
            }
            Range::Asymmetric { alpha, beta } => {
                for (o, &x) in out.iter_mut().zip(w) {
                    *o = round_ties_even(((x - beta) / alpha) * n).clamp(a.qmin, a.qmax) / n * alpha + beta;
                }
            }
        }
    }
    if let Some(keep) = keep {
        for (o, &k) in out.iter_mut().zip(keep) {
            if !k {
                *o = 0.0;
            }
        }
    }
}

/// `x.round_ties_even()` without the libm call that baseline x86-64 (no SSE4.1) makes of it:
/// adding and subtracting 2^23 rounds `|x| < 2^23` to an integer with the FPU's own
/// half-to-even rounding; larger magnitudes are integers already. Bit-identical, signed zeros
/// included, and it vectorizes.
#[inline]
pub fn round_ties_even(x: f32) -> f32 {
    const TWO_23: f32 = 8_388_608.0;
    let a = x.abs();
    if a < TWO_23 {
        ((a + TWO_23) - TWO_23).copysign(x)
    } else {
        x
    }
}

/// Quantizes one slice with the lab formula of `range`'s scheme; returns the values and the
/// integer codes (what bit-packed storage keeps). Entries whose `keep` flag is false (pruned)
/// become exactly 0. A slice of zero width (`q`/`alpha` = 0, i.e. constant) passes through.
///
/// * clip (MNIST lab): `N = 2^l`, `delta = 2q/N`, `wq = clip(delta*round(w/delta), -q, q - delta)`
/// * symmetric (ResNet lab e): `wq = round(w/alpha * s)/s * alpha + 0`, `s = 2^(b-1) - 1`
/// * asymmetric (ResNet lab a): `wq = round((w - beta)/alpha * (2^b - 1))/(2^b - 1) * alpha + beta`
///
/// Codes are clamped to the scheme's levels, so ranges narrower than the data (fixed, percentile,
/// MSE) saturate; with the lab's own range (max) the clamp never binds.
pub fn quantize_slice(w: &[f32], keep: Option<&[bool]>, range: Range, bits: u32) -> (Vec<f32>, Vec<i32>) {
    let a = affine(range, bits);
    let n = levels(range.scheme(), bits);
    let mut values = Vec::with_capacity(w.len());
    let mut codes = Vec::with_capacity(w.len());
    for (i, &x) in w.iter().enumerate() {
        let (v, k) = if a.scale == 0.0 || !a.scale.is_finite() {
            (x, 0.0)
        } else {
            match range {
                Range::Clip { q } => {
                    // As in Python: delta and q - delta in f64, cast to f32 by torch.
                    let delta = a.scale;
                    let (lo, hi) = (-(q as f32), (q - 2.0 * q / n as f64) as f32);
                    let r = (x / delta).round_ties_even();
                    ((delta * r).clamp(lo, hi), r.clamp(a.qmin, a.qmax))
                }
                Range::Symmetric { alpha } => {
                    let r = ((x / alpha) * n).round_ties_even().clamp(a.qmin, a.qmax);
                    (r / n * alpha + 0.0, r)
                }
                Range::Asymmetric { alpha, beta } => {
                    let r = (((x - beta) / alpha) * n).round_ties_even().clamp(a.qmin, a.qmax);
                    (r / n * alpha + beta, r)
                }
            }
        };
        let kept = keep.is_none_or(|m| m[i]);
        values.push(if kept { v } else { 0.0 });
        codes.push(k as i32);
    }
    (values, codes)
}

/// The MNIST lab's `clip` quantizer on a whole tensor with half-range `q` (> 0).
pub fn clip(w: &[f32], bits: u32, q: f64) -> Result<Vec<f32>> {
    check_bits(Scheme::Clip, bits)?;
    if !(q > 0.0 && q.is_finite()) {
        return Err(QuantError::Range(format!("clip range q must be positive and finite, got {q}")));
    }
    Ok(quantize_slice(w, None, Range::Clip { q }, bits).0)
}

/// The ResNet lab's symmetric quantizer on a whole tensor (`alpha = max|w|`); zeros stay zero.
pub fn symmetric(w: &[f32], bits: u32) -> Result<Vec<f32>> {
    check_bits(Scheme::Symmetric, bits)?;
    let alpha = w.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let keep: Vec<bool> = w.iter().map(|&x| x != 0.0).collect();
    Ok(quantize_slice(w, Some(&keep), Range::Symmetric { alpha }, bits).0)
}

/// The ResNet lab's asymmetric quantizer on a whole tensor (`alpha = max - min`, `beta = min`);
/// zeros stay zero (the lab's STE masks `w == 0`).
pub fn asymmetric(w: &[f32], bits: u32) -> Result<Vec<f32>> {
    check_bits(Scheme::Asymmetric, bits)?;
    let (lo, hi) = min_max(w);
    let keep: Vec<bool> = w.iter().map(|&x| x != 0.0).collect();
    Ok(quantize_slice(w, Some(&keep), Range::Asymmetric { alpha: hi - lo, beta: lo }, bits).0)
}

/// Smallest and largest entry (0, 0 for an empty slice).
pub fn min_max(w: &[f32]) -> (f32, f32) {
    if w.is_empty() {
        return (0.0, 0.0);
    }
    w.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fast_rounding_is_round_ties_even_bit_for_bit() {
        let mut xs =
            vec![0.0f32, -0.0, 0.5, -0.5, 1.5, -2.5, 8_388_607.5, 8_388_608.0, -8_388_609.0, 4_194_304.5];
        xs.extend([f32::MAX, f32::MIN, f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE, 1e-40]);
        xs.extend((0..20_000).map(|i| (i as f32 - 10_000.0) * 0.25 + (i % 7) as f32 * 1e-3));
        for x in xs {
            assert_eq!(round_ties_even(x).to_bits(), x.round_ties_even().to_bits(), "{x}");
        }
        assert!(round_ties_even(f32::NAN).is_nan());
    }

    proptest! {
        /// The vectorized values path equals `quantize_slice` bit for bit (masks included).
        #[test]
        fn slice_into_equals_slice(
            w in proptest::collection::vec(-3.0f32..3.0, 1..300),
            bits in 2u32..=16,
            q in 0.05f64..2.5,
            mask_every in 0usize..5,
        ) {
            let keep: Vec<bool> = (0..w.len()).map(|i| mask_every == 0 || i % mask_every != 0).collect();
            let (lo, hi) = min_max(&w);
            let ranges = [
                Range::Clip { q },
                Range::Symmetric { alpha: lo.abs().max(hi.abs()) },
                Range::Asymmetric { alpha: hi - lo, beta: lo },
            ];
            for range in ranges {
                let (want, _) = quantize_slice(&w, Some(&keep), range, bits);
                let mut got = vec![f32::NAN; w.len()];
                quantize_slice_into(&w, Some(&keep), range, bits, &mut got);
                let same = want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits());
                prop_assert!(same, "{:?} {} bits", range, bits);
            }
        }
    }

    #[test]
    fn clip_matches_hand_values() {
        // l = 2, q = 1: delta = 0.5, levels {-1, -0.5, 0, 0.5}.
        let w = [-2.0, -0.75, -0.25, 0.25, 0.3, 0.75, 2.0];
        assert_eq!(clip(&w, 2, 1.0).unwrap(), vec![-1.0, -1.0, -0.0, 0.0, 0.5, 0.5, 0.5]);
    }

    #[test]
    fn symmetric_and_asymmetric_hand_values() {
        // b = 2: s = 1, levels {-alpha, 0, alpha}.
        assert_eq!(symmetric(&[-1.0, 0.4, 0.6, 0.0], 2).unwrap(), vec![-1.0, 0.0, 1.0, 0.0]);
        // b = 1: levels {min, max}; zeros stay zero.
        assert_eq!(asymmetric(&[-1.0, 0.0, 0.4, 3.0], 1).unwrap(), vec![-1.0, 0.0, -1.0, 3.0]);
    }

    #[test]
    fn ties_round_to_even() {
        // w/delta = 0.5, 1.5, 2.5, -0.5 with delta = 1 (q = 8, l = 4).
        assert_eq!(clip(&[0.5, 1.5, 2.5, -0.5], 4, 8.0).unwrap(), vec![0.0, 2.0, 2.0, -0.0]);
    }

    #[test]
    fn bad_bits_and_ranges() {
        assert!(clip(&[1.0], 0, 1.0).is_err());
        assert!(clip(&[1.0], 17, 1.0).is_err());
        assert!(clip(&[1.0], 16, 1.0).is_ok());
        assert!(symmetric(&[1.0], 1).is_err());
        assert!(asymmetric(&[1.0], 1).is_ok());
        assert!(clip(&[1.0], 4, 0.0).is_err());
        assert!(clip(&[1.0], 4, -1.0).is_err());
        assert!(clip(&[1.0], 4, f64::NAN).is_err());
    }

    #[test]
    fn affine_form_recovers_codes_and_values() {
        let w: Vec<f32> = (0..5000).map(|i| ((i as f32 * 0.7931).sin() * 1.3) + 0.1).collect();
        let (lo, hi) = min_max(&w);
        let amax = lo.abs().max(hi.abs());
        for bits in [1u32, 2, 3, 4, 8, 12, 16] {
            let mut ranges = vec![Range::Clip { q: 0.8 }, Range::Asymmetric { alpha: hi - lo, beta: lo }];
            if bits >= 2 {
                ranges.push(Range::Symmetric { alpha: amax });
            }
            for range in ranges {
                let (values, codes) = quantize_slice(&w, None, range, bits);
                let a = affine(range, bits);
                for ((&v, &k), &x) in values.iter().zip(&codes).zip(&w) {
                    // Fake quant of the original weight and of the quantized value.
                    let fq = |x: f32| (((x - a.offset) / a.scale).round_ties_even().clamp(a.qmin, a.qmax), x);
                    let (k2, _) = fq(v);
                    assert_eq!(k2, k as f32, "{range:?} bits {bits}: code of {v}");
                    let eff = k2 * a.scale + a.offset;
                    let tol = 2.0 * f32::EPSILON * amax.max(a.offset.abs());
                    assert!((eff - v).abs() <= tol, "{range:?} bits {bits}: {eff} vs {v} (w {x})");
                }
            }
        }
    }
}
