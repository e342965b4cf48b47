//! Line charts written as PNG or SVG.
//!
//! Rendering is pure Rust: plotters with its `ab_glyph` text backend and an embedded
//! DejaVu Sans (see `assets/LICENSE-DejaVu.txt`), so no system fontconfig/freetype is
//! needed. Files are written atomically: the chart goes to a hidden temporary file in the
//! destination directory, which is then renamed over the destination.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// Chart size in pixels (PNG) or user units (SVG).
pub const CHART_SIZE: (u32, u32) = (960, 600);

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Matplotlib's "tab10" palette.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Why a chart could not be written. Messages are one line and start with the path.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The extension is neither `.png` nor `.svg`.
    #[error("{}: unsupported chart format (expected a .png or .svg file name)", path.display())]
    UnsupportedFormat {
        /// Requested destination.
        path: PathBuf,
    },
    /// No point can be drawn (all series empty, non-finite, or `≤ 0` on a log axis).
    #[error("{}: nothing to plot (no finite data points{})", path.display(), if *log_y { " with y > 0 for the log axis" } else { "" })]
    NoData {
        /// Requested destination.
        path: PathBuf,
        /// Whether the y axis was logarithmic.
        log_y: bool,
    },
    /// plotters failed (including the font failing to load).
    #[error("{}: drawing failed: {message}", path.display())]
    Draw {
        /// Requested destination.
        path: PathBuf,
        /// plotters' message.
        message: String,
    },
    /// Writing or renaming the file failed.
    #[error("{}: cannot write chart: {io}", path.display())]
    Io {
        /// Requested destination.
        path: PathBuf,
        /// The I/O error (kept out of the error chain so the message stays one line).
        io: std::io::Error,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Png,
    Svg,
}

/// Draws `series` (label, points) as lines and writes the chart to `path`, as PNG or SVG
/// according to its extension (case-insensitive).
///
/// Points with a non-finite coordinate, or `y ≤ 0` when `log_y`, are skipped and break
/// the line there. With `log_y` the y axis is logarithmic (base 10) and labelled like
/// `1e-3`. Axis ranges cover every drawable point. The file appears atomically (temporary
/// file in the same directory, then rename); the directory must exist.
pub fn line_chart(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_y: bool,
) -> Result<(), PlotError> {
    let path = path.as_ref();
    format_of(path)?;
    let spec = ChartSpec::new(title, x_label, y_label, series, log_y)
        .ok_or_else(|| PlotError::NoData { path: path.to_path_buf(), log_y })?;
    render(path, &spec)
}

/// One histogram series: a label and its bins `(lo, hi, count)`.
pub type Histogram = (String, Vec<(f64, f64, f64)>);

/// Draws histograms as (semi-transparent, overlaid) bars and writes the chart to `path`, PNG
/// or SVG by extension, atomically like [`line_chart`]. With `log_y` the count axis is
/// logarithmic and empty bins are simply not drawn; otherwise bars start at 0.
pub fn histogram_chart(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Histogram],
    log_y: bool,
) -> Result<(), PlotError> {
    let path = path.as_ref();
    format_of(path)?;
    let outlines: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(label, bins)| {
            (label.clone(), bins.iter().flat_map(|&(lo, hi, c)| [(lo, c), (hi, c)]).collect())
        })
        .collect();
    let mut spec = ChartSpec::new(title, x_label, y_label, &outlines, log_y)
        .ok_or_else(|| PlotError::NoData { path: path.to_path_buf(), log_y })?;
    spec.bars = true;
    if !log_y {
        spec.y_range.start = 0.0;
    }
    render(path, &spec)
}

/// The chart format named by `path`'s extension (case-insensitive).
fn format_of(path: &Path) -> Result<Format, PlotError> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => Ok(Format::Png),
        Some("svg") => Ok(Format::Svg),
        _ => Err(PlotError::UnsupportedFormat { path: path.to_path_buf() }),
    }
}

