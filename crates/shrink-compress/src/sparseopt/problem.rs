//! The least-squares problem `min_W Σ_i (X_i W − y_i)²` and its loaders.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// Why a [`Problem`] could not be built or loaded.
///
/// Every message is a single line that starts with the origin (the file path, or the
/// name given to [`Problem::from_json_str`] / [`Problem::from_toml_str`]) and names the
/// offending field where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ProblemError {
    /// The file could not be read.
    #[error("{origin}: cannot read file: {io}")]
    Read {
        /// File path.
        origin: String,
        /// Underlying I/O error (kept out of the error chain so the message stays one line).
        io: std::io::Error,
    },
    /// The file extension is neither `.json` nor `.toml`.
    #[error("{origin}: unsupported file extension (expected .json or .toml)")]
    UnknownFormat {
        /// File path.
        origin: String,
    },
    /// The text is not valid JSON/TOML, or does not have the fields `x` and `y`.
    #[error("{origin}: {message}")]
    Parse {
        /// File path or source name.
        origin: String,
        /// Parser message, including the line and column.
        message: String,
    },
    /// `x` has no rows.
    #[error("{origin}: field `x` must have at least one row")]
    NoRows {
        /// File path or source name.
        origin: String,
    },
    /// `x[0]` has no columns.
    #[error("{origin}: field `x[0]` must have at least one column")]
    NoColumns {
        /// File path or source name.
        origin: String,
    },
    /// A row of `x` has a different length than `x[0]`.
    #[error("{origin}: field `x[{row}]` has {got} columns but `x[0]` has {expected}")]
    RaggedRow {
        /// File path or source name.
        origin: String,
        /// Index of the offending row.
        row: usize,
        /// Its number of columns.
        got: usize,
        /// Number of columns of `x[0]`.
        expected: usize,
    },
    /// `y` does not have one entry per row of `x`.
    #[error("{origin}: field `y` has {got} entries but `x` has {expected} rows")]
    LengthMismatch {
        /// File path or source name.
        origin: String,
        /// Length of `y`.
        got: usize,
        /// Number of rows of `x`.
        expected: usize,
    },
    /// An entry is NaN or infinite (possible in TOML, or through [`Problem::new`]).
    #[error("{origin}: field `{field}` is not finite ({value})")]
    NonFinite {
        /// File path or source name.
        origin: String,
        /// Path of the entry, e.g. `x[1][3]` or `y[0]`.
        field: String,
        /// The value.
        value: f64,
    },
}

/// A dense least-squares problem: `x` is `rows × dim`, `y` has `rows` entries.
///
/// The loss is the lab's **sum** (not mean) of squared residuals,
/// `L(W) = Σ_i (X_i W − y_i)²`, and its gradient is `∇L(W) = 2 Xᵀ (X W − y)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    x: Vec<Vec<f64>>,
    y: Vec<f64>,
}

/// The on-disk shape, `{"x": [[...], ...], "y": [...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProblem {
    x: Vec<Vec<f64>>,
    y: Vec<f64>,
}

impl Problem {
    /// Builds a problem, checking shapes and finiteness.
    pub fn new(x: Vec<Vec<f64>>, y: Vec<f64>) -> Result<Self, ProblemError> {
        Self::validated(x, y, "problem")
    }

    /// The lab's problem: `X` is 3×5, `y = [7, 1, 1]ᵀ`.
    ///
    /// `y = X·[0, −3, 0, 0, 1]ᵀ` exactly, so the 2-sparse vector `[0, −3, 0, 0, 1]` has
    /// zero loss; plain gradient descent from 0 instead converges to the minimum-norm
    /// solution `[0.7476, −2.3894, 0.1226, −0.0313, 1.5649]`.
    pub fn lab() -> Self {
        Self {
            x: vec![
                vec![1.0, -2.0, -1.0, -1.0, 1.0],
                vec![2.0, -1.0, 2.0, 0.0, -2.0],
                vec![-1.0, 0.0, 2.0, 2.0, 1.0],
            ],
            y: vec![7.0, 1.0, 1.0],
        }
    }

