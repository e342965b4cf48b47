//! Parallel helpers: splitting work into tasks and writing disjoint parts of one output.
use rayon::prelude::*;

/// Multiply-adds below which a kernel runs on the calling thread (rayon's overhead is a few µs).
pub(crate) const PAR_MIN_WORK: usize = 1 << 17;

/// A raw output pointer shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr<T>(pub *mut T);
// SAFETY: tasks only write disjoint indices (each caller documents its split).
unsafe impl<T: Send> Send for OutPtr<T> {}
unsafe impl<T: Send> Sync for OutPtr<T> {}

impl<T> OutPtr<T> {
    /// Writes `v` at element `i`.
    ///
    /// # Safety
    /// `i` is in bounds of the slice this pointer came from and no other task writes it.
    #[inline(always)]
    pub(crate) unsafe fn write(self, i: usize, v: T) {
        unsafe { self.0.add(i).write(v) }
    }
}

/// Runs `f(t)` for `t in 0..tasks`, in parallel when `work` (multiply-adds) is large enough.
pub(crate) fn for_each_task(tasks: usize, work: usize, f: impl Fn(usize) + Sync + Send) {
    if tasks <= 1 || work < PAR_MIN_WORK || rayon::current_num_threads() <= 1 {
        (0..tasks).for_each(f);
    } else {
        (0..tasks).into_par_iter().for_each(f);
    }
}

/// Splits `0..len` into about `parts` contiguous ranges whose bounds are multiples of `align`
/// (except the end); returns the range boundaries.
pub(crate) fn split(len: usize, parts: usize, align: usize) -> Vec<usize> {
    let align = align.max(1);
    let units = len.div_ceil(align);
    let parts = parts.clamp(1, units.max(1));
    let mut b: Vec<usize> = (0..=parts).map(|p| (units * p / parts * align).min(len)).collect();
    b.dedup();
    if b.len() == 1 {
        b.push(len);
    }
    b
}

/// How many tasks to cut a job into: a few per thread for balance, 1 when small.
pub(crate) fn task_count(work: usize) -> usize {
    if work < PAR_MIN_WORK {
        1
    } else {
        (rayon::current_num_threads() * 4).max(1)
    }
}
