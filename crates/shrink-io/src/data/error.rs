//! The dataset layer's error type: one variant per way a dataset can be wrong, each with the
//! file it concerns, each displayed as a single line.

use std::path::Path;

/// Everything that can go wrong while loading a dataset.
///
/// Every message is one line and names the file (or archive member, written
/// `archive.tar.gz:member/path`) it is about.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The path given to [`load`](super::load) does not exist.
    #[error("data path `{path}` does not exist")]
    NotFound { path: String },

    /// An I/O error while reading a file.
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// An IDX file holds fewer bytes than its header promises.
    #[error(
        "IDX file `{path}` is truncated: header says {what} ({expected} bytes with the header) \
         but it holds only {actual} bytes"
    )]
    IdxTruncated { path: String, what: String, expected: u64, actual: u64 },

    /// An IDX file holds more bytes than its header promises.
    #[error(
        "IDX file `{path}` has trailing data: header says {what} ({expected} bytes with the \
         header) but it holds more"
    )]
    IdxTrailingData { path: String, what: String, expected: u64 },

    /// A file does not start with the expected IDX magic number.
    #[error(
        "`{path}` is not an IDX {kind} file: bad magic number 0x{found:08x} (expected 0x{expected:08x})"
    )]
    BadMagic { path: String, kind: &'static str, found: u32, expected: u32 },

    /// Image and label files disagree on the number of examples.
    #[error("`{images_path}` has {images} images but `{labels_path}` has {labels} labels")]
    CountMismatch { images_path: String, images: u64, labels_path: String, labels: u64 },

    /// A CIFAR binary batch whose size is not a whole number of records.
    #[error(
        "CIFAR batch `{path}` is truncated or corrupt: its size ({len} bytes) is not a \
         non-zero multiple of the {record}-byte record size"
    )]
    CifarTruncated { path: String, len: u64, record: u64 },

    /// A label outside `0..classes`.
    #[error("label {label} of example {index} in `{path}` is out of range for {classes} classes")]
    LabelOutOfRange { path: String, index: u64, label: u64, classes: usize },

    /// A tar archive (possibly gzip-compressed) that cannot be read.
    #[error("cannot read archive `{path}` (corrupt or truncated tar/gzip?): {detail}")]
    Archive { path: String, detail: String },

    /// A gzip file that cannot be decompressed.
    #[error("cannot decompress `{path}` (corrupt or truncated gzip?): {detail}")]
    Gzip { path: String, detail: String },

    /// An image file that cannot be decoded.
    #[error("cannot decode image `{path}`: {detail}")]
    Decode { path: String, detail: String },

    /// An image whose size differs from the first image of the dataset.
    #[error(
        "image `{path}` is {width}x{height} but the first image `{first_path}` is \
         {first_width}x{first_height}; all images of a dataset must have the same size"
    )]
    ImageSize {
        path: String,
        width: u32,
        height: u32,
        first_path: String,
        first_width: u32,
        first_height: u32,
    },

    /// An image folder with no class directories.
    #[error("no class directories in `{path}` (expected `{path}/<class>/<image>`)")]
    NoClasses { path: String },

    /// An image folder with class directories but no images.
    #[error("no images (*.png, *.jpg, *.jpeg) in the class directories of `{path}`")]
    NoImages { path: String },

    /// A directory or archive in which no known dataset layout was found.
    #[error("no dataset found in `{path}`; looked for {looked_for}")]
    NoDataset { path: String, looked_for: String },

    /// A dataset that was recognized but lacks the files of the requested split.
    #[error("`{path}` has no {split} split: missing {missing}")]
    MissingSplit { path: String, split: String, missing: String },

    /// Anything else that makes a file unusable (bad dimensions, unsupported file kind, sizes
    /// too large to address, a fetch that failed...).
    #[error("`{path}`: {detail}")]
    Invalid { path: String, detail: String },
}

impl DataError {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        DataError::Io { path: path.to_string(), source }
    }

    pub(crate) fn invalid(path: impl std::fmt::Display, detail: impl std::fmt::Display) -> Self {
        DataError::Invalid { path: path.to_string(), detail: one_line(&detail.to_string()) }
    }
}

/// Collapses a message from another library onto one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A path as text, for messages.
pub(crate) fn show(path: &Path) -> String {
    path.display().to_string()
}
