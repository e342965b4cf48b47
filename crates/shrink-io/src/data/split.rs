//! Selecting examples: subsets and a seeded train/validation split.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Dataset;

impl Dataset {
    /// The examples at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let per = self.channels * self.height * self.width;
        let mut images = Vec::with_capacity(indices.len() * per);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            assert!(i < self.len(), "example index {i} out of range for a dataset of {}", self.len());
            images.extend_from_slice(&self.images[i * per..(i + 1) * per]);
            labels.push(self.labels[i]);
        }
        Dataset {
            channels: self.channels,
            height: self.height,
            width: self.width,
            images,
            labels,
            classes: self.classes.clone(),
            source: self.source.clone(),
        }
    }

    /// Carves a validation set of `count` examples (at most all of them) from this (training)
    /// set: a ChaCha8 shuffle seeded with `seed` picks them. Both parts keep the original
    /// order of their examples. Returns `(train, val)`.
    pub fn split_validation(&self, count: usize, seed: u64) -> (Dataset, Dataset) {
        let (train, val) = validation_indices(self.len(), count, seed);
        (self.subset(&train), self.subset(&val))
    }
}

/// The indices of [`Dataset::split_validation`]: `(train, val)`, each sorted.
pub fn validation_indices(len: usize, count: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let count = count.min(len);
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut val = order[..count].to_vec();
    let mut train = order[count..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    (train, val)
}
