//! Self-contained HTML reports: one file with inline CSS, tables and the charts embedded (SVG
//! inline, PNG as a data URI), so it opens anywhere without a network or the files beside it.
//!
//! Every table can also be written as CSV and JSON ([`Table::write_csv`], [`Table::write_json`]).
//! Writes are atomic (temporary file in the same directory, then rename).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Why a report could not be written. Messages are one line and start with the path.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// Reading a figure or writing the report failed.
    #[error("{}: {io}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        io: std::io::Error,
    },
    /// A figure is neither `.svg` nor `.png`.
    #[error("{}: a report figure must be .svg or .png", path.display())]
    UnsupportedFigure { path: PathBuf },
}

/// A table: a caption, column names and rows of cells (already formatted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub caption: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// A chart file to embed, with its caption.
#[derive(Debug, Clone)]
pub struct Figure {
    pub caption: String,
    pub path: PathBuf,
}

/// One section of a report: a heading, paragraphs, tables and figures, in that order.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub title: String,
    pub paragraphs: Vec<String>,
    pub tables: Vec<Table>,
    pub figures: Vec<Figure>,
}

/// A whole report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub title: String,
    pub paragraphs: Vec<String>,
    pub sections: Vec<Section>,
}

impl Table {
    /// Parses CSV text written by `shrink` (a header line, then rows; no quoted commas).
    pub fn from_csv(caption: &str, csv: &str) -> Table {
        let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
        let split = |l: &str| l.split(',').map(|c| c.trim().to_string()).collect::<Vec<_>>();
        let header = lines.next().map(split).unwrap_or_default();
        Table { caption: caption.to_string(), header, rows: lines.map(split).collect() }
    }

    /// The table as CSV (cells holding commas or quotes are quoted).
    pub fn to_csv(&self) -> String {
        let cell = |c: &String| {
            if c.contains([',', '"', '\n']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        };
        let mut s = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            s += &row.iter().map(cell).collect::<Vec<_>>().join(",");
            s.push('\n');
        }
        s
    }

    /// The table as a JSON array of objects keyed by column name (numbers stay numbers).
    pub fn to_json(&self) -> String {
        let mut s = String::from("[\n");
        for (i, row) in self.rows.iter().enumerate() {
            s += "  {";
            for (j, (h, c)) in self.header.iter().zip(row).enumerate() {
                let value = if c.parse::<f64>().is_ok_and(f64::is_finite) && !c.starts_with('+') {
                    c.clone()
                } else {
                    json_string(c)
                };
                let _ = write!(s, "{}{}: {value}", if j == 0 { "" } else { ", " }, json_string(h));
            }
            s += if i + 1 == self.rows.len() { "}\n" } else { "},\n" };
        }
        s + "]\n"
    }

    /// Writes [`Table::to_csv`] to `path` atomically.
    pub fn write_csv(&self, path: &Path) -> Result<(), HtmlError> {
        write_atomic(path, self.to_csv().as_bytes())
    }

    /// Writes [`Table::to_json`] to `path` atomically.
    pub fn write_json(&self, path: &Path) -> Result<(), HtmlError> {
        write_atomic(path, self.to_json().as_bytes())
    }
}

impl Report {
    /// The report as one HTML document (figures read from disk and embedded).
    pub fn to_html(&self) -> Result<String, HtmlError> {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            esc(&self.title),
            esc(&self.title)
        );
        for p in &self.paragraphs {
            let _ = writeln!(h, "<p>{}</p>", esc(p));
        }
        if self.sections.len() > 1 {
            h += "<nav><ul>";
            for (i, s) in self.sections.iter().enumerate() {
                let _ = write!(h, "<li><a href=\"#s{i}\">{}</a></li>", esc(&s.title));
            }
            h += "</ul></nav>\n";
        }
        for (i, s) in self.sections.iter().enumerate() {
            let _ = writeln!(h, "<section id=\"s{i}\">\n<h2>{}</h2>", esc(&s.title));
            for p in &s.paragraphs {
                let _ = writeln!(h, "<p>{}</p>", esc(p));
            }
            for t in &s.tables {
                table_html(&mut h, t);
            }
            if !s.figures.is_empty() {
                h += "<div class=\"figs\">\n";
                for f in &s.figures {
                    figure_html(&mut h, f)?;
                }
                h += "</div>\n";
            }
            h += "</section>\n";
        }
        h += "<footer>Written by shrink. Self-contained: every chart is embedded in this file.</footer>\n\
              </body>\n</html>\n";
        Ok(h)
    }

    /// Writes [`Report::to_html`] to `path` atomically.
    pub fn write(&self, path: &Path) -> Result<(), HtmlError> {
        write_atomic(path, self.to_html()?.as_bytes())
    }
}