    /// Loads `{"x": [[...]], "y": [...]}` from a `.json` file or the same two keys from a
    /// `.toml` file (`x = [[...], ...]`, `y = [...]`). The format follows the extension.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ProblemError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let format = match ext.as_deref() {
            Some("json") => Format::Json,
            Some("toml") => Format::Toml,
            _ => return Err(ProblemError::UnknownFormat { origin }),
        };
        let text =
            std::fs::read_to_string(path).map_err(|io| ProblemError::Read { origin: origin.clone(), io })?;
        match format {
            Format::Json => Self::from_json_str(&text, &origin),
            Format::Toml => Self::from_toml_str(&text, &origin),
        }
    }

    /// Parses JSON text; `origin` names the source in error messages.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self, ProblemError> {
        let raw: RawProblem = serde_json::from_str(text).map_err(|e| ProblemError::Parse {
            origin: origin.to_string(),
            message: format!("invalid JSON problem: {e}"),
        })?;
        Self::validated(raw.x, raw.y, origin)
    }

    /// Parses TOML text; `origin` names the source in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ProblemError> {
        let raw: RawProblem = toml::from_str(text).map_err(|e| {
            // toml's Display is a multi-line snippet; keep the message and a line:column.
            let message = e.message().trim().replace('\n', " ");
            let at = e
                .span()
                .map(|span| {
                    let (line, col) = line_col(text, span.start);
                    format!(" at line {line} column {col}")
                })
                .unwrap_or_default();
            ProblemError::Parse {
                origin: origin.to_string(),
                message: format!("invalid TOML problem: {message}{at}"),
            }
        })?;
        Self::validated(raw.x, raw.y, origin)
    }

    fn validated(x: Vec<Vec<f64>>, y: Vec<f64>, origin: &str) -> Result<Self, ProblemError> {
        let origin = || origin.to_string();
        let first = x.first().ok_or_else(|| ProblemError::NoRows { origin: origin() })?;
        let dim = first.len();
        if dim == 0 {
            return Err(ProblemError::NoColumns { origin: origin() });
        }
        for (row, xs) in x.iter().enumerate() {
            if xs.len() != dim {
                return Err(ProblemError::RaggedRow { origin: origin(), row, got: xs.len(), expected: dim });
            }
            if let Some((col, &value)) = xs.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(ProblemError::NonFinite {
                    origin: origin(),
                    field: format!("x[{row}][{col}]"),
                    value,
                });
            }
        }
        if y.len() != x.len() {
            return Err(ProblemError::LengthMismatch { origin: origin(), got: y.len(), expected: x.len() });
        }
        if let Some((i, &value)) = y.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ProblemError::NonFinite { origin: origin(), field: format!("y[{i}]"), value });
        }
        Ok(Self { x, y })
    }

    /// The design matrix, one `Vec` per row.
    pub fn x(&self) -> &[Vec<f64>] {
        &self.x
    }

    /// The targets.
    pub fn y(&self) -> &[f64] {
        &self.y
    }

    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.x.len()
    }

    /// Number of weights (columns of `x`).
    pub fn dim(&self) -> usize {
        self.x[0].len()
    }

    /// Residual `X W − y`.
    ///
    /// # Panics
    /// If `w.len() != self.dim()`.
    pub fn residual(&self, w: &[f64]) -> Vec<f64> {
        assert_eq!(w.len(), self.dim(), "weight vector has the wrong length");
        self.x
            .iter()
            .zip(&self.y)
            .map(|(row, &yi)| row.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() - yi)
            .collect()
    }

    /// The lab's loss `Σ_i (X_i W − y_i)²` (a sum, not a mean).
    pub fn loss(&self, w: &[f64]) -> f64 {
        self.residual(w).iter().map(|r| r * r).sum()
    }

    /// The gradient of [`Problem::loss`], `2 Xᵀ (X W − y)`.
    pub fn gradient(&self, w: &[f64]) -> Vec<f64> {
        let r = self.residual(w);
        (0..self.dim())
            .map(|j| 2.0 * self.x.iter().zip(&r).map(|(row, ri)| row[j] * ri).sum::<f64>())
            .collect()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}×{} least squares", self.rows(), self.dim())
    }
}