/// Whether every SVG chart also gets a PNG copy beside it (see [`set_png_companions`]).
static PNG_COMPANIONS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// With `on`, every later SVG chart `x.svg` is also drawn as `x.png` beside it (reports ship
/// both: SVG to embed, PNG to paste elsewhere).
pub fn set_png_companions(on: bool) {
    PNG_COMPANIONS.store(on, Ordering::Relaxed);
}

/// Writes `spec` to `path` (format from the extension), plus its PNG companion when asked.
fn render(path: &Path, spec: &ChartSpec) -> Result<(), PlotError> {
    render_one(path, spec)?;
    if format_of(path)? == Format::Svg && PNG_COMPANIONS.load(Ordering::Relaxed) {
        render_one(&path.with_extension("png"), spec)?;
    }
    Ok(())
}

/// Writes `spec` to `path` (format from the extension) through a temporary file.
fn render_one(path: &Path, spec: &ChartSpec) -> Result<(), PlotError> {
    let format = format_of(path)?;
    let draw_err = |message: String| PlotError::Draw { path: path.to_path_buf(), message };
    let io_err = |io| PlotError::Io { path: path.to_path_buf(), io };
    register_embedded_font().map_err(draw_err)?;

    let tmp = temp_path(path, format);
    let hooks = TEMP_FILE_HOOKS.get();
    if let Some(h) = hooks {
        (h.sweep_stale)(path);
        (h.register)(&tmp);
    }
    let result = match format {
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
                draw(&root, spec).map_err(draw_err)?;
                root.present().map_err(|e| draw_err(e.to_string()))?;
            }
            std::fs::write(&tmp, svg).map_err(io_err)
        }
        Format::Png => {
            let drawn = (|| {
                let root = BitMapBackend::new(&tmp, CHART_SIZE).into_drawing_area();
                draw(&root, spec)?;
                root.present().map_err(|e| e.to_string())
            })();
            drawn.map_err(draw_err)
        }
    }
    .and_then(|()| std::fs::rename(&tmp, path).map_err(io_err));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    if let Some(h) = hooks {
        (h.deregister)(&tmp);
    }
    result
}

/// Callbacks around the temporary file each chart is drawn into, so a program can list it
/// among its temp files in flight (and remove it on an interrupt) and sweep the ones a killed
/// process left: in `shrink`, `shrink_io::atomic`'s registry. Without them charts are still
/// written atomically; only the cleanup after an interrupt is missing.
#[derive(Clone, Copy, Debug)]
pub struct TempFileHooks {
    /// Called with the destination before drawing: removes stale temp files of dead writers.
    pub sweep_stale: fn(&Path),
    /// Called with the temp file's path before it is created.
    pub register: fn(&Path),
    /// Called with the temp file's path once it is renamed or removed.
    pub deregister: fn(&Path),
}

static TEMP_FILE_HOOKS: OnceLock<TempFileHooks> = OnceLock::new();

/// Sets the [`TempFileHooks`] of every later chart (once per process; later calls are ignored).
pub fn set_temp_file_hooks(hooks: TempFileHooks) {
    let _ = TEMP_FILE_HOOKS.set(hooks);
}

