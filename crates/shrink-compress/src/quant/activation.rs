//! Activation quantization: per-tensor fake quant on every tensor that feeds a conv or linear
//! layer, calibrated on a few batches of training data.
//!
//! The quantized points ([`act_points`]) are the producers of conv/linear inputs, traced back
//! through the ops that keep values on a quantization grid (Flatten, MaxPool, Dropout): the
//! graph input, the ReLUs, and e.g. a global average pool before the classifier. A point whose
//! calibration data is never negative (every ReLU output) gets an unsigned range `[0, hi]`;
//! otherwise `[lo, hi]` with `lo < 0`. Either way the slot is affine with `2^b - 1` steps:
//! `xq = clamp(round_half_even((x - lo)/scale), 0, 2^b - 1)*scale + lo`,
//! `scale = (hi - lo)/(2^b - 1)`, so 0 is exact in the unsigned case.
//!
//! Ranges ([`ActRange`]): the observed min/max, a percentile of a fixed-stride sample of the
//! values, or the MSE-optimal range over `MSE_GRID` shrink factors of the min/max range.
use super::formula::check_bits;
use super::range::{percentile, MSE_GRID};
use super::{QuantError, Result, Scheme};
use candle_core::Tensor;
use shrink_ir::graph::{NodeId, Op};
use shrink_ir::ops::round_half_even;
use shrink_ir::{Graph, Mode, Model, QuantSlot};

/// Scheme name stored in activation slots.
pub const ACT_SCHEME: &str = "activation";

/// How an activation range is calibrated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ActRange {
    /// The observed minimum and maximum.
    MinMax,
    /// `hi` = the `p`-th percentile of the values, `lo` = the `(100 - p)`-th (or 0 when the
    /// values are never negative).
    Percentile(f64),
    /// The range with the least mean squared quantization error on the sample.
    Mse,
}

