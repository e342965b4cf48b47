//! Choosing the range of a slice: fixed, max (the labs' choice), a percentile, or the
//! MSE-optimal range on a grid.
use super::formula::{min_max, quantize_slice, Range};
use super::{QuantError, Result, Scheme};

/// How the range of each slice is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeMethod {
    /// A fixed half-range `q` > 0: clip's `q`, symmetric `alpha = q`, asymmetric `[-q, q]`.
    Fixed(f64),
    /// From the data: `max|w|` (clip `q`, symmetric `alpha`) or `[min, max]` (asymmetric).
    Max,
    /// The `p`-th percentile (0 < p <= 100) of `|w|`, or `[P(100 - p), P(p)]` of `w`
    /// (asymmetric), over the kept (unpruned) entries, linearly interpolated like numpy.
    Percentile(f64),
    /// The range minimizing the mean squared quantization error over the kept entries, searched
    /// over `MSE_GRID` shrink factors `t = k / MSE_GRID` of the max range.
    Mse,
}

/// Grid size of the MSE search.
pub const MSE_GRID: usize = 100;

impl RangeMethod {
    /// Parses `max`, `mse`, `pNN` (percentile, e.g. `p99.9`) or a positive number.
    pub fn parse(s: &str) -> Result<RangeMethod> {
        let s = s.trim();
        let bad =
            || QuantError::Range(format!("range must be a number > 0, `max`, `mse` or `pNN`, got `{s}`"));
        let m = match s {
            "max" => RangeMethod::Max,
            "mse" => RangeMethod::Mse,
            _ => match s.strip_prefix('p') {
                Some(p) => RangeMethod::Percentile(p.parse().map_err(|_| bad())?),
                None => RangeMethod::Fixed(s.parse().map_err(|_| bad())?),
            },
        };
        m.check()?;
        Ok(m)
    }

    /// Checks that a fixed range is positive and a percentile is in (0, 100].
    pub fn check(&self) -> Result<()> {
        match *self {
            RangeMethod::Fixed(q) if !(q > 0.0 && q.is_finite()) => {
                Err(QuantError::Range(format!("range q must be positive and finite, got {q}")))
            }
            RangeMethod::Percentile(p) if !(p > 0.0 && p <= 100.0) => {
                Err(QuantError::Range(format!("percentile must be in (0, 100], got {p}")))
            }
            _ => Ok(()),
        }
    }
}

/// The lab's own range of a slice: `max|w|` or `[min, max]` over all entries.
fn max_range(scheme: Scheme, w: &[f32]) -> Range {
    let (lo, hi) = min_max(w);
    let amax = lo.abs().max(hi.abs());
    match scheme {
        Scheme::Clip => Range::Clip { q: amax as f64 },
        Scheme::Symmetric => Range::Symmetric { alpha: amax },
        Scheme::Asymmetric => Range::Asymmetric { alpha: hi - lo, beta: lo },
    }
}

fn width(r: Range) -> f64 {
    match r {
        Range::Clip { q } => q,
        Range::Symmetric { alpha } => alpha as f64,
        Range::Asymmetric { alpha, .. } => alpha as f64,
    }
}

/// The `p`-th percentile of `v` (linear interpolation between closest ranks, like
/// `numpy.percentile`); reorders `v`.
pub fn percentile(v: &mut [f32], p: f64) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let pos = p / 100.0 * (v.len() - 1) as f64;
    let k = pos.floor() as usize;
    let frac = pos - k as f64;
    let (_, &mut a, rest) = v.select_nth_unstable_by(k, f32::total_cmp);
    if frac == 0.0 || rest.is_empty() {
        return a;
    }
    let b = rest.iter().copied().fold(f32::INFINITY, f32::min);
    (a as f64 + (b as f64 - a as f64) * frac) as f32
}

