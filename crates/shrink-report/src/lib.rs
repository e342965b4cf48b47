//! Plots and tables for `shrink` reports.
//!
//! * [`plot`]: line charts and histograms (PNG or SVG), e.g. loss and weight histories.
//! * [`html`]: self-contained HTML reports (tables, embedded charts) and CSV/JSON tables.

pub mod html;
pub mod plot;