const CSS: &str = "body{font-family:-apple-system,'DejaVu Sans',Helvetica,Arial,sans-serif;\
margin:2em auto;max-width:1100px;padding:0 1em;color:#222;line-height:1.45}\
h1{border-bottom:2px solid #1f77b4;padding-bottom:.2em}h2{margin-top:2em;color:#1f4e79}\
nav ul{columns:2}table{border-collapse:collapse;margin:1em 0;font-size:.9em}\
caption{text-align:left;font-weight:bold;padding:.3em 0}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
th{background:#eef3f8}tr:nth-child(even) td{background:#fafafa}\
td:first-child,th:first-child{text-align:left}\
.figs{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0;flex:1 1 480px;max-width:100%}\
figure svg,figure img{width:100%;height:auto;border:1px solid #ddd}\
figcaption{font-size:.85em;color:#555}footer{margin-top:3em;font-size:.8em;color:#777}";

fn table_html(h: &mut String, t: &Table) {
    h.push_str("<table>\n");
    if !t.caption.is_empty() {
        let _ = writeln!(h, "<caption>{}</caption>", esc(&t.caption));
    }
    h.push_str("<thead><tr>");
    for c in &t.header {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        h.push_str("<tr>");
        for c in row {
            let _ = write!(h, "<td>{}</td>", esc(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n");
}

fn figure_html(h: &mut String, f: &Figure) -> Result<(), HtmlError> {
    let io = |io| HtmlError::Io { path: f.path.clone(), io };
    let ext = f.path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    h.push_str("<figure>\n");
    match ext.as_deref() {
        Some("svg") => {
            let svg = std::fs::read_to_string(&f.path).map_err(io)?;
            // Drop an XML prolog: inline SVG must start at the <svg> element.
            let start = svg.find("<svg").unwrap_or(0);
            h.push_str(&svg[start..]);
        }
        Some("png") => {
            let png = std::fs::read(&f.path).map_err(io)?;
            let _ =
                write!(h, "<img alt=\"{}\" src=\"data:image/png;base64,{}\">", esc(&f.caption), base64(&png));
        }
        _ => return Err(HtmlError::UnsupportedFigure { path: f.path.clone() }),
    }
    let _ = writeln!(h, "\n<figcaption>{}</figcaption>\n</figure>", esc(&f.caption));
    Ok(())
}

/// HTML-escapes text.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            '\n' => out += "\\n",
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out + "\""
}

/// Standard base64 (RFC 4648, with padding).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                s.push(A[((n >> shift) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Writes `bytes` to `path` through a hidden temporary file in the same directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HtmlError> {
    let io = |io| HtmlError::Io { path: path.to_path_buf(), io };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)).map_err(io);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

    #[test]
    fn csv_round_trips_and_json_keeps_numbers() {
        let t = Table::from_csv("t", "bits,accuracy (%),note\n2,11.5,a<b\n8,98.2,ok\n");
        assert_eq!(t.header, ["bits", "accuracy (%)", "note"]);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(Table::from_csv("t", &t.to_csv()), t);
        let json = t.to_json();
        assert!(json.contains("\"bits\": 2, \"accuracy (%)\": 11.5, \"note\": \"a<b\""), "{json}");
    }

    #[test]
    fn html_escapes_text_and_embeds_figures() {
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("a.svg");
        std::fs::write(&svg, "<?xml version=\"1.0\"?><svg width=\"1\"></svg>").unwrap();
        let png = dir.path().join("b.png");
        std::fs::write(&png, b"\x89PNG").unwrap();
        let report = Report {
            title: "R <1>".into(),
            paragraphs: vec![],
            sections: vec![Section {
                title: "S".into(),
                tables: vec![Table::from_csv("cap", "x,y\n1,<b>\n")],
                figures: vec![
                    Figure { caption: "svg".into(), path: svg },
                    Figure { caption: "png".into(), path: png },
                ],
                ..Default::default()
            }],
        };
        let out = dir.path().join("report.html");
        report.write(&out).unwrap();
        let html = std::fs::read_to_string(&out).unwrap();
        assert!(html.contains("<title>R &lt;1&gt;</title>"));
        assert!(html.contains("<td>&lt;b&gt;</td>"));
        assert!(html.contains("<svg width=\"1\"></svg>") && !html.contains("<?xml"));
        assert!(html.contains("data:image/png;base64,iVBORw=="));
        assert!(!html.contains("http://") && !html.contains("https://"), "no network references");
        let missing = Report {
            sections: vec![Section {
                figures: vec![Figure { caption: String::new(), path: dir.path().join("none.svg") }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = missing.write(&dir.path().join("x.html")).unwrap_err().to_string();
        assert!(
            e.starts_with(&dir.path().join("none.svg").display().to_string()) && !e.contains('\n'),
            "{e}"
        );
        assert!(!dir.path().join("x.html").exists(), "no partly written report");
    }
}
