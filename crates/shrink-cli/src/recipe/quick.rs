//! `--quick` data: the first examples of each split, written once as a small dataset (MNIST IDX
//! for 1-channel images, CIFAR-10 binary batches for 3-channel 32×32 ones) that every step reads.
use super::spec::Quick;
use anyhow::{bail, Context, Result};
use shrink_io::data::{Dataset, Split};
use std::path::{Path, PathBuf};

/// Writes (once) the quick subset of `data` into `root/<tag>` and returns its directory.
pub fn subset(data: &Path, root: &Path, tag: &str, q: Quick) -> Result<PathBuf> {
    let dir = root.join(format!("quick-data-{tag}"));
    if dir.is_dir() {
        return Ok(dir);
    }
    let tmp = root.join(format!(".quick-data-{tag}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating `{}`", tmp.display()))?;
    let result = (|| -> Result<()> {
        for (split, n) in [(Split::Train, q.train_examples), (Split::Test, q.test_examples)] {
            let ds = shrink_io::data::load(data, split)?;
            let keep: Vec<usize> = (0..n.min(ds.len())).collect();
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
