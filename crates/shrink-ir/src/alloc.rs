//! A global allocator that recycles large blocks, and the system allocator's tuning under it.
//!
//! Training allocates the same big tensors (activations, gradients) every step, evaluation the
//! same activations every batch. glibc's default hands every block above its (adaptive) mmap
//! threshold to a fresh `mmap`, so every step pays page faults and kernel page zeroing (~20% of
//! a simple-dnn training step in `perf`). Two layers fix that:
//! - [`tune_system_allocator`] raises glibc's mmap threshold to [`MIN_BLOCK`] (32 MB, glibc's
//!   maximum) and stops it trimming its heaps, so blocks below that are carved from the heap and
//!   freed memory is reused for requests of *any* size;
//! - [`RecyclingAlloc`] keeps freed blocks of at least [`MIN_BLOCK`] bytes (still `mmap`ed) in a
//!   small fixed table and hands them back for a request of the same size and alignment.
//!
//! An earlier version recycled every block from 256 KB up by exact size: a quantizer sweep,
//! whose buffers differ in size from cell to cell, then kept ~50 MB of stale blocks (269 MB peak
//! RSS over the 35-cell MNIST grid, 204 MB with this split, and faster). Binaries opt in with
//! `#[global_allocator] static A: RecyclingAlloc = RecyclingAlloc::new();` and a call to
//! [`tune_system_allocator`] first thing in `main`.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// Blocks smaller than this go straight to the system allocator (32 MB: glibc's largest mmap
/// threshold, below which [`tune_system_allocator`] makes it serve blocks from its heap).
pub const MIN_BLOCK: usize = 32 << 20;
/// Most bytes kept in the recycling table.
pub const MAX_CACHED_BYTES: usize = 1 << 30;
const SLOTS: usize = 64;

/// Makes glibc serve blocks below [`MIN_BLOCK`] from its heap and keep freed heap memory for
/// reuse (see the module docs). A no-op on other platforms. Call it before the first large
/// allocation.
pub fn tune_system_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; both values are in glibc's valid ranges.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MIN_BLOCK as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[derive(Clone, Copy)]
struct Block {
    ptr: *mut u8,
    size: usize,
    align: usize,
}

struct Table {
    blocks: [Option<Block>; SLOTS],
    cached_bytes: usize,
}

/// System allocator plus a small table of recycled large blocks (see the module docs).
pub struct RecyclingAlloc {
    lock: AtomicBool,
    table: std::cell::UnsafeCell<Table>,
}

// SAFETY: the table is only touched while `lock` is held.
unsafe impl Sync for RecyclingAlloc {}

impl RecyclingAlloc {
    /// An allocator with an empty table.
    pub const fn new() -> Self {
        RecyclingAlloc {
            lock: AtomicBool::new(false),
            table: std::cell::UnsafeCell::new(Table { blocks: [None; SLOTS], cached_bytes: 0 }),
        }
    }

    fn with_table<R>(&self, f: impl FnOnce(&mut Table) -> R) -> R {
        while self.lock.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            std::hint::spin_loop();
        }
        // SAFETY: exclusive access while the spin lock is held; `f` does not allocate.
        let r = f(unsafe { &mut *self.table.get() });
        self.lock.store(false, Ordering::Release);
        r
    }

    fn take(&self, layout: Layout) -> Option<*mut u8> {
        self.with_table(|t| {
            let slot = t
                .blocks
                .iter()
                .position(|b| matches!(b, Some(b) if b.size == layout.size() && b.align == layout.align()))?;
            let block = t.blocks[slot].take()?;
            t.cached_bytes -= block.size;
            Some(block.ptr)
        })
    }

    /// Keeps the block if there is room; returns false when the caller must free it.
    fn keep(&self, ptr: *mut u8, layout: Layout) -> bool {
        self.with_table(|t| {
            if t.cached_bytes + layout.size() > MAX_CACHED_BYTES {
                return false;
            }
            let Some(slot) = t.blocks.iter().position(|b| b.is_none()) else { return false };
            t.blocks[slot] = Some(Block { ptr, size: layout.size(), align: layout.align() });
            t.cached_bytes += layout.size();
            true
        })
    }
}

impl Default for RecyclingAlloc {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for RecyclingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= MIN_BLOCK {
            if let Some(p) = self.take(layout) {
                return p;
            }
        }
        // SAFETY: forwarded with the caller's valid layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= MIN_BLOCK {
            if let Some(p) = self.take(layout) {
                // SAFETY: the block has exactly `layout.size()` bytes.
                unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
                return p;
            }
        }
        // SAFETY: forwarded with the caller's valid layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= MIN_BLOCK && self.keep(ptr, layout) {
            return;
        }
        // SAFETY: `ptr` was allocated by `System` with `layout` (cached blocks come from it too).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycles_same_size_blocks_and_zeroes_on_request() {
        let a = RecyclingAlloc::new();
        let layout = Layout::from_size_align(MIN_BLOCK * 2, 64).unwrap();
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            std::ptr::write_bytes(p, 7, layout.size());
            a.dealloc(p, layout);
            let q = a.alloc_zeroed(layout);
            assert_eq!(p, q, "a freed block of the same layout is reused");
            assert!(std::slice::from_raw_parts(q, layout.size()).iter().all(|b| *b == 0));
            // Another size is not served from the table.
            let other = Layout::from_size_align(MIN_BLOCK * 3, 64).unwrap();
            a.dealloc(q, layout);
            let r = a.alloc(other);
            assert_ne!(r, q);
            a.dealloc(r, other);
            // Small blocks bypass the table.
            let small = Layout::from_size_align(64, 8).unwrap();
            let s = a.alloc(small);
            a.dealloc(s, small);
        }
    }
}
