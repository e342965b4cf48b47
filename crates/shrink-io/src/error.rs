//! Errors of model-file reading and writing; each prints as one line naming the file or key.
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Model-file errors.
#[derive(Debug, Error)]
pub enum IoError {
    #[error("{path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("{path}: {msg}")]
    InFile { path: PathBuf, msg: String },
    #[error("missing key `{0}`")]
    MissingKey(String),
    #[error("key `{key}` has shape {got:?}, the model expects {expected:?}")]
    KeyShape { key: String, expected: Vec<usize>, got: Vec<usize> },
    #[error("unexpected key `{0}` ({1} keys do not belong to the architecture)")]
    UnexpectedKey(String, usize),
    #[error("{0}")]
    Format(String),
    #[error(
        "`{0}` is a training checkpoint (written by `shrink train` while training); resume it with \
         `shrink train ... --resume {0}`, or pass the finished model file"
    )]
    TrainingCheckpoint(PathBuf),
    /// A deploy file given where a layer model is expected.
    #[error("{} is a deploy file: run it with `shrink run`", .0.display())]
    DeployFile(PathBuf),
    #[error("invalid safetensors data: {0}")]
    SafeTensors(#[from] safetensors::SafeTensorError),
    #[error("invalid metadata: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Ir(#[from] shrink_ir::IrError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl IoError {
    /// An I/O error on `path`.
    pub fn file(path: &Path, source: std::io::Error) -> Self {
        IoError::File { path: path.to_path_buf(), source }
    }

    /// Prefixes the message with the file it concerns (unless it already names one).
    pub fn in_file(self, path: &Path) -> Self {
        match self {
            e @ (IoError::File { .. }
            | IoError::InFile { .. }
            | IoError::TrainingCheckpoint(_)
            | IoError::DeployFile(_)) => e,
            e => IoError::InFile { path: path.to_path_buf(), msg: e.to_string() },
        }
    }
}

/// Result alias for model-file operations.
pub type Result<T> = std::result::Result<T, IoError>;