enum Format {
    Json,
    Toml,
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_problem_has_zero_loss_at_the_sparse_solution() {
        let p = Problem::lab();
        assert_eq!((p.rows(), p.dim()), (3, 5));
        assert_eq!(p.loss(&[0.0, -3.0, 0.0, 0.0, 1.0]), 0.0);
        // L(0) = 7² + 1² + 1² and ∇L(0) = −2 Xᵀ y.
        let zero = [0.0; 5];
        assert_eq!(p.loss(&zero), 51.0);
        assert_eq!(p.gradient(&zero), vec![-16.0, 30.0, 6.0, 10.0, -12.0]);
    }

    #[test]
    fn json_and_toml_round_trip() {
        let j = Problem::from_json_str(r#"{"x": [[1, 2], [3, 4.5]], "y": [1, -1]}"#, "a.json").unwrap();
        let t = Problem::from_toml_str("x = [[1, 2], [3, 4.5]]\ny = [1, -1]\n", "a.toml").unwrap();
        assert_eq!(j, t);
        assert_eq!(j.x()[1], vec![3.0, 4.5]);
        assert_eq!(j.y(), &[1.0, -1.0]);
    }

    #[test]
    fn shape_errors_are_one_line_and_name_the_field() {
        let cases = [
            (r#"{"x": [], "y": []}"#, "p.json: field `x` must have at least one row"),
            (r#"{"x": [[]], "y": [1]}"#, "p.json: field `x[0]` must have at least one column"),
            (r#"{"x": [[1, 2], [3]], "y": [1, 2]}"#, "p.json: field `x[1]` has 1 columns but `x[0]` has 2"),
            (r#"{"x": [[1, 2], [3, 4]], "y": [1]}"#, "p.json: field `y` has 1 entries but `x` has 2 rows"),
        ];
        for (text, want) in cases {
            let err = Problem::from_json_str(text, "p.json").unwrap_err().to_string();
            assert_eq!(err, want);
        }
        let err = Problem::from_json_str(r#"{"x": [[1]]}"#, "p.json").unwrap_err().to_string();
        assert!(err.starts_with("p.json: invalid JSON problem: missing field `y`"), "{err}");
        let err = Problem::from_toml_str("x = [[1.0, nan]]\ny = [1]", "p.toml").unwrap_err().to_string();
        assert_eq!(err, "p.toml: field `x[0][1]` is not finite (NaN)");
        let err = Problem::from_toml_str("x = [[1, 2]]\ny = [\"a\"]\n", "p.toml").unwrap_err().to_string();
        assert!(err.starts_with("p.toml: invalid TOML problem: "), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let err =
            Problem::from_json_str(r#"{"x": [[1]], "y": [1], "z": 0}"#, "p.json").unwrap_err().to_string();
        assert!(err.contains("unknown field `z`"), "{err}");
    }

    #[test]
    fn load_uses_the_extension() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("p.json");
        std::fs::write(
            &json,
            r#"{"x": [[1, -2, -1, -1, 1], [2, -1, 2, 0, -2], [-1, 0, 2, 2, 1]], "y": [7, 1, 1]}"#,
        )
        .unwrap();
        assert_eq!(Problem::load(&json).unwrap(), Problem::lab());
        let toml = dir.path().join("p.toml");
        std::fs::write(
            &toml,
            "x = [[1, -2, -1, -1, 1], [2, -1, 2, 0, -2], [-1, 0, 2, 2, 1]]\ny = [7, 1, 1]\n",
        )
        .unwrap();
        assert_eq!(Problem::load(&toml).unwrap(), Problem::lab());
        let other = dir.path().join("p.csv");
        let err = Problem::load(&other).unwrap_err().to_string();
        assert!(err.ends_with("p.csv: unsupported file extension (expected .json or .toml)"));
        let missing = dir.path().join("missing.json");
        let err = Problem::load(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.json: cannot read file: "), "{err}");
    }

    #[test]
    fn new_validates() {
        assert!(Problem::new(vec![vec![1.0]], vec![f64::INFINITY]).is_err());
        assert!(Problem::new(vec![vec![1.0, 2.0]], vec![3.0]).is_ok());
    }
}
