//! Parallel loops on candle's CPU worker pool (`candle_core::utils::barrier_pool`).
//!
//! candle 0.11 runs its own elementwise ops on that pool (the calling thread plus
//! `CANDLE_NUM_THREADS - 1` spinning workers). Running our kernels on the same threads instead
//! of rayon's global pool avoids oversubscribing the cores: otherwise candle's workers spin
//! while rayon's run (and vice versa), which cost ~20% of a ResNet training step on 2 cores.
use candle_core::utils::barrier_pool;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    /// Set while this thread runs a [`for_each`] body: nested loops then run inline (the pool
    /// serializes callers, so re-entering it from a worker would deadlock).
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Threads a parallel loop runs on.
pub(crate) fn threads() -> usize {
    barrier_pool().n_workers() + 1
}

/// Runs `f(i)` for every `i < n`, spread over the pool in dynamically claimed chunks of `grain`.
pub(crate) fn for_each(n: usize, grain: usize, f: impl Fn(usize) + Sync) {
    let grain = grain.max(1);
    if n <= grain || threads() == 1 || INSIDE.with(Cell::get) {
        (0..n).for_each(f);
        return;
    }
    let cursor = AtomicUsize::new(0);
    barrier_pool().execute(|_| {
        let was = INSIDE.with(|c| c.replace(true));
        loop {
            let start = cursor.fetch_add(grain, Ordering::Relaxed);
            if start >= n {
                break;
            }
            (start..n.min(start + grain)).for_each(&f);
        }
        INSIDE.with(|c| c.set(was));
    });
}
