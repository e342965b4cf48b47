//! Crafted files that claim huge lengths are errors without a large allocation: a counting
//! allocator records the largest request made while reading them.
mod common;

use shrink_runtime::deploy::DeployModel;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only records sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Largest single allocation while reading `bytes`, and the error.
fn read_err(bytes: &[u8]) -> (usize, String) {
    LARGEST.store(0, Ordering::Relaxed);
    let r = DeployModel::read(bytes);
    let largest = LARGEST.load(Ordering::Relaxed);
    (largest, r.expect_err("a crafted file must be rejected").to_string())
}

/// Overwrites `at..at+8` with `v` (u64 LE) and reseals the checksum.
fn patch_u64(bytes: &[u8], at: usize, v: u64) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    common::reseal(&mut b);
    b
}

#[test]
fn huge_claimed_lengths_allocate_nothing_large() {
    let m = common::model();
    let bytes = m.to_bytes().unwrap();
    let limit = 4 * bytes.len() + (1 << 16);
    // The header length.
    let (largest, e) = read_err(&patch_u64(&bytes, 12, u64::MAX - 7));
    assert!(largest < limit, "allocated {largest} bytes: {e}");
    // Every 8-byte window of the payload area claiming a huge count (code counts, stream
    // lengths, ...) — each is an error and none allocates more than a few times the file.
    let hlen = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    let area = (20 + hlen).div_ceil(64) * 64;
    for at in area..bytes.len() - 12 {
        for v in [u64::MAX, 1 << 40, 1 << 31] {
            let b = patch_u64(&bytes, at, v);
            LARGEST.store(0, Ordering::Relaxed);
            let r = DeployModel::read(&b);
            let largest = LARGEST.load(Ordering::Relaxed);
            assert!(largest < limit, "patching {v} at byte {at}: allocated {largest} bytes ({r:?})");
            if let Err(e) = r {
                assert!(!e.to_string().contains('\n'));
            }
        }
    }
}
