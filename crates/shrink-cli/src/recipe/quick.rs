//! `--quick` data: a class-balanced head of each split (the first examples of every class, in
//! turn), written once as a small dataset (MNIST IDX for 1-channel images, CIFAR-10 binary
//! batches for 3-channel 32×32 ones) that every step reads. Balanced, because datasets stored by
//! class folders (the JPEG CIFAR-10, CINIC-10) would otherwise give a one-class subset.
use super::spec::Quick;
use anyhow::{bail, Context, Result};
use shrink_io::data::{Dataset, Split};
use std::path::{Path, PathBuf};

/// Writes (once) the quick subset of `data` into `root/<tag>` and returns its directory.
pub fn subset(data: &Path, root: &Path, tag: &str, q: Quick) -> Result<PathBuf> {
    let dir = root.join(format!("quick-data-{tag}-balanced"));
    if dir.is_dir() {
        return Ok(dir);
    }
    let tmp = root.join(format!(".quick-data-{tag}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating `{}`", tmp.display()))?;
    let result = (|| -> Result<()> {
        for (split, n) in [(Split::Train, q.train_examples), (Split::Test, q.test_examples)] {
            let ds = shrink_io::data::load(data, split)?;
            let keep = balanced_head(&ds.labels, n);
            write_split(&tmp, &ds.subset(&keep), split)?;
        }
        std::fs::rename(&tmp, &dir).with_context(|| format!("renaming `{}`", tmp.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.map(|()| dir)
}

/// The indices of `n` examples taken class by class in turn: the first example of every class,
/// then the second of every class, and so on (a class that runs out is skipped), in dataset order
/// within each round. Deterministic; equals `0..n` for a dataset whose classes are interleaved
/// evenly.
pub fn balanced_head(labels: &[u32], n: usize) -> Vec<usize> {
    let mut seen: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    let mut ranked: Vec<(usize, usize)> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let r = seen.entry(*l).or_insert(0);
            *r += 1;
            (*r - 1, i)
        })
        .collect();
    ranked.sort_unstable();
    ranked.into_iter().take(n).map(|(_, i)| i).collect()
}

fn write_split(dir: &Path, ds: &Dataset, split: Split) -> Result<()> {
    let n = ds.len();
    if ds.channels == 1 {
        let (images, labels) = match split {
            Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        };
        let mut img = Vec::with_capacity(16 + ds.images.len());
        for w in [0x0803u32, n as u32, ds.height as u32, ds.width as u32] {
            img.extend_from_slice(&w.to_be_bytes());
        }
        img.extend_from_slice(&ds.images);
        let mut lab = Vec::with_capacity(8 + n);
        for w in [0x0801u32, n as u32] {
            lab.extend_from_slice(&w.to_be_bytes());
        }
        lab.extend(ds.labels.iter().map(|&l| l as u8));
        std::fs::write(dir.join(images), img)?;
        std::fs::write(dir.join(labels), lab)?;
        return Ok(());
    }
    if ds.channels == 3 && ds.height == 32 && ds.width == 32 {
        let name = match split {
            Split::Train => "data_batch_1.bin",
            Split::Test => "test_batch.bin",
        };
        let mut out = Vec::with_capacity(n * 3073);
        for i in 0..n {
            out.push(ds.labels[i] as u8);
            out.extend_from_slice(ds.image(i));
        }
        std::fs::write(dir.join(name), out)?;
        return Ok(());
    }
    bail!(
        "--quick: cannot write a subset of `{}` ({}×{}×{} images); run without --quick",
        ds.source,
        ds.channels,
        ds.height,
        ds.width
    )
}

#[cfg(test)]
mod tests {
    use super::balanced_head;

    #[test]
    fn a_class_sorted_split_gives_every_class() {
        // 3 classes stored one after another, 4 examples each.
        let labels = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2];
        let keep = balanced_head(&labels, 6);
        assert_eq!(keep, vec![0, 4, 8, 1, 5, 9]);
        let counts = (0..3).map(|c| keep.iter().filter(|&&i| labels[i] == c).count());
        assert!(counts.into_iter().all(|k| k == 2));
    }

    #[test]
    fn uneven_classes_and_a_large_n() {
        let labels = [1, 1, 1, 0];
        assert_eq!(balanced_head(&labels, 3), vec![0, 3, 1]);
        assert_eq!(balanced_head(&labels, 10), vec![0, 3, 1, 2]);
        assert!(balanced_head(&labels, 0).is_empty());
    }
}
