//! Datasets: loading MNIST-style IDX files, CIFAR-10 binary batches and image folders (plain or
//! in a tar / tar.gz archive) into memory once as `u8` CHW images, and turning them into
//! normalized, optionally augmented `f32` batches.
//!
//! ```no_run
//! use shrink_io::data::{self, Split};
//! let train = data::load("data/mnist".as_ref(), Split::Train)?;
//! let (train, val) = train.split_validation(5000, 0);
//! let norm = data::default_normalize(train.channels);
//! let mut batch = Vec::new();
//! let labels = data::make_batch(&train, &[0, 1, 2], &norm, None, &mut batch);
//! # Ok::<(), data::DataError>(())
//! ```
//!
//! [`load`] detects the format; every failure is a [`DataError`] naming the file, never a panic,
//! and no allocation is sized by a header before the header is checked against the data.

mod batch;
mod cifar_bin;
mod cifar_pickle;
mod error;
pub mod fetch;
mod idx;
mod image_folder;
pub mod jpeg;
mod split;
mod tree;

use std::fmt;
use std::fs;
use std::path::Path;

pub use batch::{default_normalize, make_batch, Augment, Normalize};
pub use cifar_bin::CIFAR10_CLASSES;
pub use error::DataError;
pub use split::validation_indices;

use error::show;
use tree::{join, Tree};

/// Which part of a dataset to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "test" | "val" => Ok(Split::Test),
            _ => Err(format!("unknown split `{s}` (expected `train` or `test`)")),
        }
    }
}

/// A labelled image dataset held in memory.
#[derive(Clone, PartialEq)]
pub struct Dataset {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// `N*C*H*W` bytes, CHW per image, decoded once.
    pub images: Vec<u8>,
    pub labels: Vec<u32>,
    /// Class names in label order (`"0"`..`"9"` for MNIST).
    pub classes: Vec<String>,
    /// The path it came from, for messages.
    pub source: String,
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("len", &self.len())
            .field("shape", &self.image_shape())
            .field("classes", &self.classes)
            .field("source", &self.source)
            .finish()
    }
}

impl Dataset {
    /// The number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `[channels, height, width]`.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// The CHW bytes of example `i`.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn image(&self, i: usize) -> &[u8] {
        let per = self.channels * self.height * self.width;
        &self.images[i * per..(i + 1) * per]
    }

    /// How many examples each class has.
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }
}

/// Loads a split from `path`, detecting the format:
///
/// - a directory holding MNIST-style IDX files (`train-images-idx3-ubyte[.gz]`,
///   `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`,
///   `t10k-labels-idx1-ubyte[.gz]`, or the `train-images.idx3-ubyte` spelling), or one of those
///   files (its directory is loaded);
/// - CIFAR-10 binary batches (`data_batch_1.bin`..`data_batch_5.bin`, `test_batch.bin`,
///   optional `batches.meta.txt` for class names);
/// - CIFAR-10 python batches (`data_batch_1`..`data_batch_5`, `test_batch`, what torchvision
///   downloads), read without executing pickle code;
/// - an image folder `<root>/<split>/<class>/*.{png,jpg,jpeg}` with split directory `train`,
///   or `test` (`val` when there is no `test`); classes sorted by name.
///
/// The root may be a directory or a `.tar` / `.tar.gz` / `.tgz` archive; the dataset may sit in
/// a single subdirectory (or `cifar-10-batches-bin/`, `cifar-10-batches-py/`), up to two levels
/// down.
pub fn load(path: &Path, split: Split) -> Result<Dataset, DataError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DataError::NotFound { path: show(path) });
        }
        Err(e) => return Err(DataError::io(show(path), e)),
    };
    if meta.is_dir() {
        return load_tree(&Tree::Dir(path.to_path_buf()), split);
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dataset_file = [Split::Train, Split::Test].iter().any(|&s| {
        idx::is_idx_name(&name, s)
            || cifar_bin::is_cifar_name(&name, s)
            || cifar_pickle::is_pickle_name(&name, s)
    });
    if dataset_file {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        return load_tree(&Tree::Dir(parent.to_path_buf()), split);
    }
    if tree::is_archive_name(&name) || looks_like_archive(path) {
        return load_tree(&Tree::Archive(tree::read_archive(path, split)?), split);
    }
    Err(DataError::invalid(
        show(path),
        "not a dataset directory, a .tar/.tar.gz/.tgz archive, or a file of an MNIST or CIFAR directory",
    ))
}

/// Gzip or ustar magic bytes.
fn looks_like_archive(path: &Path) -> bool {
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 263];
    let n = tree::read_up_to(&mut f, &mut head).unwrap_or(0);
    (n >= 2 && head[..2] == [0x1f, 0x8b]) || (n >= 262 && &head[257..262] == b"ustar")
}

fn looked_for() -> String {
    format!(
        "{}; {}; {}; or {}",
        idx::LOOKED_FOR,
        cifar_bin::LOOKED_FOR,
        cifar_pickle::LOOKED_FOR,
        image_folder::LOOKED_FOR
    )
}

fn load_tree(tree: &Tree, split: Split) -> Result<Dataset, DataError> {
    match load_at(tree, "", split, 0)? {
        Some(ds) => Ok(ds),
        None => Err(DataError::NoDataset { path: tree.display(""), looked_for: looked_for() }),
    }
}

/// Loads the dataset at `base`, or in its only subdirectory (or `cifar-10-batches-bin/`), up to
/// [`tree::MAX_NESTING`] levels down; `None` if nothing was recognized.
fn load_at(tree: &Tree, base: &str, split: Split, depth: usize) -> Result<Option<Dataset>, DataError> {
    let children = tree.list(base)?;
    if idx::detect(&children) {
        return idx::load(tree, base, &children, split).map(Some);
    }
    if cifar_bin::detect(&children) {
        return cifar_bin::load(tree, base, &children, split).map(Some);
    }
    if cifar_pickle::detect(&children) {
        return cifar_pickle::load(tree, base, &children, split).map(Some);
    }
    if image_folder::detect(&children) {
        return image_folder::load(tree, base, &children, split).map(Some);
    }
    if depth >= tree::MAX_NESTING {
        return Ok(None);
    }
    let dirs: Vec<_> = children.iter().filter(|c| c.is_dir).collect();
    let known = |c: &&&tree::Child| c.name == cifar_bin::DIR_NAME || c.name == cifar_pickle::DIR_NAME;
    let next = dirs.iter().find(known).or(if dirs.len() == 1 { dirs.first() } else { None });
    match next {
        Some(dir) => load_at(tree, &join(base, &dir.name), split, depth + 1),
        None => Ok(None),
    }
}
