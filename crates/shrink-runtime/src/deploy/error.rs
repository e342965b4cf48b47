//! Errors of deploy files: each prints as one line naming the field at fault (the CLI adds the
//! file name).
use thiserror::Error;

/// An error reading, writing or decoding a deploy file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DeployError {
    /// The bytes do not start with [`super::MAGIC`].
    #[error("not a shrink deploy file (it does not start with `SHRKDPL1`)")]
    Magic,
    /// The file is too short to hold the fixed fields.
    #[error("the file is {len} bytes, too short for a deploy file (at least {min})")]
    TooShort { len: usize, min: usize },
    /// The format version is not one this build reads.
    #[error("format version {found} is newer than this shrink ({supported})")]
    Newer { found: u32, supported: u32 },
    /// Version 0 was never written.
    #[error("format version {0} is not a valid version")]
    BadVersion(u32),
    /// The stored checksum does not match the content.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupt or truncated")]
    Checksum { stored: u32, computed: u32 },
    /// A field is invalid; the message names it (`tensor `fc1.weight`: ...`).
    #[error("{0}")]
    Invalid(String),
}

impl DeployError {
    /// An invalid-field error.
    pub fn invalid(msg: impl Into<String>) -> Self {
        DeployError::Invalid(msg.into())
    }

    /// Prefixes the message with the field it concerns (`tensor `x``, `header`).
    pub fn context(self, what: &str) -> Self {
        match self {
            DeployError::Invalid(m) => DeployError::Invalid(format!("{what}: {m}")),
            e => e,
        }
    }
}

/// Result alias of the deploy module.
pub type Result<T> = std::result::Result<T, DeployError>;

/// Shorthand: `Err(DeployError::Invalid(format!(..)))`.
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::deploy::error::DeployError::Invalid(format!($($arg)*))) };
}
pub(crate) use bail;
