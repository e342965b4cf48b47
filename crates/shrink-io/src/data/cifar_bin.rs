//! CIFAR-10 binary batches: `data_batch_1.bin` .. `data_batch_5.bin` (train) and
//! `test_batch.bin` (test), each a sequence of 3073-byte records (one label byte, then the
//! 32x32 red, green and blue planes, i.e. already CHW), with optional `batches.meta.txt`
//! holding the class names one a line.

use super::error::DataError;
use super::tree::{join, Child, Tree};
use super::{Dataset, Split};

/// What [`super::load`] looks for, for the "no dataset found" message.
pub(crate) const LOOKED_FOR: &str = "CIFAR-10 binary batches (data_batch_1.bin .. data_batch_5.bin, \
     test_batch.bin, optionally in cifar-10-batches-bin/)";

/// The directory the official archive unpacks to.
pub(crate) const DIR_NAME: &str = "cifar-10-batches-bin";

const SIDE: usize = 32;
const CHANNELS: usize = 3;
const IMAGE: usize = CHANNELS * SIDE * SIDE;
const RECORD: usize = 1 + IMAGE;
const META: &str = "batches.meta.txt";
const TEST: &str = "test_batch.bin";

/// The standard CIFAR-10 class names, used when `batches.meta.txt` is absent.
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The number `N` of a `data_batch_N.bin` file name.
fn train_batch_number(name: &str) -> Option<u32> {
    let n = name.strip_prefix("data_batch_")?.strip_suffix(".bin")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.len() > 4 {
        return None;
    }
    n.parse().ok()
}

/// Is `name` a CIFAR file that loading `split` reads?
pub(crate) fn is_cifar_name(name: &str, split: Split) -> bool {
    name == META
        || match split {
            Split::Train => train_batch_number(name).is_some(),
            Split::Test => name == TEST,
        }
}

/// Does a directory with these children hold CIFAR-10 batches (of any split)?
pub(crate) fn detect(children: &[Child]) -> bool {
    children.iter().any(|c| !c.is_dir && (c.name == TEST || train_batch_number(&c.name).is_some()))
}

/// Loads one split of a CIFAR-10 binary directory.
pub(crate) fn load(tree: &Tree, base: &str, children: &[Child], split: Split) -> Result<Dataset, DataError> {
    let files: Vec<String> = match split {
        Split::Test => {
            children.iter().filter(|c| !c.is_dir && c.name == TEST).map(|c| c.name.clone()).collect()
        }
        Split::Train => {
            let mut numbered: Vec<(u32, String)> = children
                .iter()
                .filter(|c| !c.is_dir)
                .filter_map(|c| train_batch_number(&c.name).map(|n| (n, c.name.clone())))
                .collect();
            numbered.sort();
            for (i, (n, _)) in numbered.iter().enumerate() {
                let want = i as u32 + 1;
                if *n != want {
                    return Err(DataError::MissingSplit {
                        path: tree.display(base),
                        split: split.to_string(),
                        missing: format!(
                            "data_batch_{want}.bin (batches must be numbered from 1 without gaps)"
                        ),
                    });
                }
            }
            numbered.into_iter().map(|(_, name)| name).collect()
        }
    };
    if files.is_empty() {
        return Err(DataError::MissingSplit {
            path: tree.display(base),
            split: split.to_string(),
            missing: match split {
                Split::Train => "data_batch_1.bin .. data_batch_5.bin".to_string(),
                Split::Test => TEST.to_string(),
            },
        });
    }
    let classes = read_classes(tree, base, children)?;
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for name in &files {
        let rel = join(base, name);
        let data = tree.read(&rel)?;
        if data.is_empty() || data.len() % RECORD != 0 {
            return Err(DataError::CifarTruncated {
                path: tree.display(&rel),
                len: data.len() as u64,
                record: RECORD as u64,
            });
        }
        let n = data.len() / RECORD;
        images.reserve(n * IMAGE);
        labels.reserve(n);
        for (i, record) in data.chunks_exact(RECORD).enumerate() {
            let label = record[0] as usize;
            if label >= classes.len() {
                return Err(DataError::LabelOutOfRange {
                    path: tree.display(&rel),
                    index: i as u64,
                    label: label as u64,
                    classes: classes.len(),
                });
            }
            labels.push(label as u32);
            images.extend_from_slice(&record[1..]);
        }
    }
    Ok(Dataset {
        channels: CHANNELS,
        height: SIDE,
        width: SIDE,
        images,
        labels,
        classes,
        source: tree.display(base),
    })
}

/// Class names from `batches.meta.txt`, or the standard ones.
fn read_classes(tree: &Tree, base: &str, children: &[Child]) -> Result<Vec<String>, DataError> {
    if !children.iter().any(|c| !c.is_dir && c.name == META) {
        return Ok(CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect());
    }
    let rel = join(base, META);
    let data = tree.read(&rel)?;
    let text = std::str::from_utf8(&data)
        .map_err(|_| DataError::invalid(tree.display(&rel), "class-name file is not UTF-8 text"))?;
    let classes: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    if classes.is_empty() || classes.len() > 256 {
        return Err(DataError::invalid(
            tree.display(&rel),
            format!("expected 1 to 256 class names, one a line, found {}", classes.len()),
        ));
    }
    Ok(classes)
}