/// Writes the two standard charts of an optimization run into `dir`:
/// `{stem}-loss.{ext}` (loss vs step, log y axis) and `{stem}-weights.{ext}` (one line per
/// weight `W[j]` vs step). `loss[k]` and `weights[k]` belong to step `k`. Returns the two
/// paths.
pub fn history_charts(
    dir: impl AsRef<Path>,
    stem: &str,
    ext: &str,
    title: &str,
    loss: &[f64],
    weights: &[Vec<f64>],
) -> Result<[PathBuf; 2], PlotError> {
    let dir = dir.as_ref();
    let loss_path = dir.join(format!("{stem}-loss.{ext}"));
    let loss_series =
        vec![("loss".to_string(), loss.iter().enumerate().map(|(k, &l)| (k as f64, l)).collect())];
    line_chart(
        &loss_path,
        &format!("{title}: loss vs step"),
        "step",
        "loss Σ(XW − y)² (log scale)",
        &loss_series,
        true,
    )?;

    let dim = weights.iter().map(Vec::len).max().unwrap_or(0);
    let weight_series: Vec<(String, Vec<(f64, f64)>)> = (0..dim)
        .map(|j| {
            let points =
                weights.iter().enumerate().filter_map(|(k, w)| w.get(j).map(|&v| (k as f64, v))).collect();
            (format!("W[{j}]"), points)
        })
        .collect();
    let weights_path = dir.join(format!("{stem}-weights.{ext}"));
    line_chart(
        &weights_path,
        &format!("{title}: weights vs step"),
        "step",
        "weight value",
        &weight_series,
        false,
    )?;
    Ok([loss_path, weights_path])
}

/// `dir/.name.<pid>.<n>.tmp.<ext>`: same directory (so the rename is atomic), hidden, and
/// ending in the real extension (the bitmap encoder picks the format from it).
fn temp_path(path: &Path, format: Format) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = match format {
        Format::Png => "png",
        Format::Svg => "svg",
    };
    path.with_file_name(format!(".{name}.{}.{n}.tmp.{ext}", std::process::id()))
}

fn register_embedded_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded DejaVu Sans font failed to load".to_string())
        })
        .clone()
}

/// An unbroken run of drawable points.
type Run = Vec<(f64, f64)>;

/// Validated chart input: drawable segments and axis ranges.
struct ChartSpec<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    log_y: bool,
    /// Histogram bars: each run is a sequence of `(lo, count), (hi, count)` pairs.
    bars: bool,
    /// Per series: label and its unbroken runs of drawable points (`(x, log10 y)` when
    /// `log_y`).
    series: Vec<(&'a str, Vec<Run>)>,
    x_range: Range<f64>,
    /// In decades (`log10 y`) when `log_y`.
    y_range: Range<f64>,
}