/// Chooses the range of one slice.
pub fn choose(
    scheme: Scheme,
    bits: u32,
    method: RangeMethod,
    w: &[f32],
    keep: Option<&[bool]>,
) -> Result<Range> {
    method.check()?;
    let max = max_range(scheme, w);
    let kept = || -> Vec<f32> {
        match keep {
            Some(k) => w.iter().zip(k).filter(|(_, &k)| k).map(|(&x, _)| x).collect(),
            None => w.to_vec(),
        }
    };
    let r = match method {
        RangeMethod::Max => return Ok(max),
        RangeMethod::Fixed(q) => match scheme {
            Scheme::Clip => Range::Clip { q },
            Scheme::Symmetric => Range::Symmetric { alpha: q as f32 },
            Scheme::Asymmetric => Range::Asymmetric { alpha: (2.0 * q) as f32, beta: -q as f32 },
        },
        RangeMethod::Percentile(p) => {
            let mut v = kept();
            match scheme {
                Scheme::Clip | Scheme::Symmetric => {
                    v.iter_mut().for_each(|x| *x = x.abs());
                    let a = percentile(&mut v, p);
                    if scheme == Scheme::Clip {
                        Range::Clip { q: a as f64 }
                    } else {
                        Range::Symmetric { alpha: a }
                    }
                }
                Scheme::Asymmetric => {
                    let hi = percentile(&mut v, p);
                    let lo = percentile(&mut v, 100.0 - p).min(hi);
                    Range::Asymmetric { alpha: hi - lo, beta: lo }
                }
            }
        }
        RangeMethod::Mse => {
            let v = kept();
            let mut best = (f64::INFINITY, max);
            for k in 1..=MSE_GRID {
                let t = k as f64 / MSE_GRID as f64;
                let cand = match max {
                    Range::Clip { q } => Range::Clip { q: q * t },
                    Range::Symmetric { alpha } => Range::Symmetric { alpha: (alpha as f64 * t) as f32 },
                    Range::Asymmetric { alpha, beta } => {
                        // Shrink around the centre of [min, max].
                        let mid = beta as f64 + alpha as f64 / 2.0;
                        let half = alpha as f64 / 2.0 * t;
                        let lo = (mid - half) as f32;
                        Range::Asymmetric { alpha: ((mid + half) as f32) - lo, beta: lo }
                    }
                };
                if width(cand) <= 0.0 {
                    continue;
                }
                let (q, _) = quantize_slice(&v, None, cand, bits);
                let err: f64 = q.iter().zip(&v).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
                if err < best.0 {
                    best = (err, cand);
                }
            }
            best.1
        }
    };
    // A percentile can collapse to zero width on a slice that is not constant: use max then.
    if width(r) <= 0.0 || !width(r).is_finite() {
        return Ok(max);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_methods() {
        assert_eq!(RangeMethod::parse("max").unwrap(), RangeMethod::Max);
        assert_eq!(RangeMethod::parse("mse").unwrap(), RangeMethod::Mse);
        assert_eq!(RangeMethod::parse("p99.9").unwrap(), RangeMethod::Percentile(99.9));
        assert_eq!(RangeMethod::parse("1.5").unwrap(), RangeMethod::Fixed(1.5));
        for bad in ["0", "-1", "p0", "p101", "abc", "nan", "inf"] {
            assert!(RangeMethod::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&mut v, 50.0), 2.5);
        assert_eq!(percentile(&mut v, 100.0), 4.0);
        assert_eq!(percentile(&mut v, 0.0), 1.0);
    }

    #[test]
    fn mse_range_beats_max_on_outliers() {
        let mut w: Vec<f32> = (0..10000).map(|i| ((i as f32) * 0.37).sin() * 0.1).collect();
        w.push(1.0);
        let r = choose(Scheme::Symmetric, 4, RangeMethod::Mse, &w, None).unwrap();
        let mse = |r| {
            let (q, _) = quantize_slice(&w, None, r, 4);
            q.iter().zip(&w).map(|(a, b)| (a - b).powi(2)).sum::<f32>()
        };
        assert!(mse(r) < mse(Range::Symmetric { alpha: 1.0 }), "{r:?}");
    }
}
