//! Shared helpers of the property tests: a seeded generator and random matrices.
#![allow(dead_code)]

/// xorshift64*: deterministic data from a proptest-chosen seed (shrinks well: small seeds).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn u8(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }
    pub fn i8(&mut self) -> i8 {
        (self.next_u64() >> 56) as u8 as i8
    }
    pub fn f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Random `[rows, cols]` values from `gen`, with some whole rows and columns zeroed
/// (the all-zero-row / all-zero-column cases).
pub fn matrix<T: Copy + Default>(
    r: &mut Rng,
    rows: usize,
    cols: usize,
    mut gen: impl FnMut(&mut Rng) -> T,
) -> Vec<T> {
    let mut m: Vec<T> = (0..rows * cols).map(|_| gen(r)).collect();
    for row in 0..rows {
        if r.chance(0.15) {
            m[row * cols..(row + 1) * cols].fill(T::default());
        }
    }
    for col in 0..cols {
        if r.chance(0.1) {
            for row in 0..rows {
                m[row * cols + col] = T::default();
            }
        }
    }
    m
}

/// Keeps each entry with probability `density` (the rest become 0).
pub fn sparsify(r: &mut Rng, w: &mut [f32], density: f64) {
    for v in w.iter_mut() {
        if !r.chance(density) {
            *v = 0.0;
        }
    }
}

/// `|got − want| ≤ 3e-5 · scale + 1e-6` for every entry, where `scale` is the entry's
/// `Σ |w·x| + |bias|` (the f32 tolerance of the f32 kernels: a bound on summation-order error).
pub fn assert_close(what: &str, got: &[f32], want: &[f64], scale: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        let tol = 3e-5 * s + 1e-6;
        assert!(((g as f64) - w).abs() <= tol, "{what}: entry {i}: got {g}, want {w} (tol {tol})");
    }
}