impl<'a> ChartSpec<'a> {
    fn new(
        title: &'a str,
        x_label: &'a str,
        y_label: &'a str,
        series: &'a [(String, Vec<(f64, f64)>)],
        log_y: bool,
    ) -> Option<Self> {
        // On a log axis points are stored as (x, log10 y).
        let drawable = |&(x, y): &(f64, f64)| {
            let y = if log_y { y.log10() } else { y };
            (x.is_finite() && y.is_finite()).then_some((x, y))
        };
        let (mut x0, mut x1, mut y0, mut y1) =
            (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        let series: Vec<_> = series
            .iter()
            .map(|(label, points)| {
                let mut runs: Vec<Run> = vec![];
                let mut run = vec![];
                for p in points {
                    if let Some(p) = drawable(p) {
                        x0 = x0.min(p.0);
                        x1 = x1.max(p.0);
                        y0 = y0.min(p.1);
                        y1 = y1.max(p.1);
                        run.push(p);
                    } else if !run.is_empty() {
                        runs.push(std::mem::take(&mut run));
                    }
                }
                if !run.is_empty() {
                    runs.push(run);
                }
                (label.as_str(), runs)
            })
            .collect();
        if x0 > x1 {
            return None;
        }
        let x_range = pad_linear(x0, x1, 0.0);
        let y_range = if log_y {
            // In decades: 5% headroom, and at least one decade overall.
            let width = y1 - y0;
            let pad = (width * 0.05).max((1.0 - width) / 2.0);
            (y0 - pad)..(y1 + pad)
        } else {
            pad_linear(y0, y1, 0.05)
        };
        Some(Self { title, x_label, y_label, log_y, bars: false, series, x_range, y_range })
    }
}

/// `lo..hi` widened by `frac` of its width; a single value gets ±max(|v|·0.1, 1)… width.
fn pad_linear(lo: f64, hi: f64, frac: f64) -> Range<f64> {
    if hi > lo {
        let pad = (hi - lo) * frac;
        (lo - pad)..(hi + pad)
    } else {
        let pad = (lo.abs() * 0.1).max(1.0);
        (lo - pad)..(hi + pad)
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    spec: &ChartSpec,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut builder = ChartBuilder::on(root);
    builder.caption(spec.title, (FAMILY, 24)).margin(16).x_label_area_size(48).y_label_area_size(84);
    if spec.log_y {
        let chart = builder
            .build_cartesian_2d(spec.x_range.clone(), DecadeAxis::new(spec.y_range.clone()))
            .map_err(|e| e.to_string())?;
        draw_series(chart, spec, &|v: &f64| format!("{:.0e}", 10f64.powf(*v)))
    } else {
        let chart = builder
            .build_cartesian_2d(spec.x_range.clone(), spec.y_range.clone())
            .map_err(|e| e.to_string())?;
        draw_series(chart, spec, &|v: &f64| format_tick(*v))
    }
}

fn draw_series<'a, DB, Y>(
    mut chart: ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    spec: &ChartSpec,
    y_format: &dyn Fn(&f64) -> String,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(spec.x_label)
        .y_desc(spec.y_label)
        .x_label_formatter(&|v: &f64| format_tick(*v))
        .y_label_formatter(y_format)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| e.to_string())?;
    let mut any_label = false;
    for (i, (label, runs)) in spec.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        if spec.bars {
            let base = spec.y_range.start;
            let rects = runs.iter().flat_map(|run| {
                run.chunks_exact(2).map(move |b| {
                    Rectangle::new([(b[0].0, base), (b[1].0, b[0].1)], color.mix(0.55).filled())
                })
            });
            let drawn = chart.draw_series(rects).map_err(|e| e.to_string())?;
            if !label.is_empty() {
                any_label = true;
                drawn.label(*label).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 20, y + 5)], color.mix(0.55).filled())
                });
            }
            continue;
        }
        for (r, run) in runs.iter().enumerate() {
            let drawn = chart
                .draw_series(LineSeries::new(run.iter().copied(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            if r == 0 && !label.is_empty() {
                any_label = true;
                drawn
                    .label(*label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            }
        }
    }
    if any_label {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A linear axis over `log10 y` whose ticks sit on whole decades (every 1, 2, 3, 5, 10…
/// decades, at most ~10 labels) or, for ranges under two decades, on `{1, 2, 5}·10^k`.
///
/// plotters' own `log_scale()` drops ticks on wide ranges (for `1e-31..1e3` its key points
/// start at `1e-15`), and a loss history easily spans 30 decades.
struct DecadeAxis {
    inner: RangedCoordf64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl DecadeAxis {
    fn new(range: Range<f64>) -> Self {
        let (lo, hi) = (range.start, range.end);
        let inside = |v: &f64| *v >= lo && *v <= hi;
        let decades: Vec<i64> = ((lo.ceil() as i64)..=(hi.floor() as i64)).collect();
        let mantissas = |ms: &[f64]| -> Vec<f64> {
            ((lo.floor() as i64)..=(hi.ceil() as i64))
                .flat_map(|k| ms.iter().map(move |m| k as f64 + m.log10()))
                .filter(inside)
                .collect()
        };
        let all_mantissas = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        let (bold, light) = if decades.len() >= 2 {
            let n = decades.len() as i64;
            let step = [1, 2, 3, 5, 10, 20, 25, 50, 100].into_iter().find(|s| n / s <= 10).unwrap_or(n);
            let bold: Vec<f64> =
                decades.iter().filter(|k| k.rem_euclid(step) == 0).map(|&k| k as f64).collect();
            let light =
                if n <= 4 { mantissas(&all_mantissas) } else { decades.iter().map(|&k| k as f64).collect() };
            (bold, light)
        } else {
            (mantissas(&[1.0, 2.0, 5.0]), mantissas(&all_mantissas))
        };
        Self { inner: range.into(), bold, light }
    }
}

impl Ranged for DecadeAxis {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }
}

/// Short tick labels: integers without decimals, otherwise up to 4 significant digits.
fn format_tick(v: f64) -> String {
    if v == v.round() && v.abs() < 1e9 {
        format!("{v:.0}")
    } else if v.abs() < 1e-12 {
        // Rounding noise of a tick meant to be zero (e.g. -5.55e-17 on a [-0.3, 0.3] axis).
        "0".to_string()
    } else if v.abs() >= 1e-3 && v.abs() < 1e5 {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.2e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_format() {
        assert_eq!(format_tick(5.0), "5");
        assert_eq!(format_tick(-0.0), "-0");
        assert_eq!(format_tick(0.25), "0.25");
        assert_eq!(format_tick(-2.5), "-2.5");
        assert_eq!(format_tick(1.0 / 3.0), "0.3333");
        assert_eq!(format_tick(2.5e-5), "2.50e-5");
        assert_eq!(format_tick(-5.551115123125783e-17), "0");
    }

    #[test]
    fn decade_axis_ticks() {
        // A loss history from 1e-31 to 1e2: a label every 5 decades, a light line per decade.
        let axis = DecadeAxis::new(-31.3..2.1);
        assert_eq!(axis.bold, vec![-30.0, -25.0, -20.0, -15.0, -10.0, -5.0, 0.0]);
        assert_eq!(axis.light.len(), 34);
        let axis = DecadeAxis::new(-7.5..2.1);
        assert_eq!(axis.bold, (-7..=2).map(f64::from).collect::<Vec<_>>());
        // Under two decades: 1, 2, 5 times a power of ten.
        let axis = DecadeAxis::new(-0.9..0.5);
        let want = [0.2f64, 0.5, 1.0, 2.0].map(|v| v.log10());
        assert_eq!(axis.bold.len(), want.len());
        for (a, b) in axis.bold.iter().zip(want) {
            assert!((a - b).abs() < 1e-12);
        }
        let labels: Vec<String> = axis.bold.iter().map(|v| format!("{:.0e}", 10f64.powf(*v))).collect();
        assert_eq!(labels, ["2e-1", "5e-1", "1e0", "2e0"]);
        assert_eq!(format!("{:.0e}", 10f64.powf(-30.0)), "1e-30");
    }

    #[test]
    fn ranges_and_segments() {
        let series =
            vec![("a".to_string(), vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0), (3.0, 0.0), (4.0, 100.0)])];
        let lin = ChartSpec::new("t", "x", "y", &series, false).unwrap();
        assert_eq!(lin.series[0].1.len(), 2);
        assert_eq!(lin.x_range, 0.0..4.0);
        assert!(lin.y_range.start < 0.0 && lin.y_range.end > 100.0);
        let log = ChartSpec::new("t", "x", "y", &series, true).unwrap();
        // y = 0 is dropped on the log axis and breaks the line; y is stored as log10 y.
        assert_eq!(log.series[0].1.len(), 3);
        assert_eq!(log.series[0].1[2], vec![(4.0, 2.0)]);
        assert!(log.y_range.start < 0.0 && log.y_range.start > -0.5 && log.y_range.end > 2.0);
        let flat = vec![("c".to_string(), vec![(1.0, 2.0)])];
        let spec = ChartSpec::new("t", "x", "y", &flat, false).unwrap();
        assert_eq!(spec.x_range, 0.0..2.0);
        assert_eq!(spec.y_range, 1.0..3.0);
        let spec = ChartSpec::new("t", "x", "y", &flat, true).unwrap();
        assert!((spec.y_range.end - spec.y_range.start - 1.0).abs() < 1e-12);
        let none = vec![("n".to_string(), vec![(0.0, -1.0)])];
        assert!(ChartSpec::new("t", "x", "y", &none, true).is_none());
        assert!(ChartSpec::new("t", "x", "y", &[], false).is_none());
    }
}