impl ActRange {
    /// Parses `minmax` (or `max`), `pNN` (percentile, e.g. `p99.99`) or `mse`.
    pub fn parse(s: &str) -> Result<ActRange> {
        let s = s.trim();
        let bad = || {
            QuantError::Range(format!(
                "activation range must be `minmax`, `mse` or `pNN` (0 < NN <= 100), got `{s}`"
            ))
        };
        match s {
            "minmax" | "max" => Ok(ActRange::MinMax),
            "mse" => Ok(ActRange::Mse),
            _ => {
                let p: f64 = s.strip_prefix('p').ok_or_else(bad)?.parse().map_err(|_| bad())?;
                if p > 0.0 && p <= 100.0 {
                    Ok(ActRange::Percentile(p))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// An activation quantization recipe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActConfig {
    /// Bit width (1..=16).
    pub bits: u32,
    pub range: ActRange,
    /// Values kept per point for percentile/MSE calibration (a fixed-stride sample).
    pub max_samples: usize,
}

impl ActConfig {
    /// A recipe with the default sample size (2^18 values per point).
    pub fn new(bits: u32, range: ActRange) -> Result<ActConfig> {
        check_bits(Scheme::Asymmetric, bits)?;
        Ok(ActConfig { bits, range, max_samples: 1 << 18 })
    }
}

/// The nodes whose outputs are quantized: for each conv/linear layer, the producer of its input
/// found by walking back through Flatten, MaxPool2d and Dropout. Sorted, no duplicates.
pub fn act_points(graph: &Graph) -> Vec<NodeId> {
    let mut points = Vec::new();
    for node in &graph.nodes {
        if !matches!(node.op, Op::Conv2d { .. } | Op::Linear { .. }) {
            continue;
        }
        let mut src = node.inputs[0];
        while matches!(graph.nodes[src].op, Op::Flatten | Op::MaxPool2d { .. } | Op::Dropout { .. }) {
            src = graph.nodes[src].inputs[0];
        }
        points.push(src);
    }
    points.sort_unstable();
    points.dedup();
    points
}

/// Running statistics of one point.
#[derive(Debug, Clone)]
struct PointStats {
    min: f32,
    max: f32,
    sample: Vec<f32>,
}

/// Collects activation statistics over calibration batches, then turns them into slots.
#[derive(Debug)]
pub struct Calibrator {
    cfg: ActConfig,
    points: Vec<NodeId>,
    /// `slot_of[node]` = index into `stats` for quantized nodes.
    slot_of: Vec<Option<usize>>,
    stats: Vec<PointStats>,
    /// Sample every `stride`-th value (fixed after the first batch).
    stride: Option<usize>,
    batches: usize,
    planned_batches: usize,
}

impl Calibrator {
    /// A calibrator for `model` that will see `planned_batches` batches.
    pub fn new(model: &Model, cfg: ActConfig, planned_batches: usize) -> Calibrator {
        let points = act_points(&model.graph);
        let mut slot_of = vec![None; model.graph.nodes.len()];
        for (k, &p) in points.iter().enumerate() {
            slot_of[p] = Some(k);
        }
        let stats =
            vec![PointStats { min: f32::INFINITY, max: f32::NEG_INFINITY, sample: Vec::new() }; points.len()];
        Calibrator {
            cfg,
            points,
            slot_of,
            stats,
            stride: None,
            batches: 0,
            planned_batches: planned_batches.max(1),
        }
    }

    /// Runs `x` through `model` (eval mode, fp32 activations) and records every point.
    pub fn observe(&mut self, model: &Model, x: &Tensor) -> Result<()> {
        let mut err = None;
        let slot_of = &self.slot_of;
        let stats = &mut self.stats;
        let stride = &mut self.stride;
        let (planned, max_samples) = (self.planned_batches, self.cfg.max_samples.max(1));
        model.forward_observed(x, Mode::Eval, &mut |id, y| {
            let Some(k) = slot_of[id] else { return Ok(()) };
            let v = match y.flatten_all().and_then(|t| t.to_vec1::<f32>()) {
                Ok(v) => v,
                Err(e) => {
                    err = Some(e);
                    return Ok(());
                }
            };
            let st = &mut stats[k];
            for &a in &v {
                st.min = st.min.min(a);
                st.max = st.max.max(a);
            }
            let s = *stride.get_or_insert_with(|| (v.len() * planned).div_ceil(max_samples).max(1));
            st.sample.extend(v.iter().step_by(s).copied());
            Ok(())
        })?;
        if let Some(e) = err {
            return Err(e.into());
        }
        self.batches += 1;
        Ok(())
    }

    /// The slots of every point, by node name (an error if no batch was observed).
    pub fn finish(self, model: &Model) -> Result<Vec<(String, QuantSlot)>> {
        if self.batches == 0 {
            return Err(QuantError::Range("activation calibration needs at least one batch".into()));
        }
        let mut out = Vec::with_capacity(self.points.len());
        for (&id, st) in self.points.iter().zip(self.stats) {
            let (lo, hi) = choose_range(&st, self.cfg);
            out.push((model.graph.nodes[id].name.clone(), act_slot(lo, hi, self.cfg.bits)));
        }
        Ok(out)
    }
}

/// The per-tensor affine slot of range `[lo, hi]` at `bits` (`scale = 0` passes values through).
pub fn act_slot(lo: f32, hi: f32, bits: u32) -> QuantSlot {
    let steps = ((1u32 << bits) - 1) as f32;
    let scale = if hi > lo { (hi - lo) / steps } else { 0.0 };
    QuantSlot {
        scheme: ACT_SCHEME.to_string(),
        bits,
        scales: vec![scale],
        offsets: vec![lo],
        qmin: 0.0,
        qmax: steps,
        axis: None,
    }
}

/// Fake-quantizes `x` like the forward pass does with [`act_slot`]`(lo, hi, bits)`.
fn fake(x: f32, lo: f32, scale: f32, steps: f32) -> f32 {
    round_half_even((x - lo) / scale).clamp(0.0, steps) * scale + lo
}

fn choose_range(st: &PointStats, cfg: ActConfig) -> (f32, f32) {
    let unsigned = st.min >= 0.0;
    let lo = if unsigned { 0.0 } else { st.min };
    let hi = st.max.max(lo);
    match cfg.range {
        ActRange::MinMax => (lo, hi),
        ActRange::Percentile(p) => {
            let mut v = st.sample.clone();
            let h = percentile(&mut v, p).max(0.0);
            let l = if unsigned { 0.0 } else { percentile(&mut v, 100.0 - p).min(0.0) };
            if h > l {
                (l, h)
            } else {
                (lo, hi)
            }
        }
        ActRange::Mse => {
            let steps = ((1u32 << cfg.bits) - 1) as f32;
            let mut best = (f64::INFINITY, (lo, hi));
            for k in 1..=MSE_GRID {
                let t = k as f32 / MSE_GRID as f32;
                let (l, h) = (lo * t, hi * t);
                if h <= l {
                    continue;
                }
                let scale = (h - l) / steps;
                let err: f64 =
                    st.sample.iter().map(|&x| ((fake(x, l, scale, steps) - x) as f64).powi(2)).sum();
                if err < best.0 {
                    best = (err, (l, h));
                }
            }
            best.1
        }
    }
}

/// Calibrates activation quantizers on `batches` and attaches them to `model` (nothing is
/// changed on error). Returns the slots by node name.
pub fn calibrate(model: &mut Model, batches: &[Tensor], cfg: ActConfig) -> Result<Vec<(String, QuantSlot)>> {
    check_bits(Scheme::Asymmetric, cfg.bits)?;
    let mut cal = Calibrator::new(model, cfg, batches.len());
    for x in batches {
        cal.observe(model, x)?;
    }
    let slots = cal.finish(model)?;
    for (name, slot) in &slots {
        model.set_act_quant(name, slot.clone())?;
    }
    Ok(slots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrink_ir::zoo;

    #[test]
    fn parses_ranges() {
        assert_eq!(ActRange::parse("minmax").unwrap(), ActRange::MinMax);
        assert_eq!(ActRange::parse("mse").unwrap(), ActRange::Mse);
        assert_eq!(ActRange::parse("p99.9").unwrap(), ActRange::Percentile(99.9));
        for bad in ["", "p0", "p100.5", "x", "0.5", "pabc"] {
            assert!(ActRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn points_are_conv_and_linear_inputs() {
        let g = zoo::graph("lenet5").unwrap();
        let names: Vec<&str> = act_points(&g).iter().map(|&i| g.nodes[i].name.as_str()).collect();
        // conv1 reads the input; conv2 and fc1 read ReLUs through max pools (and a flatten).
        assert_eq!(names.len(), 5, "{names:?}");
        assert_eq!(names[0], "input");
        for n in &names[1..] {
            let node = g.node(n).unwrap();
            assert_eq!(node.op, Op::Relu, "{n}");
        }
        let r = zoo::graph("resnet20").unwrap();
        let pts = act_points(&r);
        // The classifier reads the global average pool, which is quantized itself.
        assert!(pts.iter().any(|&i| r.nodes[i].op == Op::GlobalAvgPool));
    }

    fn stats(values: &[f32]) -> PointStats {
        PointStats {
            min: values.iter().copied().fold(f32::INFINITY, f32::min),
            max: values.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            sample: values.to_vec(),
        }
    }

    #[test]
    fn unsigned_ranges_start_at_zero() {
        let v: Vec<f32> = (0..1000).map(|i| i as f32 / 100.0).collect();
        let cfg = ActConfig::new(8, ActRange::MinMax).unwrap();
        assert_eq!(choose_range(&stats(&v), cfg), (0.0, 9.99));
        let p = choose_range(&stats(&v), ActConfig { range: ActRange::Percentile(50.0), ..cfg });
        assert_eq!(p.0, 0.0);
        assert!((p.1 - 4.995).abs() < 1e-4, "{p:?}");
    }

    #[test]
    fn mse_clips_outliers_and_beats_minmax() {
        let mut v: Vec<f32> = (0..5000).map(|i| ((i as f32) * 0.37).sin().abs()).collect();
        v.push(50.0);
        let cfg = ActConfig::new(4, ActRange::Mse).unwrap();
        let st = stats(&v);
        let (l, h) = choose_range(&st, cfg);
        assert_eq!(l, 0.0);
        assert!(h < 50.0);
        let mse = |(l, h): (f32, f32)| {
            let s = (h - l) / 15.0;
            v.iter().map(|&x| ((fake(x, l, s, 15.0) - x) as f64).powi(2)).sum::<f64>()
        };
        assert!(mse((l, h)) < mse((0.0, 50.0)));
    }

    #[test]
    fn slot_matches_reference_formula_and_keeps_zero() {
        let slot = act_slot(0.0, 6.0, 4);
        let x = Tensor::new(&[0.0f32, 0.2, 0.3, 3.1, 6.0, 7.5], &candle_core::Device::Cpu).unwrap();
        let y = shrink_ir::ops::fake_quant(&x, &slot.fake_quant()).unwrap().to_vec1::<f32>().unwrap();
        let s = 6.0 / 15.0;
        let want: Vec<f32> =
            [0.0f32, 0.2, 0.3, 3.1, 6.0, 7.5].iter().map(|&x| fake(x, 0.0, s, 15.0)).collect();
        assert_eq!(y, want);
        assert_eq!(y[0], 0.0);
        assert_eq!(y[5], 6.0, "clamped to hi");
        // 0.2/0.4 = 0.5 rounds half to even: 0.
        assert_eq!(y[1], 0.0);
    }
}
