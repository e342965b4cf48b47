use std::path::Path;

use shrink_compress::sparseopt::{run, Method, Problem, LAB_LEARNING_RATE, LAB_STEPS};
use shrink_report::plot::{histogram_chart, history_charts, line_chart, PlotError, CHART_SIZE};

fn demo_series() -> Vec<(String, Vec<(f64, f64)>)> {
    vec![
        ("sin".to_string(), (0..100).map(|i| (i as f64 / 10.0, (i as f64 / 10.0).sin())).collect()),
        ("cos".to_string(), (0..100).map(|i| (i as f64 / 10.0, (i as f64 / 10.0).cos())).collect()),
    ]
}

/// Names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Number of clearly dark pixels in a rectangle: text and lines are drawn, not blank.
fn dark_pixels(img: &image::RgbImage, x: std::ops::Range<u32>, y: std::ops::Range<u32>) -> usize {
    let mut n = 0;
    for yy in y {
        for xx in x.clone() {
            let p = img.get_pixel(xx, yy).0;
            if p.iter().all(|&c| c < 100) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn png_and_svg_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("demo.png");
    line_chart(&png, "Demo chart", "x", "y", &demo_series(), false).unwrap();
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), CHART_SIZE);
    // The title (top band) is rendered with the embedded font.
    assert!(dark_pixels(&img, 300..660, 0..50) > 100, "no title text");
    // Axis tick labels on the left.
    assert!(dark_pixels(&img, 0..100, 60..540) > 100, "no tick labels");

    let svg = dir.path().join("demo.SVG");
    line_chart(&svg, "Demo chart", "x", "y", &demo_series(), true).unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..50]);
    assert!(text.contains("Demo chart") && text.contains("sin") && text.contains("cos"));
    assert!(text.contains("<polyline"));

    assert_eq!(listing(dir.path()), vec!["demo.SVG", "demo.png"], "no temporary files left");
}

#[test]
fn overwrites_atomically_and_reports_errors_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("a.png");
    std::fs::write(&png, b"old").unwrap();
    line_chart(&png, "t", "x", "y", &demo_series(), false).unwrap();
    assert_ne!(std::fs::read(&png).unwrap(), b"old");

    let err = line_chart(dir.path().join("a.pdf"), "t", "x", "y", &demo_series(), false).unwrap_err();
    assert!(matches!(err, PlotError::UnsupportedFormat { .. }));
    assert!(err.to_string().ends_with("a.pdf: unsupported chart format (expected a .png or .svg file name)"));

    let empty = vec![("e".to_string(), vec![(0.0, 0.0), (1.0, -1.0)])];
    let err = line_chart(dir.path().join("b.png"), "t", "x", "y", &empty, true).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("b.png: nothing to plot (no finite data points with y > 0 for the log axis)"),
        "{err}"
    );

    let err = line_chart(dir.path().join("missing/c.svg"), "t", "x", "y", &demo_series(), false).unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err}");
    assert!(!err.to_string().contains('\n'));
    let err = line_chart(dir.path().join("missing/c.png"), "t", "x", "y", &demo_series(), false).unwrap_err();
    assert!(err.to_string().contains("c.png"), "{err}");

    assert_eq!(listing(dir.path()), vec!["a.png"], "failed writes leave nothing behind");
}

#[test]
fn lab_charts_for_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let problem = Problem::lab();
    let mut written = vec![];
    for (i, m) in Method::lab_sweep().into_iter().enumerate() {
        let trace = run(&problem, m, LAB_LEARNING_RATE, LAB_STEPS).unwrap();
        // PNG for a few, SVG for the rest (faster).
        let ext = if i % 5 == 0 { "png" } else { "svg" };
        let stem = m.to_string().replace(['(', ')', ',', ' ', '='], "_");
        let paths = history_charts(
            dir.path(),
            &stem,
            ext,
            &m.to_string(),
            &trace.loss_history,
            &trace.weights_history,
        )
        .unwrap();
        for p in &paths {
            assert!(std::fs::metadata(p).unwrap().len() > 1000, "{}", p.display());
        }
        written.extend(paths);
    }
    assert_eq!(written.len(), 28);
    assert_eq!(listing(dir.path()).len(), 28);
    if let Ok(keep) = std::env::var("SHRINK_REPORT_KEEP_CHARTS") {
        for p in written {
            std::fs::copy(&p, Path::new(&keep).join(p.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn histograms_draw_filled_bars_on_a_log_axis() {
    let dir = tempfile::tempdir().unwrap();
    // A bell-shaped count profile and a spiky one (empty bins are gaps on the log axis).
    let bins: Vec<(f64, f64, f64)> = (0..50)
        .map(|k| {
            (
                k as f64 * 0.04 - 1.0,
                k as f64 * 0.04 - 0.96,
                (1e4 * (-((k as f64 - 25.0) / 6.0).powi(2)).exp()).round(),
            )
        })
        .collect();
    let spikes: Vec<(f64, f64, f64)> = bins
        .iter()
        .enumerate()
        .map(|(k, &(lo, hi, c))| (lo, hi, if k % 5 == 0 { c * 3.0 } else { 0.0 }))
        .collect();
    let series = vec![("original".to_string(), bins), ("quantized".to_string(), spikes)];
    let png = dir.path().join("h.png");
    histogram_chart(&png, "Weights", "weight value", "occurrences", &series, true).unwrap();
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), CHART_SIZE);
    // Filled bars: many coloured (non-grey) pixels in the plot area.
    let coloured = img.pixels().filter(|p| {
        let [r, g, b] = p.0;
        r.max(g).max(b) as i32 - r.min(g).min(b) as i32 > 40
    });
    assert!(coloured.count() > 20_000, "no bars drawn");
    let svg = dir.path().join("h.svg");
    histogram_chart(&svg, "Weights", "weight value", "occurrences", &series, false).unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<rect") && text.contains("quantized"));
    assert_eq!(listing(dir.path()), vec!["h.png", "h.svg"], "no temporary files left");
    let empty = vec![("e".to_string(), vec![(0.0, 1.0, 0.0)])];
    let err = histogram_chart(dir.path().join("e.png"), "t", "x", "y", &empty, true).unwrap_err();
    assert!(matches!(err, PlotError::NoData { .. }), "{err}");
    let err = histogram_chart(dir.path().join("e.jpg"), "t", "x", "y", &series, true).unwrap_err();
    assert!(matches!(err, PlotError::UnsupportedFormat { .. }), "{err}");
}
