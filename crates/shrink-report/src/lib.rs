//! Plots and tables for `shrink` reports.
//!
//! * [`plot`]: line charts and histograms (PNG or SVG), e.g. loss and weight histories.

pub mod plot;
